#!/bin/bash
# Benchmark: the repeat (page-cache) read of a snapshot's disk.raw beside the
# equivalent raw file on the local file system, in alternating runs, and the
# folio sizes the kernel gives each file's page cache.
#
# The same 2 GiB snapshot as snapshot-read.sh (raw base + qcow2 overlay, 1 GiB
# allocated). Each run: drop the page cache, read the share's files back in,
# mount, read disk.raw three times, unmount; then read the raw file three
# times (its first read from the disk). Prints every run, the medians and the
# median of each run's ratio: snapfs 2nd / raw 3rd is what snapshot-read.sh
# calls "repeat / repeat"; 2nd / 2nd and 3rd / 3rd compare equal read counts.
#
# Folio sizes: the filemap:mm_filemap_add_to_page_cache tracepoint (order of
# each folio added to the page cache) during a first read of 256 MiB of each
# file, in a private tracefs instance. Skipped without tracefs.
#
# Usage: sudo bench/repeat-read.sh [SNAPFS_BINARY]   (env RUNS, default 7)
set -euo pipefail
SNAPFS=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
RUNS=${RUNS:-7}
WORK=$(mktemp -d /tmp/snapfs-bench.XXXXXX)
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog RAW=$WORK/equivalent.raw
TRACEFS=/sys/kernel/tracing INST=
PID=
mkdir -p "$SHARE" "$MNT" "$CAT"
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	[ -n "$INST" ] && rmdir "$INST" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# "WALL/CPU": MiB/s of reading FILE with dd bs=1M over the elapsed time and
# over dd's user+sys time (10 ms resolution; less swayed by other load).
read_mibs() {
	/usr/bin/time -f "TIME %S %U" dd if="$1" of=/dev/null bs=1M 2>&1 | awk '
		/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") secs = $(i - 1)
			   mib = $1 / 1048576 }
		/^TIME/ { cpu = $2 + $3 }
		END { printf "%.0f/%.0f", mib / secs, (cpu > 0 ? mib / cpu : 0) }'
}

mount_snapfs() {
	"$SNAPFS" -f -o "catalog=$CAT,default_size=2G" "$SHARE" "$MNT" 2>>"$WORK/log" &
	PID=$!
	for _ in $(seq 50); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
	return 1
}
umount_snapfs() { fusermount3 -u "$MNT"; wait "$PID" || true; PID=; }
cold_share() { sync; echo 1 >/proc/sys/vm/drop_caches; cat "$SHARE"/* >/dev/null; }

mount_snapfs
mkdir "$MNT/tenants/b" "$MNT/tenants/b/volumes/v"
V=$MNT/tenants/b/volumes/v
active() { getfattr --only-values -n user.active_file "$V" 2>/dev/null; }
qemu-io -f raw -c 'write -P 0x5a 0 512M' "$SHARE/$(active)" >/dev/null
mkdir "$V/snapshots/s1"
qemu-io -f qcow2 -c 'write -P 0xa5 1G 512M' "$SHARE/$(active)" >/dev/null
mkdir "$V/snapshots/s2"
top=$(qemu-img info --output=json "$SHARE/$(active)" | jq -r '.["backing-filename"]')
qemu-img convert -O raw "$SHARE/$top" "$RAW"
umount_snapfs
DISK=$V/snapshots/s2/disk.raw

# Folio orders of FILE's page cache on a first read of its first 256 MiB:
# "COUNT x SIZE" pairs.
folio_orders() {
	local dev ino
	dev=$(stat -c '%d' "$1") ino=$(stat -c '%i' "$1")
	# stat's st_dev is the user dev_t; the tracepoint has the kernel's
	# (major << 20 | minor).
	echo "s_dev == $(((dev >> 8 & 0xfff) << 20 | (dev & 0xff) | (dev >> 12 & 0xfff00))) && i_ino == $ino" \
		>"$INST/events/filemap/mm_filemap_add_to_page_cache/filter"
	echo >"$INST/trace"
	echo 1 >"$INST/events/filemap/mm_filemap_add_to_page_cache/enable"
	dd if="$1" of=/dev/null bs=1M count=256 2>/dev/null
	echo 0 >"$INST/events/filemap/mm_filemap_add_to_page_cache/enable"
	grep -o 'order=[0-9]*' "$INST/trace" | sort -t= -k2 -n | uniq -c |
		awk '{ split($2, o, "="); printf "%s%d x %dK", sep, $1, 4 * 2 ^ o[2]; sep = ", " }'
}
fuse_folios=- raw_folios=-
if [ -d "$TRACEFS/instances" ] && INST=$TRACEFS/instances/snapfs-bench.$$ && mkdir "$INST"; then
	echo 8192 >"$INST/buffer_size_kb"
	cold_share
	mount_snapfs
	fuse_folios=$(folio_orders "$DISK")
	umount_snapfs
	raw_folios=$(folio_orders "$RAW")
	rmdir "$INST"
	INST=
fi

rows=()
for r in $(seq 1 "$RUNS"); do
	cold_share
	mount_snapfs
	s1=$(read_mibs "$DISK") s2=$(read_mibs "$DISK") s3=$(read_mibs "$DISK")
	umount_snapfs
	r1=$(read_mibs "$RAW") r2=$(read_mibs "$RAW") r3=$(read_mibs "$RAW")
	rows+=("$r $s1 $s2 $s3 $r1 $r2 $r3")
done

echo
echo "snapfs repeat-read benchmark ($(nproc) cores, $(uname -r), $RUNS alternating runs)"
echo "command: sudo RUNS=$RUNS bench/repeat-read.sh"
echo
echo "Folios added to the page cache by a first read of 256 MiB:"
printf '  %-20s %s\n' "snapfs disk.raw" "$fuse_folios" "raw file" "$raw_folios"
echo
echo "Sequential read of the 2 GiB snapshot, dd bs=1M, MiB/s over wall time / over dd's CPU time:"
printf '  %-6s %13s %13s %13s %13s %13s %13s\n' run "snapfs 1st" "2nd" "3rd" "raw 1st" "2nd" "3rd"
printf '%s\n' "${rows[@]}" | awk '{ printf "  %-6s %13s %13s %13s %13s %13s %13s\n", $1, $2, $3, $4, $5, $6, $7 }'
printf '%s\n' "${rows[@]}" | awk '
	function med(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	{ for (c = 2; c <= 7; c++) { split($c, v, "/"); w[c, NR] = v[1]; u[c, NR] = v[2] } }
	END {
		n = NR
		line = "  median"
		for (c = 2; c <= 7; c++) {
			for (i = 1; i <= n; i++) { a[i] = w[c, i]; b[i] = u[c, i] }
			line = line sprintf(" %13s", sprintf("%.0f/%.0f", med(a, n), med(b, n)))
		}
		print line
		print ""
		split("3 7 snapfs 2nd / raw 3rd (snapshot-read.sh repeat ratio)|3 6 snapfs 2nd / raw 2nd|4 7 snapfs 3rd / raw 3rd", rs, "|")
		for (k = 1; k <= 3; k++) {
			split(rs[k], p, " "); name = substr(rs[k], length(p[1] p[2]) + 3)
			for (i = 1; i <= n; i++) { a[i] = w[p[1], i] / w[p[2], i]; b[i] = u[p[1], i] / u[p[2], i] }
			printf "  median of per-run ratios, %-52s wall %.2fx, cpu %.2fx\n", name ":", med(a, n), med(b, n)
		}
	}'
