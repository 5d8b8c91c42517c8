#!/bin/bash
# Benchmark: one night of an incremental backup through changes/, in one
# run, beside a full copy of the snapshot and beside what a user does
# without snapfs:
#   - a volume of VSIZE_GIB (default 100) GiB virtual size whose raw base
#     has BASE_GIB (default 10) GiB written (the part of the disk in use),
#   - snapshot s1, its disk.raw copied with cp --sparse=always, cold (the
#     first night's backup: the base alone, read in order),
#   - CHANGE_MIB (default 1024) MiB written as 64 KiB clusters at spread
#     offsets over the whole virtual size (one night of a database), then
#     snapshot s2;
#   then each step timed twice: cold (sync, every cache dropped: a night's
#   reads come from the disk, as VMs writing with cache=none left them) and
#   warm (the share's files read into the page cache just before, the file
#   read through the mount evicted, the step's earlier output removed):
#   A. incremental: s2/changes/s1 applied onto the first night's backup by
#      examples/apply-changes (ranges from changes.json/s1, 8 threads; what
#      examples/incremental-backup.sh runs), then the sha256 check of the
#      changed ranges (apply-changes --sum of both, VERIFY=changes);
#   A2. the same by a single-threaded SEEK_DATA walk (--walk seek -j 1);
#   B. full: cp --sparse=always s2/disk.raw (reads every allocated byte);
#   C. without snapfs: qemu-img convert -O raw of s2's chain (the share's
#      files; qemu-img compare cannot list differences: it stops at the
#      first one);
#   A3. a second night: CHANGE_MIB/4 written, snapshot s3, s3/changes/s2
#      applied (time proportional to the change: A3/A against bytes);
#   A0. a night without writes: snapshot s4, s4/changes/s3 applied (no
#      bytes: the fixed part of every night, which A - A0 and A3 - A0 leave
#      out);
#   each timed as it returns (its writes in the page cache) and until
#   sync -f of its output returns (on disk, as a backup must be);
#   and, last, checks that the updated backup equals s3's disk.raw (sha256
#   of both whole images, not timed: minutes at 100 GiB). Prints each figure
#   as it is measured, then a table with bytes, seconds and ratios.
# Disk: about 3.2 x BASE_GIB GiB free in the work directory (the base, the
# backup, one full copy at a time); checked first.
# Usage: sudo bench/incremental.sh [SNAPFS_BINARY]   (env WORKDIR, default /tmp;
# CHECK=0 skips the final whole-image sha256, which takes minutes)
set -euo pipefail
SNAPFS=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
if [ ! -w /proc/sys/vm/drop_caches ]; then
	echo "run as root: the cold timings drop the page cache" >&2
	exit 1
