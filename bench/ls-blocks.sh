#!/bin/bash
# Benchmark: the first and second `ls -ls` after a mount of the disk.raw of
# VOLS volumes with SNAPS snapshots each (defaults 100 x 10; 1 x 300 is a
# chain 300 deep), each snapshot over 256 KiB of new data. st_blocks of a
# disk.raw is its chain's data (README), computed at the first stat;
# compare with another snapfs binary (OTHER, e.g. one that does not
# compute it) on the same share and catalogue.
# Usage: sudo bench/ls-blocks.sh [VOLS] [SNAPS] [SNAPFS_BINARY] [OTHER_BINARY]
set -euo pipefail
VOLS=${1:-100}
SNAPS=${2:-10}
SNAPFS=${3:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
OTHER=${4:-}
WORK=$(mktemp -d /tmp/snapfs-bench.XXXXXX)
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog
mkdir -p "$SHARE" "$MNT" "$CAT"
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	rm -rf "$WORK"
}
trap cleanup EXIT
mnt() { "$1" -o "catalog=$CAT" "$SHARE" "$MNT"; }

mnt "$SNAPFS"
mkdir "$MNT/tenants/bench"
for v in $(seq 1 "$VOLS"); do
	d=$MNT/tenants/bench/volumes/v$v
	mkdir "$d"
	for s in $(seq 1 "$SNAPS"); do
		f=$(getfattr --absolute-names --only-values -n user.active_file "$d")
		fmt=qcow2
		[ "$s" = 1 ] && fmt=raw
		qemu-io -f $fmt -c "write -P $((s % 256)) $((s * 1048576)) 256k" "$SHARE/$f" >/dev/null
		mkdir "$d/snapshots/s$s"
	done
done
fusermount3 -u "$MNT"
printf '%-40s %12s %12s %14s\n' binary "first ms" "second ms" "blocks (KiB)"
for b in "$SNAPFS" ${OTHER:+"$OTHER"}; do
	mnt "$b"
	t0=$(date +%s%N)
	ls -ls "$MNT"/tenants/bench/volumes/*/snapshots/*/disk.raw >"$WORK/ls"
	t1=$(date +%s%N)
	ls -ls "$MNT"/tenants/bench/volumes/*/snapshots/*/disk.raw >/dev/null
	t2=$(date +%s%N)
	printf '%-40s %12d %12d %14d\n' "$b" $(((t1 - t0) / 1000000)) $(((t2 - t1) / 1000000)) \
		"$(awk '{s += $1} END {print s}' "$WORK/ls")"
	fusermount3 -u "$MNT"
	sleep 0.5
done
