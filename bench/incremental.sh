#!/bin/bash
# Benchmark: one night of an incremental backup through changes/, in one
# run, beside a full copy of the snapshot and beside what a user does
# without snapfs:
#   - a volume of VSIZE_GIB (default 100) GiB virtual size whose raw base
#     has BASE_GIB (default 10) GiB written (the part of the disk in use),
#   - snapshot s1, its disk.raw copied with cp --sparse=always (the first
#     night's backup),
#   - CHANGE_MIB (default 512) MiB written as 64 KiB clusters at spread
#     offsets over the whole virtual size (one night of a database), then
#     snapshot s2;
#   then, each timed, with the file read evicted from the page cache first
#   (a night's reads are cold; the share's files stay cached):
#   A. incremental: s2/changes/s1 applied onto the first night's backup by
#      examples/apply-changes (ranges from changes.json/s1, 4 threads; what
#      examples/incremental-backup.sh runs), then the sha256 check of the
#      changed ranges (apply-changes --sum of both, VERIFY=changes);
#   A2. the same by a single-threaded SEEK_DATA walk (--walk seek -j 1);
#   each copy is timed as it returns (its writes in the page cache) and
#   until sync -f of its output returns (on disk, as a backup must be);
#   B. full: cp --sparse=always s2/disk.raw (reads every allocated byte);
#   C. without snapfs: qemu-img convert -O raw of s2's chain (the share's
#      files; qemu-img compare cannot list differences: it stops at the
#      first one);
#   A3. a second night: CHANGE_MIB/4 written, snapshot s3, s3/changes/s2
#      applied (time proportional to the change: A3/A against bytes);
#   and, last, checks that the updated backup equals s3's disk.raw (sha256
#   of both whole images, not timed: minutes at 100 GiB). Prints each figure
#   as it is measured, then a table with bytes, seconds and ratios.
# Disk: about 3.2 x BASE_GIB GiB free in the work directory (the base, the
# backup, one full copy at a time); checked first. The brief's 20 GiB in use
# and 1 GiB changed: BASE_GIB=20 CHANGE_MIB=1024 (about 65 GiB free).
# Usage: sudo bench/incremental.sh [SNAPFS_BINARY]   (env WORKDIR, default /tmp;
# CHECK=0 skips the final whole-image sha256, which takes minutes)
set -euo pipefail
SNAPFS=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
VSIZE_GIB=${VSIZE_GIB:-100}
BASE_GIB=${BASE_GIB:-10}
CHANGE_MIB=${CHANGE_MIB:-512}
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
echo "# first night: cp --sparse=always s1/disk.raw"
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

# A. incremental
echo "# A. incremental: apply-changes s2/changes/s1 onto the backup (changes.json, 4 threads)"
evict "$S2/changes/s1"
timed "$WORK/backup.raw" python3 "$APPLY" --no-fsync "$S2/changes/s1" "$WORK/backup.raw"
copied=$out incr=$t incr_sync=$t_sync
echo "#    applied in $incr s, $incr_sync s with sync ($(mib "$copied") MiB)"
t1=$(now)
[ "$(python3 "$APPLY" --sum "$S2/changes/s1" "$S2/disk.raw")" = \
	"$(python3 "$APPLY" --sum "$S2/changes/s1" "$WORK/backup.raw")" ]
incr_verify=$(secs "$t1" "$(now)")
echo "#    changed ranges verified (apply-changes --sum of both) in $incr_verify s"

# A2. the same with the single-threaded SEEK_DATA loop (idempotent: it
# writes the same bytes again)
echo "# A2. the same by a SEEK_DATA walk, one thread"
evict "$S2/changes/s1"
timed "$WORK/backup.raw" python3 "$APPLY" --no-fsync --walk seek -j 1 "$S2/changes/s1" "$WORK/backup.raw"
seekw=$t seekw_sync=$t_sync
echo "#    $seekw s, $seekw_sync s with sync"

