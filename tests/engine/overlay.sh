#!/bin/bash
# The overlay writer (qcow2_overlay_create, via snapfs-map --create):
# qemu-img check passes, qemu-img info --backing-chain shows the chain,
# qemu writes to it happily, reads through it equal qemu's, and it refuses
# to overwrite or to take a path as the backing name.
set -u
. "${top_srcdir:-${srcdir:-.}}/tests/engine/lib.sh"

M=$((1024 * 1024))
G=$((1024 * M))

qemu-img create -q -f raw "$W/volume-a" $((64 * M)) || bail create
qi "$W/volume-a" "write -P 0x61 0 $((3 * M))"
t0=$(date +%s%N)
"$MAP" --create "$W/volume-a.s1" -F raw "$W/volume-a"
rc=$?
t1=$(date +%s%N)
check "create an overlay of a raw base ($(((t1 - t0) / 1000)) us)" [ $rc -eq 0 ]
check "qemu-img check passes" qemu-img check -q "$W/volume-a.s1"
info=$(qemu-img info --backing-chain "$W/volume-a.s1")
check "qemu-img info --backing-chain shows raw base" \
	grep -q "backing file: volume-a" <<<"$info"
check "backing format is raw" grep -q "backing file format: raw" <<<"$info"
check "virtual size is the backing file's" \
	grep -q "virtual size: 64 MiB (67108864 bytes)" <<<"$info"
check "file mode 0644" [ "$(stat -c %a "$W/volume-a.s1")" = 644 ]
check_chain "fresh overlay of raw base" "qcow2:volume-a.s1" "raw:volume-a"

qi "$W/volume-a.s1" "write -P 0x62 $M $M" "write -z $((2 * M)) 64k"
check "qemu writes into it, and check still passes" qemu-img check -q "$W/volume-a.s1"
"$MAP" --create "$W/volume-a.s2" -F qcow2 "$W/volume-a.s1"
check "create an overlay of a qcow2 overlay" [ $? -eq 0 ]
check "qemu-img check passes on the second" qemu-img check -q "$W/volume-a.s2"
check "qemu-img info --backing-chain lists three images" \
	[ "$(qemu-img info --backing-chain "$W/volume-a.s2" | grep -c '^image:')" = 3 ]
qi "$W/volume-a.s2" "write -P 0x63 $((5 * M)) 100k"
check_chain "chain of two written overlays" "qcow2:volume-a.s2" "qcow2:volume-a.s1" "raw:volume-a"

cp "$W/volume-a.s1" "$W/keep"
"$MAP" -q --create "$W/volume-a.s1" -F raw "$W/volume-a" 2>/dev/null
check "an existing file is not overwritten" [ $? -ne 0 ]
check "the existing file is untouched" cmp -s "$W/keep" "$W/volume-a.s1"
mkdir "$W/sub"
"$MAP" -q --create "$W/sub/x" -F raw "$W/../x" 2>/dev/null
check "a non-existent backing file (size from it) is an error" [ $? -ne 0 ]
check "nothing is left behind on failure" [ ! -e "$W/sub/x" ]

"$MAP" --create "$W/big" -s $((1024 * G)) -F raw "$W/volume-a"
check "a 1 TiB overlay" qemu-img check -q "$W/big"
check "1 TiB overlay is small on disk (< 1 MiB)" [ "$(stat -c %s "$W/big")" -lt $M ]
"$MAP" --create "$W/odd" -s 1000 -F raw "$W/volume-a"
check "an odd size is rounded up to 512 like qemu-img" \
	grep -q "virtual size: 512 B\|virtual size: 1000 B\|(1024 bytes)" <<<"$(qemu-img info "$W/odd")"

done_testing
