#!/bin/bash
# delete-races.sh - what other clients meet while a snapshot or a group
# snapshot is being deleted (each held at a fault point with
# SNAPFS_STALL_AT), the races the soak (soak.sh) found:
# - opening the disk.raw of a snapshot being deleted answers EBUSY, as for
#   any operation its status forbids (it answered EIO with an error line);
# - the disk.raw of another snapshot of the volume reads right while the
#   merge has rebased the file above the merged one (the catalogue still
#   names the merged file: "not the next layer", EIO) and after the merged
#   file is gone (ENOENT), with no error line;
# - a group snapshot's delete records every member's at once: a member
#   cannot be opened and no other operation starts on a member's volume
#   until its merge is done (EBUSY), so the delete completes (a reader or
#   an operation that slipped in between the members left the group
#   snapshot half deleted, error_deleting, with EBUSY);
# - a delete refused because a process holds the active file's write lock
#   leaves one info line with the reason, no error line.
# Needs a --enable-fault-injection build.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C

need_fault_injection
plan 22

declare -A EXP
T=$MNT/tenants/acme
V=$T/volumes
# errors_since N: the daemon's error lines after line N of the log
errors_since() { tail -n +"$(($1 + 1))" "$LOG" | grep -E 'snapfs: (error|warning): ' | grep -v 'fault injection: stalling'; }
# wait_log N TEXT: until the log has TEXT after line N (10 s at most)
wait_log() {
	local i
	for i in $(seq 1 100); do
		tail -n +"$(($1 + 1))" "$LOG" | grep -qF -- "$2" && return 0
		sleep 0.1
	done
	return 1
}

# ---- a group snapshot being deleted, held at its first member ----
# (On one host the kernel holds the directories of an rmdir locked, so a
# reader meets a snapshot being deleted through another directory: a
# group snapshot's member, or on another host.)
SNAPFS_STALL_AT=snapshot-delete-recorded SNAPFS_STALL_MS=2500 mount_snapfs || exit 1
mkdir "$T" "$V/v"
hv "$V/v" "write -P 0x11 0 1M"
mkdir "$V/v/snapshots/s1"
hv "$V/v" "write -P 0x22 0 512k"
mkdir "$V/v/snapshots/s2"
mkdir "$V/a" "$V/b" "$T/consistencygroups/G"
hv "$V/a" "write -P 0xa1 0 1M"
hv "$V/b" "write -P 0xb1 0 1M"
ln -s ../../../volumes/a "$T/consistencygroups/G/volumes/a"
ln -s ../../../volumes/b "$T/consistencygroups/G/volumes/b"
mkdir "$T/consistencygroups/G/cgsnapshots/C"
n=$(wc -l <"$LOG")
rmdir "$T/consistencygroups/G/cgsnapshots/C" 2>"$WORK/rmdir.err" &
bg=$!
wait_log "$n" "stalling at snapshot-delete-recorded"
check_eq "every member is deleting from the start" "deleting deleting" \
	"$(xattr user.status "$V/a/snapshots/C") $(xattr user.status "$V/b/snapshots/C")"
check_errno "the disk.raw of the member being merged cannot be opened: EBUSY (not EIO)" EBUSY \
	cat "$V/a/snapshots/C/disk.raw"
# a reader that would hold the last member open until the delete is over
(exec 3<"$V/b/snapshots/C/disk.raw" && sleep 4) 2>"$WORK/open.err" &
holder=$!
for _ in $(seq 1 20); do [ -s "$WORK/open.err" ] && break; sleep 0.05; done
check "the last member's disk.raw cannot be opened meanwhile: EBUSY" grep -q "Device or resource busy" "$WORK/open.err"
check_errno "no snapshot of a member's volume meanwhile: EBUSY" EBUSY mkdir "$V/b/snapshots/x"
wait $bg
rc=$?
wait $holder
check_eq "then the group snapshot's delete completes" "0 " "$rc $(cat "$WORK/rmdir.err")"
check_eq "the group snapshot and its members are gone" "||" \
	"$(ls "$T/consistencygroups/G/cgsnapshots")|$(ls "$V/a/snapshots")|$(ls "$V/b/snapshots")"
