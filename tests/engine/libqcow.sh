#!/bin/bash
# libqcow (20201213, Debian 12) as a second oracle, and a record of where
# it is wrong: a v3 zero cluster in an overlay over backing data reads as
# zeros in qemu and snapfs, but not in libqcow. DESIGN.md expected the
# backing file's bytes; what libqcow 20201213 actually returns here is the
# overlay's own first cluster (its qcow2 header), once per zero cluster: it
# takes the zero-flagged entry for a data cluster at host offset 0. The difference
# is asserted so that this record stays true; if a newer libqcow fixes it,
# this test fails and the note in docs/engine.md must go.
set -u
. "${top_srcdir:-${srcdir:-.}}/tests/engine/lib.sh"

if [ -z "$LIBQCOW_CAT" ]; then
	echo "1..0 # SKIP libqcow oracle not built (no libqcow-dev)"
	exit 0
fi

M=$((1024 * 1024))
C=65536

# Single images libqcow reads: v2 and v3 without zero clusters.
for compat in 0.10 1.1; do
	for cs in 512 4096 65536; do
		f=single-$compat-$cs.qcow2
		rm -f "$W"/*.qcow2
		qemu-img create -q -f qcow2 -o compat=$compat,cluster_size=$cs "$W/$f" $((4 * M)) || bail create
		qi "$W/$f" "write -P 0x11 0 $((M + 512))" "write -c -P 0x12 $((2 * M)) $((4 * cs))" \
			"write -P 0x13 $((3 * M + 1536)) 3000"
		check_chain "v$compat $cs-byte clusters" "qcow2:$f"
		check_libqcow "v$compat $cs-byte clusters" "$f"
	done
done

# The recorded difference.
rm -f "$W"/*.qcow2
qemu-img create -q -f qcow2 "$W/base.qcow2" $((4 * M)) || bail create
qi "$W/base.qcow2" "write -P 0x11 0 $((4 * M))"
(cd "$W" && qemu-img create -q -f qcow2 -o compat=1.1 -b base.qcow2 -F qcow2 top.qcow2) || bail create
qi "$W/top.qcow2" "write -z $M $((2 * C))"
check_chain "v3 overlay with a zero cluster over backing data" "qcow2:top.qcow2" "qcow2:base.qcow2"
zeros=$(head -c $((2 * C)) /dev/zero | md5sum)
ours=$("$MAP" --cat -o $M -l $((2 * C)) -f qcow2 "$W/top.qcow2" -f qcow2 "$W/base.qcow2" | md5sum)
qemus=$(dd if="$W/ref.raw" bs=$C skip=$((M / C)) count=2 2>/dev/null | md5sum)
backing=$(qemu-img convert -O raw "$W/base.qcow2" "$W/base.raw" &&
	dd if="$W/base.raw" bs=$C skip=$((M / C)) count=2 2>/dev/null | md5sum)
theirs=$("$LIBQCOW_CAT" "$W/top.qcow2" "$W/base.qcow2" 2>/dev/null |
	dd bs=$C skip=$((M / C)) count=2 iflag=fullblock 2>/dev/null | md5sum)
check "zero cluster: qemu reads zeros" [ "$qemus" = "$zeros" ]
check "zero cluster: snapfs reads zeros" [ "$ours" = "$zeros" ]
own=$( (dd if="$W/top.qcow2" bs=$C count=1; dd if="$W/top.qcow2" bs=$C count=1) 2>/dev/null | md5sum)
check "zero cluster: libqcow does not read zeros (known libqcow bug)" [ "$theirs" != "$zeros" ]
if [ "$theirs" = "$own" ]; then
	echo "# libqcow returned the overlay's bytes at file offset 0 (its header)"
elif [ "$theirs" = "$backing" ]; then
	echo "# libqcow returned the backing file's bytes"
fi
check "zero cluster: libqcow returns the backing bytes or the overlay's header" \
	[ "$theirs" = "$own" -o "$theirs" = "$backing" ]

done_testing
