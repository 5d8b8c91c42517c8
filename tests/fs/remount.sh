#!/bin/bash
# Everything set survives unmount and mount: names, ids, inode numbers,
# owners, modes, sizes, statuses, descriptions, metadata.
. "$(dirname "$0")/lib.sh"
plan 9

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
finish
