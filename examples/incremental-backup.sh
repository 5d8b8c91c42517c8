#!/bin/bash
# Incremental nightly backup of one volume through snapfs's changes/ files.
#
#   first night: mkdir a snapshot, copy its disk.raw (cp --sparse=always),
#                verify (sha256 of the copy against disk.raw), keep the
#                snapshot: it is the next night's starting point.
#   each night:  mkdir a new snapshot S; copy snapshots/S/changes/P (P: the
#                previous night's snapshot) into the backup image with
#                apply-changes (beside this script), which reads and writes
#                only the clusters written since P; verify; rmdir P.
#
# Usage: incremental-backup.sh VOLUME_DIR DEST_DIR
#   VOLUME_DIR  e.g. /srv/snapfs/tenants/acme/volumes/db
#   DEST_DIR    holds disk.raw (the volume as of the last snapshot),
#               disk.raw.sha256, snapshot (that snapshot's name) and, while
#               an update runs, pending (the snapshot being applied).
# Environment:
#   VERIFY=changes  (default) compare the sha256 of the changed ranges of
#                   the backup with the same ranges of the snapshot's
#                   disk.raw: proportional to the change.
#   VERIFY=full     compare the sha256 of the whole backup with the whole
#                   disk.raw (reads the whole volume: weekly, say).
#   KEEP=1          keep the previous image as disk-<previous snapshot>.raw
#                   (cp --reflink=auto: free on btrfs or XFS, a full local
#                   copy elsewhere).
#
# The update is made in place and is idempotent: writing changes/P again
# gives the same bytes, so an update cut short (crash, full disk) is simply
# redone by the next run, which finds pending and both snapshots still there.
#
# Exit status: 0 backed up and verified; 1 failed (printed; the previous
# backup and its snapshot are kept for the next run); 2 bad arguments.
#
# Restore: DEST_DIR/disk.raw is a plain raw image of the volume as of the
# snapshot named in DEST_DIR/snapshot; see README.md, "Incremental backups".
set -uo pipefail

if [ $# -ne 2 ] || [ ! -d "$1/snapshots" ]; then
	echo "usage: $0 VOLUME_DIR DEST_DIR" >&2
	exit 2
fi
vol=${1%/}
dest=${2%/}
verify=${VERIFY:-changes}
case $verify in changes | full) ;; *) echo "VERIFY must be changes or full" >&2; exit 2 ;; esac
mkdir -p "$dest" || exit 1
name=$(basename "$vol")
stamp=$(date -u +%Y%m%dT%H%M%SZ)

fail() {
	echo "FAIL $name: $*" >&2
	exit 1
}

# apply-changes (beside this script, or on PATH) copies a changes file's
# data regions into the backup at the same offsets, reading the ranges from
# changes.json/, and checksums those ranges (--sum).
apply=$(dirname "$0")/apply-changes
[ -f "$apply" ] || apply=$(command -v apply-changes) ||
	{ echo "apply-changes not found beside $0 or on PATH" >&2; exit 1; }
# as itself when executable (#!/usr/bin/python3); copies under
# /usr/share/doc are not
run_apply() { if [ -x "$apply" ]; then "$apply" "$@"; else python3 "$apply" "$@"; fi; }
apply_changes() { run_apply "$1" "$2"; }
ranges_sum() { run_apply --sum "$2" "$1"; }

elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
whole_sum() { sha256sum <"$1" | cut -d' ' -f1; }

prev=$(cat "$dest/snapshot" 2>/dev/null)
pending=$(cat "$dest/pending" 2>/dev/null)
t0=$(date +%s.%N)

# ---- first night (or the previous snapshot is gone): a full copy ----
if [ -z "$prev" ] || [ ! -d "$vol/snapshots/$prev" ] || [ ! -f "$dest/disk.raw" ]; then
	snap=incr-$stamp
	mkdir "$vol/snapshots/$snap" || fail "snapshot refused"
	if ! cp --sparse=always "$vol/snapshots/$snap/disk.raw" "$dest/disk.raw.part"; then
		rm -f "$dest/disk.raw.part"
		rmdir "$vol/snapshots/$snap"
		fail "full copy"
	fi
	sum=$(whole_sum "$vol/snapshots/$snap/disk.raw")
	if [ "$sum" != "$(whole_sum "$dest/disk.raw.part")" ]; then
		rm -f "$dest/disk.raw.part"
		rmdir "$vol/snapshots/$snap"
		fail "the copy differs from the snapshot"
	fi
	sync -f "$dest/disk.raw.part"
	mv "$dest/disk.raw.part" "$dest/disk.raw"
	echo "$sum  disk.raw" >"$dest/disk.raw.sha256"
	echo "$snap" >"$dest/snapshot"
	rm -f "$dest/pending"
	# an older snapshot of a backup that was given up is no longer needed
	[ -n "$prev" ] && [ -d "$vol/snapshots/$prev" ] && rmdir "$vol/snapshots/$prev"
	echo "ok   $name: full copy as of $snap, $(stat -c %s "$dest/disk.raw") bytes," \
		"$(($(stat -c %b "$dest/disk.raw") * 512)) allocated, $(elapsed) s"
	exit 0
fi

# ---- an incremental night ----
if [ -n "$pending" ] && [ -d "$vol/snapshots/$pending" ]; then
	snap=$pending # redo an update cut short
else
	snap=incr-$stamp
	mkdir "$vol/snapshots/$snap" || fail "snapshot refused"
	echo "$snap" >"$dest/pending"
	sync -f "$dest/pending"
fi
changes=$vol/snapshots/$snap/changes/$prev
[ -f "$changes" ] || fail "$changes does not exist ($prev is not older than $snap?)"
if [ "${KEEP:-0}" = 1 ] && [ ! -f "$dest/disk-$prev.raw" ]; then
	cp --reflink=auto --sparse=always "$dest/disk.raw" "$dest/disk-$prev.raw" ||
		fail "keeping the previous image"
fi
copied=$(apply_changes "$changes" "$dest/disk.raw") || fail "applying $changes (rerun to finish)"
if [ "$verify" = full ]; then
	sum=$(whole_sum "$vol/snapshots/$snap/disk.raw")
	[ "$sum" = "$(whole_sum "$dest/disk.raw")" ] || fail "the backup differs from $snap's disk.raw"
	echo "$sum  disk.raw" >"$dest/disk.raw.sha256"
else
	[ "$(ranges_sum "$vol/snapshots/$snap/disk.raw" "$changes")" = \
		"$(ranges_sum "$dest/disk.raw" "$changes")" ] ||
		fail "the changed ranges of the backup differ from $snap's disk.raw"
	rm -f "$dest/disk.raw.sha256" # no longer the whole image's: VERIFY=full writes it again
fi
echo "$snap" >"$dest/snapshot"
rm -f "$dest/pending"
sync -f "$dest/snapshot"
# the previous snapshot is no longer needed (its changes file is closed:
# retry for the moment the kernel takes to tell snapfs)
for i in 1 2 3 4 5 6 7 8 9 10; do
	rmdir "$vol/snapshots/$prev" 2>/dev/null && break
	sleep 0.2
done
[ -d "$vol/snapshots/$prev" ] && echo "warning: $name: snapshot $prev not deleted" >&2
echo "ok   $name: $snap applied over $prev, $copied bytes copied, verified ($verify)," \
	"$(elapsed) s"
exit 0