fi
VSIZE_GIB=${VSIZE_GIB:-100}
BASE_GIB=${BASE_GIB:-10}
CHANGE_MIB=${CHANGE_MIB:-1024}
need_kib=$((BASE_GIB * 1024 * 1024 * 32 / 10 + CHANGE_MIB * 1024 * 2 + 1024 * 1024))
avail_kib=$(df -Pk "${WORKDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt "$need_kib" ]; then
	echo "need $((need_kib / 1048576)) GiB free in ${WORKDIR:-/tmp}, have $((avail_kib / 1048576)) GiB:" \
		"lower BASE_GIB ($BASE_GIB)" >&2
	exit 1
fi
WORK=$(mktemp -d "${WORKDIR:-/tmp}/snapfs-bench-incr.XXXXXX")
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog
PID=
mkdir -p "$SHARE" "$MNT" "$CAT"
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
mib() { awk -v a="$1" 'BEGIN { printf "%.0f", a / 1048576 }'; }
whole_sum() { sha256sum <"$1" | cut -d' ' -f1; }
# drop_caches: sync, then drop every cache (the reads that follow are cold)
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

"$SNAPFS" -f -o "catalog=$CAT,default_size=${VSIZE_GIB}G" "$SHARE" "$MNT" 2>>"$WORK/log" &
PID=$!
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT"
mkdir "$MNT/tenants/b" "$MNT/tenants/b/volumes/v"
V=$MNT/tenants/b/volumes/v
active() { getfattr --absolute-names --only-values -n user.active_file "$V"; }

echo "# writing ${BASE_GIB} GiB into the base of a ${VSIZE_GIB} GiB volume"
for i in $(seq 0 $((BASE_GIB - 1))); do echo "write -P $((i % 200 + 1)) ${i}G 1G"; done |
	qemu-io -f raw "$SHARE/$(active)" >/dev/null
mkdir "$V/snapshots/s1"
echo "# first night: cp --sparse=always s1/disk.raw (cold)"
drop_caches
t0=$(now)
cp --sparse=always "$V/snapshots/s1/disk.raw" "$WORK/backup.raw"
t1=$(now)
first=$(secs "$t0" "$t1")
echo "#    $first s"

# write_change MIB SEED: MIB MiB as 64 KiB clusters spread over the volume,
# into its active file; prints what that file then allocates, in bytes
write_change() {
	local n=$(($1 * 16)) clusters=$((VSIZE_GIB * 16384)) top i w args writes
	# (-c commands in batches: qemu-io reading commands from a pipe drops some)
	mapfile -t writes < <(awk -v n="$n" -v c="$clusters" -v seed="$2" 'BEGIN { for (i = 0; i < n; i++) {
		# distinct clusters: a prime stride (coprime with c = 2^14 x VSIZE_GIB
		# unless VSIZE_GIB is a multiple of 40009)
		k = (i * 40009 + seed) % c
		printf "write -P %d %.0f 64k\n", (i + seed) % 250 + 1, k * 65536 } }')
	top=$(active)
	for ((i = 0; i < ${#writes[@]}; i += 512)); do
		args=()
		for w in "${writes[@]:i:512}"; do args+=(-c "$w"); done
		qemu-io -f qcow2 "${args[@]}" "$SHARE/$top" >/dev/null
	done
	qemu-img map --output=json -f qcow2 "$SHARE/$top" |
		jq '[.[] | select(.depth == 0 and .present) | .length] | add // 0'
}

echo "# writing ${CHANGE_MIB} MiB as 64 KiB clusters spread over the volume"
written=$(write_change "$CHANGE_MIB" 12345)
echo "#    the overlay allocates $(mib "$written") MiB"
mkdir "$V/snapshots/s2"
S2=$V/snapshots/s2

# run directly: its #!/usr/bin/python3, not whatever python3 PATH finds first
APPLY=$(cd "$(dirname "$0")/.." && pwd)/examples/apply-changes
# evict FILE: drop FILE's pages from the page cache (a night's reads are cold)
evict() { python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"; }
# timed OUTPUT CMD...: runs CMD (its stdout in $out) and times it as it
# returns ($t) and until sync -f OUTPUT returns ($t_sync)
timed() {
	local dst=$1 t0 t1
	shift
	t0=$(now)
	out=$("$@")
	t1=$(now)
	t=$(secs "$t0" "$t1")
	sync -f "$dst"
	t_sync=$(secs "$t0" "$(now)")
}

# step NAME READ OUTPUT CMD...: times CMD cold (caches dropped: a night's
# reads come from the disk, as a hypervisor's cache=none writes left them)
# and warm (the share's files read into the page cache just before, READ
# evicted); an OUTPUT that CMD writes whole (not the backup) is removed
# before each run; sets NAME_cold, NAME_cold_sync, NAME_warm,
# NAME_warm_sync and $out
step() {
	local name=$1 read=$2 dst=$3 mode
	shift 3
	for mode in cold warm; do
		[ "$dst" = "$WORK/backup.raw" ] || rm -f "$dst"
		if [ $mode = cold ]; then
			drop_caches
		else
			# (cp reads the data of sparse files only)
			for f in "$SHARE"/volume-*; do cp --sparse=always "$f" /dev/null; done
			[ -z "$read" ] || evict "$read"
		fi
		timed "$dst" "$@"
		printf -v "${name}_$mode" %s "$t"
		printf -v "${name}_${mode}_sync" %s "$t_sync"
		echo "#    $mode: $t s, $t_sync s with sync"
	done
}

# A. incremental (applied twice: the same bytes, idempotent)
echo "# A. incremental: apply-changes s2/changes/s1 onto the backup (changes.json, 8 threads)"
step A "$S2/changes/s1" "$WORK/backup.raw" "$APPLY" --no-fsync "$S2/changes/s1" "$WORK/backup.raw"
copied=$out
t1=$(now)
[ "$("$APPLY" --sum "$S2/changes/s1" "$S2/disk.raw")" = \
	"$("$APPLY" --sum "$S2/changes/s1" "$WORK/backup.raw")" ]
incr_verify=$(secs "$t1" "$(now)")
echo "#    $(mib "$copied") MiB; changed ranges verified (apply-changes --sum of both) in $incr_verify s (warm)"

echo "# A2. the same by a SEEK_DATA walk, one thread"
step A2 "$S2/changes/s1" "$WORK/backup.raw" \
	"$APPLY" --no-fsync --walk seek -j 1 "$S2/changes/s1" "$WORK/backup.raw"

echo "# B. full: cp --sparse=always s2/disk.raw"
step B "$S2/disk.raw" "$WORK/full.raw" cp --sparse=always "$S2/disk.raw" "$WORK/full.raw"
full_bytes=$(($(stat -c %b "$WORK/full.raw") * 512))
rm -f "$WORK/full.raw"

s2top=$(getfattr --absolute-names --only-values -n user.id "$S2")
s2file=$(qemu-img info --output=json "$SHARE/volume-$(getfattr --absolute-names --only-values -n user.id "$V").$s2top" |
	jq -r '.["backing-filename"]')
echo "# C. without snapfs: qemu-img convert -O raw of $s2file's chain"
step C "" "$WORK/conv.raw" qemu-img convert -f qcow2 -O raw "$SHARE/$s2file" "$WORK/conv.raw"
conv_bytes=$(($(stat -c %b "$WORK/conv.raw") * 512))
rm -f "$WORK/conv.raw"

# A3. a second night with a quarter of the change: time proportional to it
small_mib=$((CHANGE_MIB / 4))
echo "# A3. a second night: ${small_mib} MiB written, snapshot s3, apply-changes s3/changes/s2"
write_change "$small_mib" 777 >/dev/null
mkdir "$V/snapshots/s3"
S3=$V/snapshots/s3
step A3 "$S3/changes/s2" "$WORK/backup.raw" "$APPLY" --no-fsync "$S3/changes/s2" "$WORK/backup.raw"
copied3=$out

echo "# A0. a night without writes: snapshot s4, apply-changes s4/changes/s3 (the fixed part)"
mkdir "$V/snapshots/s4"
step A0 "$V/snapshots/s4/changes/s3" "$WORK/backup.raw" \
	"$APPLY" --no-fsync "$V/snapshots/s4/changes/s3" "$WORK/backup.raw"
copied0=$out

same="not checked (CHECK=0)"
if [ "${CHECK:-1}" = 1 ]; then
	echo "# checking the updated backup against s3/disk.raw (sha256 of 2 x ${VSIZE_GIB} GiB, not timed)"
	sum_snap=$(whole_sum "$S3/disk.raw")
	sum_copy=$(whole_sum "$WORK/backup.raw")
	same=no
	[ -n "$sum_snap" ] && [ "$sum_snap" = "$sum_copy" ] && same=yes
fi

echo
echo "incremental backup of a ${VSIZE_GIB} GiB volume, ${BASE_GIB} GiB in use, ${CHANGE_MIB} MiB changed" \
	"($(nproc) cores, $(uname -r))"
printf '  %-44s %6s %7s %7s %7s %7s  %s\n' "" "MiB" "cold s" "+ sync" "warm s" "+ sync" \
	"vs A: cold (+sync), warm (+sync)"
row() { # row NAME LABEL MIB
	local c=${1}_cold w=${1}_warm
	local cs=${c}_sync ws=${w}_sync
	printf '  %-44s %6s %7s %7s %7s %7s  %s\n' "$2" "$3" "${!c}" "${!cs}" "${!w}" "${!ws}" \
		"$(ratio "${!c}" "$A_cold") ($(ratio "${!cs}" "$A_cold_sync")), $(ratio "${!w}" "$A_warm") ($(ratio "${!ws}" "$A_warm_sync"))"
}
row A "A. apply-changes s2/changes/s1 (json, -j 8)" "$(mib "$copied")"
printf '  %-44s %6s %7s %7s %7s\n' "   then --sum of both (VERIFY=changes)" "" "" "" "$incr_verify"
row A2 "A2. the same, SEEK_DATA walk, -j 1" "$(mib "$copied")"
row B "B. cp --sparse=always s2/disk.raw (full)" "$(mib "$full_bytes")"
row C "C. qemu-img convert -O raw of the chain" "$(mib "$conv_bytes")"
row A3 "A3. next night: s3/changes/s2" "$(mib "$copied3")"
row A0 "A0. a night without writes: s4/changes/s3" "$(mib "$copied0")"
printf '  %-44s %6s %7s\n' "first night: cp --sparse=always s1/disk.raw" "" "$first"
# share NUM DEN: NUM / DEN to two places
share() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
bytes_share=$(share "$copied3" "$copied")
printf '  A3 moves %s of A'"'"'s bytes in %s (cold) and %s (warm) of its time;\n' \
	"$bytes_share" "$(share "$A3_cold" "$A_cold")" "$(share "$A3_warm" "$A_warm")"
printf '  less the fixed part A0: %s (cold) and %s (warm) (proportional: %s)\n' \
	"$(share "$(secs "$A0_cold" "$A3_cold")" "$(secs "$A0_cold" "$A_cold")")" \
	"$(share "$(secs "$A0_warm" "$A3_warm")" "$(secs "$A0_warm" "$A_warm")")" "$bytes_share"
printf '  updated backup equals s3/disk.raw (sha256): %s; target: A >= 20x faster than B\n' "$same"
echo "  reproduce: sudo VSIZE_GIB=$VSIZE_GIB BASE_GIB=$BASE_GIB CHANGE_MIB=$CHANGE_MIB bench/incremental.sh"
[ "$same" != no ]