# B. full copy
echo "# B. full: cp --sparse=always s2/disk.raw"
evict "$S2/disk.raw"
timed "$WORK/full.raw" cp --sparse=always "$S2/disk.raw" "$WORK/full.raw"
full=$t full_sync=$t_sync
full_bytes=$(($(stat -c %b "$WORK/full.raw") * 512))
rm -f "$WORK/full.raw"
echo "#    $full s, $full_sync s with sync ($(mib "$full_bytes") MiB)"

# C. qemu-img convert of the chain
s2top=$(getfattr --absolute-names --only-values -n user.id "$S2")
s2file=$(qemu-img info --output=json "$SHARE/volume-$(getfattr --absolute-names --only-values -n user.id "$V").$s2top" |
	jq -r '.["backing-filename"]')
echo "# C. without snapfs: qemu-img convert -O raw of $s2file's chain"
timed "$WORK/conv.raw" qemu-img convert -f qcow2 -O raw "$SHARE/$s2file" "$WORK/conv.raw"
conv=$t conv_sync=$t_sync
conv_bytes=$(($(stat -c %b "$WORK/conv.raw") * 512))
rm -f "$WORK/conv.raw"
echo "#    $conv s, $conv_sync s with sync ($(mib "$conv_bytes") MiB)"
# A, a second night with a quarter of the change: time proportional to it
small_mib=$((CHANGE_MIB / 4))
echo "# a second night: ${small_mib} MiB written, snapshot s3, apply-changes s3/changes/s2"
write_change "$small_mib" 777 >/dev/null
mkdir "$V/snapshots/s3"
S3=$V/snapshots/s3
evict "$S3/changes/s2"
timed "$WORK/backup.raw" python3 "$APPLY" --no-fsync "$S3/changes/s2" "$WORK/backup.raw"
copied3=$out incr3=$t incr3_sync=$t_sync
echo "#    $incr3 s, $incr3_sync s with sync ($(mib "$copied3") MiB)"

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
printf '  %-50s %8s %9s %9s %12s\n' "" "MiB" "s" "s + sync" "vs A (+sync)"
printf '  %-50s %8s %9s %9s %12s\n' "A. apply-changes s2/changes/s1 (json, 4 threads)" "$(mib "$copied")" \
	"$incr" "$incr_sync" "1.0x (1.0x)"
printf '  %-50s %8s %9s\n' "   then verify the changed ranges (--sum of both)" "" "$incr_verify"
printf '  %-50s %8s %9s %9s %12s\n' "A2. the same by SEEK_DATA walk, 1 thread" "$(mib "$copied")" \
	"$seekw" "$seekw_sync" "$(ratio "$seekw" "$incr") ($(ratio "$seekw_sync" "$incr_sync"))"
printf '  %-50s %8s %9s %9s %12s\n' "B. cp --sparse=always s2/disk.raw (full)" "$(mib "$full_bytes")" \
	"$full" "$full_sync" "$(ratio "$full" "$incr") ($(ratio "$full_sync" "$incr_sync"))"
printf '  %-50s %8s %9s %9s %12s\n' "C. qemu-img convert -O raw of the chain" "$(mib "$conv_bytes")" \
	"$conv" "$conv_sync" "$(ratio "$conv" "$incr") ($(ratio "$conv_sync" "$incr_sync"))"
printf '  %-50s %8s %9s %9s %12s\n' "A3. next night: apply-changes s3/changes/s2" "$(mib "$copied3")" \
	"$incr3" "$incr3_sync" "$(ratio "$incr3" "$incr") ($(ratio "$incr3_sync" "$incr_sync"))"
printf '  %-50s %8s %9s\n' "first night: cp --sparse=always s1/disk.raw" "" "$first"
printf '  A3 moves %s of A'"'"'s bytes in %s of its time (proportional: the same)\n' \
	"$(awk -v a="$copied3" -v b="$copied" 'BEGIN { printf "%.2f", a / b }')" \
	"$(awk -v a="$incr3" -v b="$incr" 'BEGIN { printf "%.2f", a / b }')"
printf '  updated backup equals s3/disk.raw (sha256): %s; target: A >= 20x faster than B\n' "$same"
echo "  reproduce: sudo VSIZE_GIB=$VSIZE_GIB BASE_GIB=$BASE_GIB CHANGE_MIB=$CHANGE_MIB bench/incremental.sh"
[ "$same" != no ]
