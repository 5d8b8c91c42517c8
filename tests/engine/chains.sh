#!/bin/bash
# Deep chains: 16 and 64 layers over qcow2 and raw bases, each layer
# writing data, partial clusters, zeros, compressed clusters and discards;
# snapfs-map must read what qemu-img convert reads and map what qemu-img
# map maps, whatever the depth.
set -u
. "${top_srcdir:-${srcdir:-.}}/tests/engine/lib.sh"

K=1024
M=$((1024 * 1024))

# build_chain NAME DEPTH BASEFMT OPTS CLUSTER SIZE -> sets SPECS (top first)
build_chain() {
	local name=$1 depth=$2 bfmt=$3 opts=$4 C=$5 S=$6 i prev cur
	rm -f "$W"/*.qcow2 "$W"/*.raw
	prev=$name-0.$bfmt
	if [ "$bfmt" = raw ]; then
		qemu-img create -q -f raw "$W/$prev" $S || bail create
	else
		qemu-img create -q -f qcow2 -o "$opts" "$W/$prev" $S || bail create
	fi
	qi "$W/$prev" "write -P 0x10 0 $((S / 2))" "write -P 0x11 $((S - 4 * C)) $((2 * C))"
	SPECS=("$bfmt:$prev")
	local pfmt=$bfmt
	for ((i = 1; i < depth; i++)); do
		cur=$name-$i.qcow2
		(cd "$W" && qemu-img create -q -f qcow2 -o "$opts" -b "$prev" -F "$pfmt" "$cur") || bail create
		local cl=$(((i * 7) % (S / C - 8)))
		local cmds=("write -P $((i % 250 + 1)) $((cl * C)) $C"
			"write -P $((i % 200 + 3)) $(((cl + 2) * C + 512)) $((C / 2 + 512))")
		((i % 3 == 0)) && cmds+=("write -z $(((cl + 4) * C)) $C")
		((i % 4 == 0)) && cmds+=("write -z -u $(((i * 5 % (S / C - 2)) * C)) $C")
		((i % 5 == 0)) && cmds+=("write -c -P $((i + 100)) $(((cl + 5) * C)) $C")
		((i % 6 == 0)) && cmds+=("discard $(((i * 3 % (S / C - 2)) * C)) $((2 * C))")
		((i % 7 == 0)) && cmds+=("write -z $(((i * 11 % (S / C - 2)) * C + 512)) 1024")
		qi "$W/$cur" "${cmds[@]}"
		SPECS=("qcow2:$cur" "${SPECS[@]}")
		prev=$cur
		pfmt=qcow2
	done
}

build_chain d16-v2-4k 16 qcow2 compat=0.10,cluster_size=4096 4096 $((2 * M))
check_chain "depth 16, v2, 4 KiB clusters, qcow2 base" "${SPECS[@]}"
build_chain d16-v3-64k-x 16 raw compat=1.1,extended_l2=on 65536 $((8 * M))
check_chain "depth 16, v3, extended L2, raw base" "${SPECS[@]}"
# Mixed cluster sizes: small clusters and subclusters over big compressed
# ones, so extents start inside a compressed cluster.
rm -f "$W"/*.qcow2 "$W"/*.raw
qemu-img create -q -f qcow2 -o cluster_size=2M,compression_type=zstd "$W/mix0.qcow2" $((16 * M)) || bail create
qi "$W/mix0.qcow2" "write -c -P 0x71 0 $((4 * M))" "write -P 0x72 $((4 * M)) $((2 * M))" \
	"write -c -P 0x73 $((8 * M)) $((2 * M))"
(cd "$W" && qemu-img create -q -f qcow2 -o cluster_size=4096 -b mix0.qcow2 -F qcow2 mix1.qcow2) || bail create
qi "$W/mix1.qcow2" "write -P 0x74 $((12 * K)) $((4 * K))" "write -z $((M + 4 * K)) $((8 * K))" \
	"write -P 0x75 $((8 * M + 100 * K)) 512" "write -c -P 0x76 $((9 * M)) $((8 * K))"
(cd "$W" && qemu-img create -q -f qcow2 -o cluster_size=64k,extended_l2=on -b mix1.qcow2 -F qcow2 mix2.qcow2) || bail create
qi "$W/mix2.qcow2" "write -P 0x77 $((2 * K)) $((2 * K))" "write -z $((M + 64 * K + 6 * K)) $((4 * K))" \
	"write -z -u $((8 * M + 64 * K)) $((16 * K))" "write -P 0x78 $((3 * M + 2 * K)) 1024"
check_chain "mixed 2 MiB zstd / 4 KiB / 64 KiB extended L2" \
	qcow2:mix2.qcow2 qcow2:mix1.qcow2 qcow2:mix0.qcow2

build_chain d64-v3-64k 64 qcow2 compat=1.1 65536 $((16 * M))
check_chain "depth 64, v3, 64 KiB clusters, qcow2 base" "${SPECS[@]}"
build_chain d64-v3-zstd 64 raw compat=1.1,compression_type=zstd,cluster_size=16384 16384 $((4 * M))
check_chain "depth 64, v3, zstd, 16 KiB clusters, raw base" "${SPECS[@]}"

# A single qcow2 FILE: snapfs-map follows the basenames in its directory.
a=$("$MAP" --cat "$W/${SPECS[0]#*:}" | md5sum)
b=$(md5sum < "$W/ref.raw")
check "one FILE: backing names followed within its directory" [ "$a" = "$b" ]

# The wrong order, a missing layer, a layer too many: refused (-EIO).
mapfile -t args < <(fmtargs "${SPECS[@]}")
"$MAP" -q "${args[@]:0:3}" "${args[@]:6}" >/dev/null 2>&1
check "a missing middle layer is refused" [ $? -eq 1 ]
"$MAP" -q "${args[@]:0:$((${#args[@]} - 3))}" >/dev/null 2>&1
check "a missing base is refused" [ $? -eq 1 ]
"$MAP" -q "${args[@]:3}" "${args[@]:0:3}" >/dev/null 2>&1
check "layers out of order are refused" [ $? -ne 0 ]
"$MAP" -q -n "${args[@]:2:1}" >/dev/null 2>&1
check "--no-follow: an overlay alone is refused" [ $? -eq 1 ]

# Sizes that are not whole sectors, as qemu has them: a qcow2 header's size
# is cut to the last whole sector, a raw file's is rounded up (its tail reads
# as zeros), and an overlay reads zeros past its backing's size.
rm -f "$W"/*.qcow2 "$W"/*.raw
qemu-img create -q -f qcow2 -o cluster_size=4096 "$W/odd0.qcow2" 1000448 || bail create
qi "$W/odd0.qcow2" "write -P 0x55 0 1000448"
printf '\x00\x00\x00\x00\x00\x0f\x42\x41' |
	dd of="$W/odd0.qcow2" bs=1 seek=24 conv=notrunc status=none # size 1000001
(cd "$W" && qemu-img create -q -f qcow2 -o cluster_size=4096 -b odd0.qcow2 -F qcow2 odd1.qcow2 1000448) ||
	bail create
qi "$W/odd1.qcow2" "write -P 0x66 4096 4096"
check_chain "qcow2 header size 1000001 (not a whole sector)" qcow2:odd0.qcow2
check_chain "overlay over a qcow2 of header size 1000001" qcow2:odd1.qcow2 qcow2:odd0.qcow2
head -c 1000001 /dev/urandom >"$W/odd.raw"
(cd "$W" && qemu-img create -q -f qcow2 -b odd.raw -F raw oddr.qcow2) || bail create
qi "$W/oddr.qcow2" "write -P 0x67 8192 512"
check_chain "raw file of 1000001 bytes" raw:odd.raw
check_chain "overlay over a raw file of 1000001 bytes" qcow2:oddr.qcow2 raw:odd.raw
check "the raw file's size is rounded up to a sector, as qemu-img info says" \
	[ "$("$MAP" --probe "$W/odd.raw" | grep -o '"virtual-size": *[0-9]*' | grep -o '[0-9]*$')" = \
	"$(qemu-img info --output=json "$W/odd.raw" | grep -o '"virtual-size": *[0-9]*' | grep -o '[0-9]*$')" ]

# --check reads the chain a FILE heads as --cat does: it passes what --cat
# reads and refuses what --cat refuses, also where each file alone is fine.
probe_safe() { "$MAP" -q --check "$@" | grep -o '"safe": [a-z]*' | tr '\n' ' '; }
check "--check: clean chains are safe, exit 0" \
	[ "$(probe_safe "$W/oddr.qcow2" "$W/odd1.qcow2")" = '"safe": true "safe": true ' ]
qemu-img create -q -f qcow2 "$W/bad-z.qcow2" 1M || bail create
qi "$W/bad-z.qcow2" "write -c -P 0x33 0 65536"
# its host offset: L1[0] -> L2[0], a compressed entry (64 KiB clusters)
off=$(python3 -c 'import sys,struct
f=open(sys.argv[1],"rb"); h=f.read(48); l1=struct.unpack(">Q",h[40:48])[0]
f.seek(l1); l2=struct.unpack(">Q",f.read(8))[0]&0x00fffffffffffe00
f.seek(l2); e=struct.unpack(">Q",f.read(8))[0]; cb=16
print(e & ((1<<(62-(cb-8)))-1))' "$W/bad-z.qcow2")
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$W/bad-z.qcow2" bs=1 seek="$off" conv=notrunc status=none
check "a compressed cluster that does not decompress: qemu-img check calls it clean" \
	qemu-img check -q "$W/bad-z.qcow2"
"$MAP" -q --cat "$W/bad-z.qcow2" >/dev/null
check "--cat refuses it" [ $? -eq 1 ]
"$MAP" -q --check "$W/bad-z.qcow2" >/dev/null
check "--check refuses it too (exit 1)" [ $? -eq 1 ]
(cd "$W" && qemu-img create -q -f qcow2 -u -b loop-b.qcow2 -F qcow2 loop-a.qcow2 1M &&
	qemu-img create -q -f qcow2 -u -b loop-a.qcow2 -F qcow2 loop-b.qcow2 1M) || bail create
(cd "$W" && qemu-img create -q -f qcow2 -u -b odd.raw -F qcow2 fmt-lie.qcow2 1000448) || bail create
for f in loop-a fmt-lie; do
	"$MAP" -q --cat "$W/$f.qcow2" >/dev/null
	a=$?
	check "$f: --cat refuses it and --check says it is not safe" \
		[ "$a" = 1 -a "$(probe_safe "$W/$f.qcow2")" = '"safe": false ' ]
done

done_testing
