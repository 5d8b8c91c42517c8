#!/bin/bash
# attr-cache.sh - the kernel keeps the attributes of directories for a
# second, so that ls -l of a snapshots/ directory asks snapfs nothing per
# entry, and every change of this mount drops what it changed before its
# call returns: nothing stale after a mkdir, rmdir, mv, setfattr, chmod or
# chgrp, including what a change touches beside its own name (the fixed
# directories that show the tenant's mode, a volume's mtime, a group
# snapshot's member snapshots). Each check looks at a path the kernel has
# just cached, with attr_timeout=30 so that only the invalidation can make
# it fresh. (Other hosts' changes: multihost.sh.)
. "$(dirname "$0")/lib.sh"
plan 20

# debug: libfuse logs every request, to count them
mount_snapfs debug || exit 1
T=$MNT/tenants/acme
mkdir "$T" "$T/volumes/v" "$T/consistencygroups/g"
V=$T/volumes/v G=$T/consistencygroups/g

# requests NAME CMD...: how many NAME requests reached snapfs during CMD
requests() {
	local name=$1 before
	shift
	before=$(wc -l <"$LOG")
	"$@" >/dev/null 2>&1
	tail -n +"$((before + 1))" "$LOG" | grep -c "opcode: $name "
}

# ---- ls -l of many snapshots: no request per entry ----
for i in $(seq 1 60); do mkdir "$V/snapshots/s$i"; done
sleep 1.1 # what the mkdirs left in the kernel's cache expires
n=$(requests GETATTR ls -l "$V/snapshots")
check "ls -l of 60 snapshots: the kernel asks for few attributes ($n GETATTR)" test "$n" -lt 10
n=$(requests LOOKUP ls -l "$V/snapshots")
check "ls -l again: no lookup ($n LOOKUP)" test "$n" -lt 3
check_eq "ls -l lists them all" 60 "$(ls -l "$V/snapshots" | grep -c '^d')"
unmount_snapfs
if out=$("$SNAPFS" -o "catalog=$CAT,attr_timeout=abc" "$SHARE" "$MNT" 2>&1); then
	not_ok "attr_timeout=abc: no mount (it mounted)"
	fusermount3 -u "$MNT"
else
	check_eq "attr_timeout=abc: no mount, the option named" \
		"snapfs: attr_timeout=abc: not a number of seconds from 0 to 3600" "$out"
fi
mount_snapfs attr_timeout=30 || exit 1

# ---- a tenant's owner and mode: its fixed directories at once ----
fixed="$T/volumes $V/snapshots $G/volumes $G/cgsnapshots"
# shellcheck disable=SC2086
stat $fixed >/dev/null
chgrp $TEAM "$T"
chmod 2770 "$T"
# shellcheck disable=SC2086
check_eq "chgrp and chmod of the tenant show at once in the fixed directories inside" \
	"$TEAM 2770 $TEAM 2770 $TEAM 2770 $TEAM 2770" "$(stat -c '%g %a' $fixed | tr '\n' ' ' | sed 's/ $//')"
# shellcheck disable=SC2086
stat $fixed >/dev/null
chmod 750 "$T"
# shellcheck disable=SC2086
check_eq "a second chmod shows at once too" "2750 2750 2750 2750" "$(stat -c '%a' $fixed | tr '\n' ' ' | sed 's/ $//')"

# ---- a volume's mtime (its snapshots/ shows it): at once ----
mtimes() { stat -c %y "$V" "$V/snapshots" | tr '\n' '|'; }
m0=$(mtimes)
mkdir "$V/snapshots/new"
m1=$(mtimes)
check "mkdir of a snapshot: the volume and its snapshots/ show the new mtime at once" \
	test "$(cut -d'|' -f1 <<<"$m1")" != "$(cut -d'|' -f1 <<<"$m0")" -a \
	"$(cut -d'|' -f2 <<<"$m1")" != "$(cut -d'|' -f2 <<<"$m0")"
check_eq "the volume and its snapshots/ have one mtime" "$(cut -d'|' -f1 <<<"$m1")" "$(cut -d'|' -f2 <<<"$m1")"
m0=$(mtimes)
setfattr -n user.description -v "changed" "$V"
check "setfattr of the volume: its snapshots/ shows the new mtime at once" \
	test "$(mtimes | cut -d'|' -f2)" != "$(cut -d'|' -f2 <<<"$m0")"

# ---- names and attributes that go with another name's change ----
stat "$V/snapshots/new" >/dev/null
rmdir "$V/snapshots/new"
check_errno "rmdir: the snapshot is gone at once" ENOENT stat "$V/snapshots/new"
stat "$V/snapshots/s1" >/dev/null
mv "$V/snapshots/s1" "$V/snapshots/s1-renamed"
check_errno "mv: the old name is gone at once" ENOENT stat "$V/snapshots/s1"
id1=$(xattr user.id "$V/snapshots/s1-renamed")
check_eq "mv: by-id points to the new name at once" "s1-renamed" \
	"$(basename "$(readlink "$MNT/by-id/$id1")")"
check_eq "mv: the by-id link's size is its new target's length" \
	"$(readlink "$MNT/by-id/$id1" | tr -d '\n' | wc -c)" "$(stat -c %s "$MNT/by-id/$id1")"
stat "$V/snapshots/s2" >/dev/null
setfattr -n user.force_delete -v 1 "$V/snapshots/s2"
check_errno "force-delete by setfattr: the snapshot is gone at once" ENOENT stat "$V/snapshots/s2"
ln -s ../../../volumes/v "$G/volumes/v"
mkdir "$G/cgsnapshots/c"
stat "$V/snapshots/c" "$V/snapshots/c/info.json" >/dev/null
rmdir "$G/cgsnapshots/c"
check_errno "rmdir of a group snapshot: its member snapshot in the volume is gone at once" ENOENT \
	stat "$V/snapshots/c"
check_errno "and what was inside it" ENOENT stat "$V/snapshots/c/info.json"

# ---- .info: the format Cinder reads, after every change ----
vid=$(xattr user.id "$V")
check_eq ".info is compact JSON with sorted keys, as jansson wrote it" \
	"$(jq -S -c . "$SHARE/volume-$vid.info")" "$(cat "$SHARE/volume-$vid.info")"
check_eq ".info names the active file and every snapshot" 60 \
	"$(jq 'length' "$SHARE/volume-$vid.info")"

unmount_snapfs
finish