check_eq "the members' volumes are available and idle" "available available" \
	"$(xattr user.status "$V/a") $(xattr user.status "$V/b")"
check "a snapshot of a member's volume works again" mkdir "$V/b/snapshots/x"
check_eq "no error line" "" "$(errors_since "$n")"

# ---- a process holds the active file's write lock ----
busy_file=$(xattr user.active_file "$V/v")
hold_write_lock "$busy_file"
n=$(wc -l <"$LOG")
check_errno "rmdir while a process holds the active file's write lock: EBUSY" EBUSY rmdir "$V/v/snapshots/s2"
release_write_lock
check_eq "one info line with the reason, no error line" \
	"snapfs: info: rmdir tenants/acme/volumes/v/snapshots/s2: EBUSY: $SHARE/$busy_file is in use: a process (QEMU?) holds its write lock (byte 101)" \
	"$(tail -n +"$((n + 1))" "$LOG")"
unmount_snapfs

# ---- reads of the other snapshots while a merge is held ----
# w: s1 s2 s3 s4, each over different data; deleting s2 commits s2's
# overlay O2 into O1 and rebases O3 (s4's data) onto O1, then removes O2.
# (The kernel holds snapshots/ locked during the rmdir: the reads use the
# names it has cached, as a reader that listed them a moment before would;
# attr_timeout=30 keeps them.)
SNAPFS_STALL_AT=snapshot-delete-rebase SNAPFS_STALL_MS=2500 mount_snapfs attr_timeout=30 || exit 1
W=$V/w
mkdir "$W"
for i in 1 2 3 4; do
	hv "$W" "write -P 0x$i$i $((i - 1))M 1M" "write -P 0x$i$i $END 4k"
	mkdir "$W/snapshots/s$i"
	EXP[s$i]=$(snap_expect "$W" "s$i")
done
stat "$W/snapshots/s3/disk.raw" "$W/snapshots/s4/disk.raw" >/dev/null
n=$(wc -l <"$LOG")
rmdir "$W/snapshots/s2" 2>"$WORK/rmdir.err" &
bg=$!
wait_log "$n" "stalling at snapshot-delete-rebase"
check_eq "held after the rebase: the file above the merged one names the one below it" \
	"$(xattr user.id "$W/snapshots/s1")" \
	"$(backing_of "volume-$(xattr user.id "$W").$(xattr user.id "$W/snapshots/s3")" | sed 's/.*\.//')"
check_eq "s4 (whose chain held the merged file) reads right" "${EXP[s4]}" "$(image_sum "$W/snapshots/s4/disk.raw")"
check_eq "s3 (whose data is the merged file) reads right" "${EXP[s3]}" "$(image_sum "$W/snapshots/s3/disk.raw")"
wait $bg
check_eq "then the delete completes" "0 " "$? $(cat "$WORK/rmdir.err")"
check_eq "no error line" "" "$(errors_since "$n")"
unmount_snapfs

# deleting s3 now: its overlay O3 is committed into O1 and removed; held
# after the removal, before the catalogue forgets s3
SNAPFS_STALL_AT=snapshot-delete-unlink SNAPFS_STALL_MS=2500 mount_snapfs attr_timeout=30 || exit 1
o3=volume-$(xattr user.id "$W").$(xattr user.id "$W/snapshots/s3")
stat "$W/snapshots/s1/disk.raw" "$W/snapshots/s4/disk.raw" >/dev/null
n=$(wc -l <"$LOG")
rmdir "$W/snapshots/s3" 2>"$WORK/rmdir.err" &
bg=$!
wait_log "$n" "stalling at snapshot-delete-unlink"
check "held after the merged file is gone from the share" test ! -e "$SHARE/$o3"
check_eq "s4 (whose data began with that file) reads right, and so does s1" "${EXP[s4]} ${EXP[s1]}" \
	"$(image_sum "$W/snapshots/s4/disk.raw") $(image_sum "$W/snapshots/s1/disk.raw")"
wait $bg
check_eq "then the delete completes; no error line" "0 |" "$? $(cat "$WORK/rmdir.err")|$(errors_since "$n")"
unmount_snapfs
finish
