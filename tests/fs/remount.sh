#!/bin/bash
# Everything set survives unmount and mount: names, ids, inode numbers,
# owners, modes, sizes, statuses, descriptions, metadata.
. "$(dirname "$0")/lib.sh"
plan 18

snapshot_state() {
	(cd "$MNT" && find tenants -mindepth 1 | sort | while read -r p; do
		stat -c '%n %i %u %g %a %F' "$p"
		getfattr --absolute-names -d -m '^user\.' "$p" 2>/dev/null | grep -v '^# file'
	done)
}

mount_snapfs "admin_group=$ADMINS" || exit 1
T=$MNT/tenants
mkdir "$T/acme" "$T/beta"
chgrp $TEAM "$T/acme" && chmod 2770 "$T/acme"
mkdir "$T/acme/volumes/db" "$T/acme/volumes/web" "$T/beta/volumes/logs"
setfattr -n user.description -v "primary database" "$T/acme/volumes/db"
setfattr -n user.meta.env -v prod "$T/acme/volumes/db"
setfattr -n user.meta.tier -v gold "$T/acme/volumes/db"
setfattr -n user.size -v 7 "$T/acme/volumes/db"
setfattr -n user.status -v error "$T/acme/volumes/web"
setfattr -n user.description -v "beta tenant" "$T/beta"
chown $ALICE "$T/beta/volumes/logs"
mv "$T/beta/volumes/logs" "$T/beta/volumes/logs2"
before=$(snapshot_state)
byid_before=$(ls -l "$MNT/by-id" | awk '{print $9, $11}' | sort)
info_before=$(cat "$T/acme/volumes/db/info.json")
check "state recorded" test -n "$before"
unmount_snapfs

mount_snapfs "admin_group=$ADMINS" || exit 1
after=$(snapshot_state)
check_eq "names, inodes, owners, modes and attributes are the same" "$before" "$after"
check_eq "by-id links are the same" "$byid_before" "$(ls -l "$MNT/by-id" | awk '{print $9, $11}' | sort)"
check_eq "info.json is the same" "$info_before" "$(cat "$T/acme/volumes/db/info.json")"
check_eq "the extended size is kept" "7" "$(xattr user.size "$T/acme/volumes/db")"
check "new volumes still work after remount" mkdir "$T/beta/volumes/new"
check_eq "and get a new inode number" "" \
	"$(grep " $(stat -c %i "$T/beta/volumes/new") " <<<"$before")"
unmount_snapfs

# Without -f: the command returns once the mount is up, the daemon serving
# in a session of its own; a catalogue it cannot open fails the command.
rc=0
"$SNAPFS" -o "catalog=$CAT,allow_other" "$SHARE" "$MNT" >>"$LOG" 2>&1 || rc=$?
check_eq "without -f: the command exits 0" 0 "$rc"
check "and the mount is up when it returns" mountpoint -q "$MNT"
daemon=$(pgrep -f -- "catalog=$CAT,allow_other $SHARE $MNT" | head -n 1)
check_eq "one daemon serves it, the leader of its own session" "$daemon" \
	"$(ps -o sid= -p "${daemon:-1}" | tr -d ' ')"
check "what was set is there" test -d "$T/beta/volumes/new"
mkdir -p "$WORK/mnt2"
rc=0
out=$("$SNAPFS" -o "catalog=$CAT" "$SHARE" "$WORK/mnt2" 2>&1) || rc=$?
check "a catalogue it cannot open (in use): exit 1, the reason on stderr, nothing mounted" \
	test "$rc" = 1 -a -n "$(grep "cannot open share" <<<"$out")" -a ! -e "$WORK/mnt2/tenants"
fusermount3 -u "$MNT"
for i in $(seq 1 50); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
check "unmounted: the daemon ends" sh -c "! kill -0 $daemon 2>/dev/null"

# Told to stop (SIGTERM) while a snapshot's disk.raw, an info.json and a
# directory are open: the kernel never releases them, the daemon frees them
# (ASan, or valgrind as SNAPFS_WRAPPER, would report a leak otherwise).
mount_snapfs || exit 1
mkdir "$T/beta/volumes/new/snapshots/s"
exec 3<"$T/beta/volumes/new/snapshots/s/disk.raw" 4<"$T/beta/volumes/new/info.json" 5<"$T/beta/volumes"
: >"$LOG"
kill -TERM "$SNAPFS_PID"
rc=0
wait "$SNAPFS_PID" || rc=$?
SNAPFS_PID=
exec 3<&- 4<&- 5<&-
mountpoint -q "$MNT" && fusermount3 -u "$MNT"
check "SIGTERM with files open: the daemon ends (exit $rc)" test "$rc" -le 1
check "and frees the three handles the kernel did not release" \
	grep -q "3 open files or directories not released by the kernel: freed" "$LOG"
check_eq "no leak or memory error reported" "" "$(grep -E 'Sanitizer|definitely lost' "$LOG")"
finish
