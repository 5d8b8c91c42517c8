#!/bin/bash
# chain-read.sh - read a 2 GiB qcow2 chain (1 GiB allocated) through the
# snapfs engine (snapfs-map --cat > /dev/null) and through qemu-img convert
# (to a null target), at depth 1 and depth 64, and print MiB/s of virtual
# disk per second (warm page cache: each is run once to warm up, then
# timed as the best of RUNS).
#
# Usage: bench/chain-read.sh [SNAPFS_MAP]   (default: ./snapfs-map)
# Env:   BENCH_DIR (scratch, default $TMPDIR or /tmp), RUNS (default 3)
set -eu

MAP=${1:-./snapfs-map}
RUNS=${RUNS:-3}
[ -x "$MAP" ] || { echo "snapfs-map not found at $MAP (build it, or pass its path)" >&2; exit 2; }
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/chain-read.XXXXXX")
trap 'rm -rf "$W"' EXIT

M=$((1024 * 1024))
G=$((1024 * M))
SIZE=$((2 * G))

echo "building chains in $W ..." >&2
# Depth 1: one qcow2 image, 1 GiB allocated in 1 MiB pieces every 2 MiB.
qemu-img create -q -f qcow2 "$W/d1.qcow2" $SIZE
cmds=()
for ((i = 0; i < 1024; i++)); do cmds+=(-c "write -P $((i % 255 + 1)) $((i * 2 * M)) $M"); done
qemu-io "${cmds[@]}" "$W/d1.qcow2" >/dev/null

# Depth 64: a raw base with 512 MiB of data, 63 overlays with 8 MiB each.
qemu-img create -q -f raw "$W/base.raw" $SIZE
cmds=()
for ((i = 0; i < 512; i++)); do cmds+=(-c "write -P $((i % 255 + 1)) $((i * 4 * M)) $M"); done
qemu-io -f raw "${cmds[@]}" "$W/base.raw" >/dev/null
prev=base.raw
pfmt=raw
args=(-f raw "$W/base.raw")
for ((l = 1; l < 64; l++)); do
	cur=ov$l.qcow2
	(cd "$W" && qemu-img create -q -f qcow2 -b $prev -F $pfmt $cur)
	cmds=()
	for ((j = 0; j < 8; j++)); do
		cmds+=(-c "write -P $l $(((l * 8 + j) * 4 * M % SIZE + 2 * M)) $M")
	done
	qemu-io "${cmds[@]}" "$W/$cur" >/dev/null
	args=(-f qcow2 "$W/$cur" "${args[@]}")
	prev=$cur
	pfmt=qcow2
done
top=$W/$prev

best() { # best-of-RUNS seconds of a command
	local b=999999 t0 t1 s
	"$@" >/dev/null 2>&1
	for ((r = 0; r < RUNS; r++)); do
		t0=$(date +%s%N)
		"$@" >/dev/null
		t1=$(date +%s%N)
		s=$(((t1 - t0) / 1000))
		((s < b)) && b=$s
	done
	echo $b
}
mibs() { echo "scale=0; $SIZE * 1000000 / $1 / $M" | bc; }

snap1=$(best "$MAP" --cat -f qcow2 "$W/d1.qcow2")
qemu1=$(best qemu-img convert -n "$W/d1.qcow2" --target-image-opts driver=null-co,size=$SIZE)
snap64=$(best "$MAP" --cat "${args[@]}")
qemu64=$(best qemu-img convert -n "$top" --target-image-opts driver=null-co,size=$SIZE)
map64=$(best "$MAP" "${args[@]}")

printf '%-44s %10s %10s\n' "2 GiB virtual, 1 GiB allocated" "seconds" "MiB/s"
printf '%-44s %10s %10s\n' "snapfs engine (snapfs-map --cat), depth 1" \
	"$(echo "scale=3; $snap1/1000000" | bc)" "$(mibs $snap1)"
printf '%-44s %10s %10s\n' "qemu-img convert -> null-co, depth 1" \
	"$(echo "scale=3; $qemu1/1000000" | bc)" "$(mibs $qemu1)"
printf '%-44s %10s %10s\n' "snapfs engine (snapfs-map --cat), depth 64" \
	"$(echo "scale=3; $snap64/1000000" | bc)" "$(mibs $snap64)"
printf '%-44s %10s %10s\n' "qemu-img convert -> null-co, depth 64" \
	"$(echo "scale=3; $qemu64/1000000" | bc)" "$(mibs $qemu64)"
printf '%-44s %10s\n' "snapfs map build + JSON print, depth 64" \
	"$(echo "scale=3; $map64/1000000" | bc)"
