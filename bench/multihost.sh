#!/bin/bash
# Benchmark: the catalogue shared through etcd, in one run, beside peers.
# Starts its own 3-member etcd cluster on loopback, mounts two hosts A and B
# (host_id=A, host_id=B: own catalog= dirs and mount points, one share, one
# etcd prefix) and one LMDB-only mount over a share of its own, and prints:
#   1. median mkdir(2) latency of a snapshot (N1 of them, one volume, timed
#      per call from one process) with LMDB and with etcd (on A), beside
#      `qemu-img create -f qcow2 -b BASE -F raw` of the same overlay, and
#      the floor under the etcd figure: one bare etcd transaction from a
#      plain HTTP client, times the two a crash-safe create needs;
#   2. the time to create N snapshots of one volume with mkdir(2) on A (and
#      on the LMDB mount), and `ls -l` of them on B (a host that did not
#      create them), first and second listing, beside the LMDB mount;
#   3. how long a change on A takes to show on B: setxattr user.meta.k on A
#      until getxattr on B returns it, and mkdir of a snapshot on A until
#      stat of it succeeds on B (SAMPLES of each, polled from one process).
# Usage: sudo bench/multihost.sh [N] [SNAPFS_BINARY]
# Env:   N1 (mkdir latency samples, default 30), SAMPLES (default 50)
# N (default 10000) is the snapshots listed in 2. Creating them is the
# slow part and grows faster than N (each snapshot mkdir costs more the
# more snapshots its volume has; see bench/README.md): pass a smaller N
# for a quick run.
set -euo pipefail
N=${1:-10000}
SNAPFS=${2:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
N1=${N1:-30}
SAMPLES=${SAMPLES:-50}
WORK=$(mktemp -d /tmp/snapfs-bench.XXXXXX)
SHARE=$WORK/share LSHARE=$WORK/lshare QIMG=$WORK/qemu-img
MNTA=$WORK/mntA MNTB=$WORK/mntB MNTL=$WORK/mntL
ETCD_PIDS=() SNAPFS_PIDS=()
mkdir -p "$SHARE" "$LSHARE" "$QIMG" "$MNTA" "$MNTB" "$MNTL" "$WORK/catA" "$WORK/catB" "$WORK/catL"
cleanup() {
	local m p
	for m in "$MNTA" "$MNTB" "$MNTL"; do mountpoint -q "$m" && fusermount3 -u "$m" || true; done
	for p in "${SNAPFS_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for p in "${ETCD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
T_START=$EPOCHREALTIME

# Six free loopback ports (client and peer of three members), below the
# ephemeral range, so that no outgoing connection holds one.
port_free() { ! ss -Htan "sport = :$1" | grep -q .; }
while :; do
	BASE=$((20000 + RANDOM % 12000))
	ok=1
	for i in 0 1 2 3 4 5; do port_free $((BASE + i)) || ok=0; done
	[ "$ok" = 1 ] && break
done
cluster= ENDPOINTS=()
for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((BASE + 2 * i - 1))"; done
for i in 1 2 3; do
	c=$((BASE + 2 * i - 2)) p=$((BASE + 2 * i - 1))
	etcd --name "m$i" --data-dir "$WORK/etcd$i" \
		--listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
		--listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token snapfs-bench \
		--heartbeat-interval 50 --election-timeout 500 >"$WORK/etcd$i.log" 2>&1 &
	ETCD_PIDS+=($!)
	ENDPOINTS+=("127.0.0.1:$c")
done
ETCD=$(IFS=+; echo "${ENDPOINTS[*]}")
healthy() {
	ETCDCTL_API=3 etcdctl --endpoints="$(IFS=,; echo "${ENDPOINTS[*]}")" --command-timeout=1s \
		endpoint health >/dev/null 2>&1
}
for _ in $(seq 100); do healthy && break; sleep 0.1; done
healthy || { tail -n 3 "$WORK"/etcd?.log >&2; exit 1; }
etcd_version=$(curl -s "http://${ENDPOINTS[0]}/version" | jq -r .etcdserver)

mount_snapfs() { # NAME SHARE MNT OPTIONS
	"$SNAPFS" -f -o "$4" "$2" "$3" 2>>"$WORK/log$1" &
	SNAPFS_PIDS+=($!)
	for _ in $(seq 100); do mountpoint -q "$3" && return 0; sleep 0.1; done
	cat "$WORK/log$1" >&2
	return 1
}
shared="etcd=$ETCD,etcd_prefix=/snapfs-bench/share,etcd_ttl=10"
mount_snapfs A "$SHARE" "$MNTA" "catalog=$WORK/catA,$shared,host_id=A"
mount_snapfs B "$SHARE" "$MNTB" "catalog=$WORK/catB,$shared,host_id=B"
mount_snapfs L "$LSHARE" "$MNTL" "catalog=$WORK/catL"
mkdir "$MNTA/tenants/b" "$MNTL/tenants/b"
for v in lat list prop; do mkdir "$MNTA/tenants/b/volumes/$v" "$MNTL/tenants/b/volumes/$v"; done
A=$MNTA/tenants/b/volumes B=$MNTB/tenants/b/volumes L=$MNTL/tenants/b/volumes

# 1. mkdir(2) of a snapshot, LMDB and etcd, beside qemu-img create of the
#    first snapshot's overlay (over the volume's raw base, same size), in
#    alternating rounds from one process.
base=$LSHARE/$(getfattr --absolute-names --only-values -n user.active_file "$L/lat")
read -r lmdb_mkdir etcd_mkdir qemu_create < <(python3 - "$N1" "$L/lat/snapshots" "$A/lat/snapshots" \
	"$base" "$QIMG" <<'EOS'
import os, subprocess, sys, time
n, lsnaps, esnaps, base, qdir = int(sys.argv[1]), *sys.argv[2:]
lm, et, qi = [], [], []
def timed(lst, f, *a, **kw):
    t = time.perf_counter(); f(*a, **kw); lst.append(time.perf_counter() - t)
for i in range(n):
    timed(lm, os.mkdir, os.path.join(lsnaps, "s%d" % i))
    timed(et, os.mkdir, os.path.join(esnaps, "s%d" % i))
    over = os.path.join(qdir, "o%d" % i)
    timed(qi, subprocess.run, ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw",
                               over, "1G"], check=True)
    os.unlink(over)
med = lambda l: sorted(l)[(len(l) - 1) // 2] * 1000
print("%.1f %.1f %.1f" % (med(lm), med(et), med(qi)))
EOS
)

# 1b. The floor under a snapshot mkdir with etcd: one etcd transaction from
#    a plain HTTP client (keep-alive, on the endpoint host A uses first),
#    of the shape a create writes (a compare and two puts of ~1 KiB). A
#    create costs two: its intent before the share changes, its final record
#    after .info (a crash in between is finished or undone from the intent).
etcd_txn=$(python3 - "$N1" "${ENDPOINTS[0]}" <<'EOS'
import base64, http.client, json, sys, time
n, ep = int(sys.argv[1]), sys.argv[2]
host, port = ep.rsplit(":", 1)
b = lambda s: base64.b64encode(s.encode()).decode()
c = http.client.HTTPConnection(host, int(port))
lat = []
for i in range(n):
    body = json.dumps({"compare": [{"key": b("/snapfs-bench/floor"), "target": "VERSION",
                                    "result": "GREATER", "version": "-1"}],
                       "success": [{"requestPut": {"key": b("/snapfs-bench/floor/a"), "value": b("x" * 1000)}},
                                   {"requestPut": {"key": b("/snapfs-bench/floor/b"), "value": b("y" * 1000)}}]})
    t = time.perf_counter()
    c.request("POST", "/v3/kv/txn", body)
    c.getresponse().read()
    lat.append(time.perf_counter() - t)
    time.sleep(0.02)
print("%.1f" % (sorted(lat)[(n - 1) // 2] * 1000))
EOS
)

# 2. N snapshots of one volume: created on A (and on the LMDB mount) with
#    mkdir(2) from one process; listed on B.
create_snaps() { # DIR: seconds to create N snapshots, then medians of the first/last 100 calls
	python3 - "$N" "$1" <<'EOS'
import os, sys, time
n, d = int(sys.argv[1]), sys.argv[2]
lat = []
t0 = time.perf_counter()
for i in range(n):
    a = time.perf_counter()
    os.mkdir(os.path.join(d, "m%d" % i))
    lat.append(time.perf_counter() - a)
med = lambda l: sorted(l)[(len(l) - 1) // 2] * 1000
print("%.1f %.1f %.1f" % (time.perf_counter() - t0, med(lat[:100]), med(lat[-100:])))
EOS
}
echo "creating $N snapshots on host A (etcd), then on the LMDB mount..." >&2
read -r etcd_create etcd_first100 etcd_last100 < <(create_snaps "$A/list/snapshots")
read -r lmdb_create lmdb_first100 lmdb_last100 < <(create_snaps "$L/list/snapshots")
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
timed_ls() { local a b; a=$EPOCHREALTIME; ls -l "$1" >/dev/null; b=$EPOCHREALTIME; secs "$a" "$b"; }
sleep 1.1 # the kernel's 1 s attribute cache of the LMDB mount's new entries expires
etcd_ls1=$(timed_ls "$B/list/snapshots")
etcd_ls2=$(timed_ls "$B/list/snapshots")
lmdb_ls1=$(timed_ls "$L/list/snapshots")
lmdb_ls2=$(timed_ls "$L/list/snapshots")
count_b=$(ls "$B/list/snapshots" | wc -l)

# 3. A change on A until B shows it, polled from one process: milliseconds
#    from the return of the call on A (and the call's own latency).
read -r xa_med xa_max xa_call mk_med mk_max mk_call < <(python3 - "$SAMPLES" "$A/prop" "$B/prop" <<'EOS'
import os, sys, time
n, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def until(pred):
    t = time.perf_counter()
    while not pred():
        if time.perf_counter() - t > 30:
            sys.exit("not seen on B after 30 s")
def xattr_seen(v):
    try:
        return os.getxattr(b, "user.meta.k") == v
    except OSError:
        return False
def exists(p):
    try:
        os.stat(p)
        return True
    except FileNotFoundError:
        return False
os.stat(b) # B has looked the volume up once
xa, xc, mk, mc = [], [], [], []
for i in range(n):
    v = b"v%d" % i
    t0 = time.perf_counter()
    os.setxattr(a, "user.meta.k", v)
    t1 = time.perf_counter()
    until(lambda: xattr_seen(v))
    xa.append(time.perf_counter() - t1); xc.append(t1 - t0)
    p = os.path.join(b, "snapshots", "p%d" % i)
    exists(p) # B's kernel has asked for the name before it exists
    t0 = time.perf_counter()
    os.mkdir(os.path.join(a, "snapshots", "p%d" % i))
    t1 = time.perf_counter()
    until(lambda: exists(p))
    mk.append(time.perf_counter() - t1); mc.append(t1 - t0)
med = lambda l: sorted(l)[(len(l) - 1) // 2] * 1000
print("%.1f %.1f %.1f %.1f %.1f %.1f" % (med(xa), max(xa) * 1000, med(xc), med(mk), max(mk) * 1000, med(mc)))
EOS
)
T_END=$EPOCHREALTIME

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }
echo
echo "snapfs shared catalogue (etcd) benchmark: $(nproc) cores, Linux $(uname -r), etcd $etcd_version"
echo "(3 members on loopback, heartbeat 50 ms, election 500 ms); hosts A and B over one share; one run"
echo "command: sudo N1=$N1 SAMPLES=$SAMPLES bench/multihost.sh $N"
echo
echo "1. Median latency of $N1 snapshot creations of one volume (per call, one process):"
printf '  %-44s %8s ms\n' "mkdir(2) .../snapshots/S, LMDB" "$lmdb_mkdir" \
	"mkdir(2) .../snapshots/S, etcd (host A)" "$etcd_mkdir" \
	"qemu-img create -f qcow2 -b BASE -F raw" "$qemu_create"
printf '  etcd / qemu-img: %s (target <= 0.3x); LMDB / qemu-img: %s\n' \
	"$(ratio "$etcd_mkdir" "$qemu_create")" "$(ratio "$lmdb_mkdir" "$qemu_create")"
floor=$(awk -v t="$etcd_txn" 'BEGIN { printf "%.1f", 2 * t }')
printf '  %-44s %8s ms\n' "one etcd txn, plain HTTP client (median)" "$etcd_txn" \
	"the two a crash-safe create needs" "$floor"
printf '  floor / qemu-img: %s: what an etcd mkdir cannot go under here\n' \
	"$(ratio "$floor" "$qemu_create")"
echo
echo "2. $N snapshots of one volume (mkdir(2) in a loop from one process), then ls -l:"
printf '  %-30s %12s %12s\n' "" "etcd" "LMDB"
printf '  %-30s %10s s %10s s\n' "creating them" "$etcd_create" "$lmdb_create"
printf '  %-30s %9s ms %9s ms\n' "  mkdir median, first 100" "$etcd_first100" "$lmdb_first100" \
	"  mkdir median, last 100" "$etcd_last100" "$lmdb_last100"
printf '  %-30s %9s ms %9s ms\n' "ls -l, first (etcd: on B)" "$(ms "$etcd_ls1")" "$(ms "$lmdb_ls1")" \
	"ls -l, second (etcd: on B)" "$(ms "$etcd_ls2")" "$(ms "$lmdb_ls2")"
printf '  B lists %s entries; target: second listing < 300 ms\n' "$count_b"
echo
echo "3. A change on A until B shows it ($SAMPLES samples, B polled in a tight loop from one process),"
echo "   from the return of the call on A:"
printf '  %-44s %8s %8s %12s\n' "" "median" "max" "call on A"
printf '  %-44s %5s ms %5s ms %9s ms\n' "setxattr user.meta.k -> getxattr on B" "$xa_med" "$xa_max" "$xa_call" \
	"mkdir .../snapshots/S -> stat on B" "$mk_med" "$mk_max" "$mk_call"
echo "  targets: median < 100 ms, max < 1000 ms"
echo
printf 'total runtime: %s s\n' "$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", b - a }')"
