#!/bin/bash
# quota-cost.sh [N] [SNAPFS]: what tenant quotas cost. One mount (LMDB) and
# a tenant with N volumes (default 500) of one snapshot each; prints the
# median latency of mkdir(2) of one more volume (then rmdir) and of a
# snapshot (then rmdir) with no limit set (no count) and with
# user.quota.gigabytes set (every create counts the tenant's volumes and
# snapshots in its write transaction), and of reading user.usage.gigabytes.
# Env RUNS (default 21). Run as root.
set -eu
N=${1:-500}
SNAPFS=${2:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
RUNS=${RUNS:-21}
W=$(mktemp -d /tmp/snapfs-quota-bench.XXXXXX)
mkdir "$W/share" "$W/mnt" "$W/cat"
cleanup() {
	fusermount3 -u "$W/mnt" 2>/dev/null || true
	[ -n "${PID:-}" ] && wait "$PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
"$SNAPFS" -f -o "catalog=$W/cat" "$W/share" "$W/mnt" 2>"$W/log" &
PID=$!
for i in $(seq 1 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
T=$W/mnt/tenants/bench
mkdir "$T"
t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
	mkdir "$T/volumes/v$i" "$T/volumes/v$i/snapshots/s"
done
t1=$(date +%s.%N)
echo "setup: $N volumes and $N snapshots in $(echo "$t1 - $t0" | bc) s"

# median_ms PYTHON-STATEMENTS: median over RUNS of the timed statements
median_ms() {
	python3 - "$T" "$RUNS" "$1" <<'PY'
import os, sys, time
T, runs, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ts = []
for i in range(runs):
    t = time.perf_counter()
    exec(body)
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print("%.2f" % ts[len(ts) // 2])
PY
}
vol='os.mkdir(T + "/volumes/x"); os.rmdir(T + "/volumes/x")'
snap='os.mkdir(T + "/volumes/v1/snapshots/x"); os.rmdir(T + "/volumes/v1/snapshots/x")'
usage='os.getxattr(T, "user.usage.gigabytes")'
# no limit, limit, no limit again, limit again: the machine's noise shows
# as the difference between the two runs of one column
a_vol=$(median_ms "$vol") a_snap=$(median_ms "$snap")
setfattr -n user.quota.gigabytes -v 1000000 "$T"
b_vol=$(median_ms "$vol") b_snap=$(median_ms "$snap") u=$(median_ms "$usage")
setfattr -x user.quota.gigabytes "$T"
a_vol2=$(median_ms "$vol") a_snap2=$(median_ms "$snap")
setfattr -n user.quota.gigabytes -v 1000000 "$T"
b_vol2=$(median_ms "$vol") b_snap2=$(median_ms "$snap")
printf '%-44s %18s %18s\n' "median of $RUNS, ms ($N volumes, $N snapshots)" "no limit (2 runs)" \
	"gigabytes set (2 runs)"
printf '%-44s %18s %18s\n' "mkdir + rmdir of a volume" "$a_vol $a_vol2" "$b_vol $b_vol2"
printf '%-44s %18s %18s\n' "mkdir + rmdir of a snapshot" "$a_snap $a_snap2" "$b_snap $b_snap2"
printf '%-44s %18s %18s\n' "getfattr user.usage.gigabytes (the count)" "" "$u"
echo "usage: $(getfattr --absolute-names --only-values -n user.usage.gigabytes "$T") GiB"
