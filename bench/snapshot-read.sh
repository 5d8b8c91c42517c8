#!/bin/bash
# Benchmark: reading a snapshot's disk.raw, in one run, beside peers:
#   - qemu-storage-daemon --export type=fuse of the same chain
#   - a plain read of the equivalent raw file (qemu-img convert of the chain)
# and a sparse copy of a mostly empty 100 GiB snapshot, and mkdir latency of
# a snapshot beside `qemu-img create -b` of the same overlay.
# Usage: sudo bench/snapshot-read.sh [SNAPFS_BINARY]
set -euo pipefail
SNAPFS=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
WORK=$(mktemp -d /tmp/snapfs-bench.XXXXXX)
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog QSD_FILE=$WORK/qsd-export
PID= QSD_PID=
mkdir -p "$SHARE" "$MNT" "$CAT"
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	if [ -n "$QSD_PID" ]; then kill "$QSD_PID" 2>/dev/null; wait "$QSD_PID" 2>/dev/null; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# MiB/s of reading FILE sequentially with dd bs=1M (COUNT MiB).
read_mibs() {
	dd if="$1" of=/dev/null bs=1M 2>&1 | awk '/copied/ {
		for (i = 1; i <= NF; i++) if ($i == "s,") { secs = $(i - 1) }
		printf "%.0f", ($1 / 1048576) / secs }'
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
now() { echo "$EPOCHREALTIME"; } # bash 5: no fork, so timings hold only the command

qsd_export() { # FILE_ON_SHARE: export its chain read-only at QSD_FILE
	touch "$QSD_FILE"
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=f,filename=$SHARE/$1,read-only=on" \
		--blockdev "driver=qcow2,node-name=q,file=f,read-only=on" \
		--export "type=fuse,id=e,node-name=q,mountpoint=$QSD_FILE,writable=off" &
	QSD_PID=$!
	for _ in $(seq 50); do mountpoint -q "$QSD_FILE" && return 0; sleep 0.1; done
	return 1
}
qsd_stop() { kill "$QSD_PID"; wait "$QSD_PID" 2>/dev/null || true; QSD_PID=; }

mount_snapfs() {
	"$SNAPFS" -f -o "catalog=$CAT,default_size=$1" "$SHARE" "$MNT" 2>>"$WORK/log" &
	PID=$!
	for _ in $(seq 50); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
	return 1
}
umount_snapfs() { fusermount3 -u "$MNT"; wait "$PID" || true; PID=; }

