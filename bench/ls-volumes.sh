#!/bin/bash
# Benchmark: `ls -l` and `stat` of N volumes in one tenant (default 10000).
# Prints a table: snapfs beside the same listing of a plain local directory
# with as many entries (the floor for any FUSE or kernel file system).
# Usage: sudo bench/ls-volumes.sh [N] [SNAPFS_BINARY]
set -euo pipefail
N=${1:-10000}
SNAPFS=${2:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
WORK=$(mktemp -d /tmp/snapfs-bench.XXXXXX)
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog PLAIN=$WORK/plain
PID=
mkdir -p "$SHARE" "$MNT" "$CAT" "$PLAIN"
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

"$SNAPFS" -f -o "catalog=$CAT" "$SHARE" "$MNT" 2>/dev/null &
PID=$!
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mkdir "$MNT/tenants/bench"
V=$MNT/tenants/bench/volumes

t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do echo "$V/vol$i"; done | xargs -n 500 mkdir
t1=$(date +%s.%N)
for i in $(seq 1 "$N"); do mkdir "$PLAIN/vol$i"; done 2>/dev/null

# ms ELAPSED_SECONDS -> milliseconds
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }
# timed CMD...: seconds CMD takes, output discarded
timed() {
	local a b
	a=$(date +%s.%N)
	"$@" >/dev/null
	b=$(date +%s.%N)
	awk -v a="$a" -v b="$b" 'BEGIN { print b - a }'
}
drop_caches() { sync; echo 2 > /proc/sys/vm/drop_caches; }

sleep 1.1 # let the kernel's 1 s attribute cache of the new entries expire
snap_cold=$(timed ls -l "$V")
snap_warm=$(timed ls -l "$V")
sleep 1.1
snap_stat=$(timed find "$V" -maxdepth 1 -mindepth 1 -exec stat -c %i {} +)
drop_caches
plain_cold=$(timed ls -l "$PLAIN")
plain_warm=$(timed ls -l "$PLAIN")
plain_stat=$(timed find "$PLAIN" -maxdepth 1 -mindepth 1 -exec stat -c %i {} +)
count=$(ls "$V" | wc -l)

echo
echo "ls -l and stat of $count volumes in one tenant ($(nproc) cores; one run)"
echo "command: sudo bench/ls-volumes.sh $N"
printf '%-34s %12s %12s\n' "" "snapfs" "plain dir"
printf '%-34s %10s ms %10s ms\n' "ls -l (attributes not cached)" "$(ms "$snap_cold")" "$(ms "$plain_cold")"
printf '%-34s %10s ms %10s ms\n' "ls -l again (cached)" "$(ms "$snap_warm")" "$(ms "$plain_warm")"
printf '%-34s %10s ms %10s ms\n' "stat of every entry (find -exec)" "$(ms "$snap_stat")" "$(ms "$plain_stat")"
printf '%-34s %10s ms\n' "creating them (mkdir)" "$(ms "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")"
printf '%-34s %10s KiB\n' "catalogue on disk" "$(du -sk "$CAT" | cut -f1)"
printf '%-34s %10s KiB\n' "daemon resident memory" "$(awk '/VmRSS/ {print $2}' /proc/$PID/status)"