# 1. A 2 GiB volume: 512 MiB written to the raw base, a snapshot, 512 MiB to
#    the overlay, a second snapshot: its data is raw base + qcow2 overlay
#    with 1 GiB allocated.
mount_snapfs 2G
mkdir "$MNT/tenants/b" "$MNT/tenants/b/volumes/v"
V=$MNT/tenants/b/volumes/v
active() { getfattr --only-values -n user.active_file "$V"; }
qemu-io -f raw -c 'write -P 0x5a 0 512M' "$SHARE/$(active)" >/dev/null
mkdir "$V/snapshots/s1"
qemu-io -f qcow2 -c 'write -P 0xa5 1G 512M' "$SHARE/$(active)" >/dev/null
mkdir "$V/snapshots/s2"
top=$(qemu-img info --output=json "$SHARE/$(active)" | jq -r '.["backing-filename"]')
qemu-img convert -O raw "$SHARE/$top" "$WORK/equivalent.raw"
cat "$SHARE"/* >/dev/null # the share's files in the page cache for every reader
umount_snapfs
sync; echo 3 >/proc/sys/vm/drop_caches
cat "$SHARE"/* "$WORK/equivalent.raw" >/dev/null

mount_snapfs 2G
snap_first=$(read_mibs "$V/snapshots/s2/disk.raw")
snap_repeat=$(read_mibs "$V/snapshots/s2/disk.raw")
check=$(cmp "$V/snapshots/s2/disk.raw" "$WORK/equivalent.raw" && echo equal || echo DIFFERENT)
qsd_export "$top"
qsd_first=$(read_mibs "$QSD_FILE")
qsd_repeat=$(read_mibs "$QSD_FILE")
qsd_stop
raw_cached=$(read_mibs "$WORK/equivalent.raw")
sync; echo 1 >/proc/sys/vm/drop_caches
cat "$SHARE"/* >/dev/null
raw_first=$(read_mibs "$WORK/equivalent.raw")
cat "$WORK/equivalent.raw" >/dev/null
raw_repeat=$(read_mibs "$WORK/equivalent.raw")
rm -f "$WORK/equivalent.raw"

# 2. mkdir latency of a snapshot beside qemu-img create -b of an overlay.
lat=()
for i in $(seq 1 21); do
	a=$(now); mkdir "$V/snapshots/lat$i"; b=$(now)
	lat+=("$(secs "$a" "$b")")
done
# mkdir(2) alone, from one process: /bin/mkdir above also pays for starting
# a process, which costs ~10 ms on these machines (see /bin/true below).
syscall_mkdir=$(python3 - "$V/snapshots" <<'EOS'
import os, sys, time
lat = []
for i in range(21):
    a = time.perf_counter()
    os.mkdir(os.path.join(sys.argv[1], "sys%d" % i))
    lat.append(time.perf_counter() - a)
print("%.1f" % (sorted(lat)[10] * 1000))
EOS
)
tlat=()
for i in $(seq 1 21); do
	a=$(now); /bin/true; b=$(now)
	tlat+=("$(secs "$a" "$b")")
done
qlat=()
for i in $(seq 1 21); do
	a=$(now)
	qemu-img create -q -f qcow2 -b "$(active)" -F qcow2 "$SHARE/bench-overlay-$i" 2G
	b=$(now)
	qlat+=("$(secs "$a" "$b")")
	rm -f "$SHARE/bench-overlay-$i"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] * 1000 }'; }
snap_mkdir=$(median "${lat[@]}")
qemu_create=$(median "${qlat[@]}")
spawn=$(median "${tlat[@]}")
umount_snapfs

# 3. cp --sparse=always of a 100 GiB snapshot with 64 MiB allocated.
mount_snapfs 100G
mkdir "$MNT/tenants/b/volumes/big"
B=$MNT/tenants/b/volumes/big
qemu-io -f raw -c 'write -P 1 0 32M' -c 'write -P 2 50G 32M' \
	"$SHARE/$(getfattr --only-values -n user.active_file "$B")" >/dev/null
mkdir "$B/snapshots/s"
qemu-io -f qcow2 -c 'write -P 3 10G 1M' "$SHARE/$(getfattr --only-values -n user.active_file "$B")" >/dev/null
mkdir "$B/snapshots/s2"
btop=$(qemu-img info --output=json "$SHARE/$(getfattr --only-values -n user.active_file "$B")" | jq -r '.["backing-filename"]')
a=$(now); cp --sparse=always "$B/snapshots/s2/disk.raw" "$WORK/copy-snapfs"; b=$(now)
snap_cp=$(secs "$a" "$b")
snap_du=$(du -m "$WORK/copy-snapfs" | cut -f1)
rm -f "$WORK/copy-snapfs"
qsd_export "$btop"
a=$(now); cp --sparse=always "$QSD_FILE" "$WORK/copy-qsd"; b=$(now)
qsd_cp=$(secs "$a" "$b")
qsd_du=$(du -m "$WORK/copy-qsd" | cut -f1)
qsd_stop
rm -f "$WORK/copy-qsd"

# 4. ls -l of 2,000 snapshots (of one volume).
for i in $(seq 1 2000); do echo "$B/snapshots/m$i"; done | xargs -n 200 mkdir
sleep 1.1
a=$(now); ls -l "$B/snapshots" >/dev/null; b=$(now)
ls_2000=$(secs "$a" "$b")
umount_snapfs

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "snapfs snapshot benchmark ($(nproc) cores, one run; content check: $check)"
echo "command: sudo bench/snapshot-read.sh"
echo
echo "Sequential read of a 2 GiB snapshot (1 GiB allocated; raw base + qcow2 overlay), dd bs=1M, MiB/s:"
printf '  %-38s %10s %10s\n' "" "first" "repeat"
printf '  %-38s %10s %10s\n' "snapfs disk.raw" "$snap_first" "$snap_repeat"
printf '  %-38s %10s %10s\n' "qemu-storage-daemon fuse export" "$qsd_first" "$qsd_repeat"
printf '  %-38s %10s %10s\n' "plain raw file (page cache dropped)" "$raw_first" "$raw_repeat"
printf '  %-38s %10s\n' "plain raw file (in page cache)" "$raw_cached"
printf '  snapfs first / qsd first: %s (target >= 8x); snapfs repeat / raw repeat: %s (target >= 0.5x)\n' \
	"$(ratio "$snap_first" "$qsd_first")" "$(ratio "$snap_repeat" "$raw_repeat")"
echo
echo "cp --sparse=always of a 100 GiB snapshot with 64 MiB allocated:"
printf '  %-38s %8s s %6s MiB copied\n' "snapfs disk.raw" "$snap_cp" "$snap_du"
printf '  %-38s %8s s %6s MiB copied\n' "qemu-storage-daemon fuse export" "$qsd_cp" "$qsd_du"
printf '  snapfs / qsd time: %s (target <= 3x)\n' "$(ratio "$snap_cp" "$qsd_cp")"
echo
echo "Median latency of 21 snapshot creations:"
printf '  %-38s %8s ms\n' "mkdir(2) of .../snapshots/S" "$syscall_mkdir" \
	"/bin/mkdir .../snapshots/S" "$snap_mkdir" "qemu-img create -b (same overlay)" "$qemu_create" \
	"/bin/true (starting a process)" "$spawn"
printf '  snapfs mkdir(2) / qemu-img: %s (target <= 0.2x); /bin/mkdir / qemu-img: %s\n' \
	"$(ratio "$syscall_mkdir" "$qemu_create")" "$(ratio "$snap_mkdir" "$qemu_create")"
echo
printf 'ls -l of 2,000 snapshots: %s s (target < 1 s)\n' "$ls_2000"
