#!/bin/bash
# Files on the share (docs/snapfs.md section 12): every file snapfs creates there (a
# volume's base file, raw or qcow2, a snapshot's overlay, a group snapshot's
# overlays, .info, the copies of a group fill) gets the owner and group of
# the share's top directory and mode 0660, whatever the daemon's umask, so
# that Cinder's user and the hypervisor's (here: a user in the share's group)
# can open them and nobody else can; -o file_mode=, file_owner=, file_group=
# (ids or names) override; a rewritten .info keeps the owner and mode of the
# one it replaces; qemu-img commit and rebase (a snapshot delete) keep the
# owner and mode of the files they rewrite; bad values are refused at mount;
# a daemon that may not chown logs one warning and still sets the mode.
. "$(dirname "$0")/lib.sh"
plan 41

QEMU=61004 # the hypervisor's user: a member of the share's group TEAM only

# own FILE...: "uid gid mode" of each share file, one line.
own() { (cd "$SHARE" && stat -c '%u %g %a' "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'); }
# times N WORD: WORD N times, blank-separated (what own prints for N files).
times() { local i out=; for i in $(seq 1 "$1"); do out+="$2 "; done; echo "${out% }"; }

# The share's top directory belongs to Cinder (ALICE) and the hypervisor's
# group (TEAM), as an NFS export for Cinder is; the daemon's umask would
# strip every group bit.
chown "$ALICE:$TEAM" "$SHARE"
chmod 0770 "$SHARE"
umask 077

# ---- default: the top directory's owner and group, mode 0660 ----

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes
mkdir "$V/db"
vid=$(xattr user.id "$V/db")
base=volume-$vid
check_eq "a raw volume's base file: the top directory's owner and group, 0660 despite umask 077" \
	"$ALICE $TEAM 660" "$(own "$base")"
mkdir "$V/db/snapshots/s1"
ov1=$base.$(xattr user.id "$V/db/snapshots/s1")
check_eq "a snapshot's overlay and the new .info: the same" "$(times 2 "$ALICE $TEAM 660")" \
	"$(own "$ov1" "$base.info")"
check "no .info temporary file is left" test ! -e "$SHARE/.$base.info.tmp"
check "the hypervisor's user (in the share's group) opens the whole chain with qemu-img" \
	as $QEMU "$TEAM" -- qemu-img info --backing-chain "$SHARE/$ov1"
check "... and writes the active file, as QEMU does" \
	as $QEMU "$TEAM" -- qemu-io -f qcow2 -c "write -P 0x5a 0 64k" "$SHARE/$ov1"
chmod 0771 "$SHARE" # let others through the directory: the file's mode decides
check_errno "a user outside the group cannot open it (mode 0660): EACCES" EACCES \
	as $BOB "" -- qemu-img info "$SHARE/$ov1"
chmod 0770 "$SHARE"

# A .info given to someone else by hand keeps that owner and mode when a
# snapshot rewrites it (temp file + rename).
chown "$BOB:$ADMINS" "$SHARE/$base.info"
chmod 0604 "$SHARE/$base.info"
mkdir "$V/db/snapshots/s2"
ov2=$base.$(xattr user.id "$V/db/snapshots/s2")
check_eq "a .info chown'd and chmod'd by hand keeps owner and mode when rewritten" \
	"$BOB $ADMINS 604" "$(own "$base.info")"
check_eq "... and it was rewritten: it names the new overlay active" "$ov2" \
	"$(jq -r .active "$SHARE/$base.info")"
check_eq "the new overlay has the default owner and mode" "$ALICE $TEAM 660" "$(own "$ov2")"

# Deleting the middle snapshot s1 commits its overlay into the base and
# rebases s2's overlay onto the base: both are rewritten in place.
chown "$CAROL:$ADMINS" "$SHARE/$base"
chmod 0640 "$SHARE/$base"
check "rmdir of the middle snapshot merges it (qemu-img commit, rebase -u)" rmdir "$V/db/snapshots/s1"
check_eq "the base qemu-img commit wrote keeps its owner and mode; the rebased overlay its own" \
	"$CAROL $ADMINS 640|$ALICE $TEAM 660" "$(own "$base")|$(own "$ov2")"
check_eq "the merged overlay is gone, .info still as it was given" "no|$BOB $ADMINS 604" \
	"$(test -e "$SHARE/$ov1" && echo yes || echo no)|$(own "$base.info")"
chown "$ALICE:$TEAM" "$SHARE/$base" "$SHARE/$base.info"
chmod 0660 "$SHARE/$base" "$SHARE/$base.info"

# Group snapshot overlays and a group fill's copies.
CG=$MNT/tenants/acme/consistencygroups
mkdir "$V/logs" "$CG/G"
lid=$(xattr user.id "$V/logs")
ln -s ../../../volumes/db "$CG/G/volumes/db"
ln -s ../../../volumes/logs "$CG/G/volumes/logs"
check "a group snapshot of db and logs" mkdir "$CG/G/cgsnapshots/c1"
c1d=$(xattr user.id "$V/db/snapshots/c1")
c1l=$(xattr user.id "$V/logs/snapshots/c1")
check_eq "its overlays, the rewritten .info files and logs' base: the default owner and mode" \
	"$(times 5 "$ALICE $TEAM 660")" \
	"$(own "volume-$vid.$c1d" "volume-$lid.$c1l" "volume-$vid.info" "volume-$lid.info" "volume-$lid")"
mkdir "$CG/copy"
check "user.source fills a group with copies of c1 (qemu-img convert)" \
	setfattr -n user.source -v consistencygroups/G/cgsnapshots/c1 "$CG/copy"
check_eq "the copies' files: the default owner and mode" "$(times 2 "$ALICE $TEAM 660")" \
	"$(own "volume-$(xattr user.id "$V/copy-db")" "volume-$(xattr user.id "$V/copy-logs")")"
check "the hypervisor's user reads a copy" \
	as $QEMU "$TEAM" -- qemu-img info "$SHARE/volume-$(xattr user.id "$V/copy-db")"
unmount_snapfs

# ---- file_mode=, file_owner=, file_group= (ids), qcow2 volumes ----

mount_snapfs "volume_format=qcow2,file_mode=0640,file_owner=$CAROL,file_group=$ADMINS" || exit 1
mkdir "$V/q"
qid=$(xattr user.id "$V/q")
check_eq "a qcow2 volume (qemu-img create on the file snapfs made): the given owner, group, mode" \
	"qcow2|$CAROL $ADMINS 640" \
	"$(qemu-img info --output=json "$SHARE/volume-$qid" | jq -r .format)|$(own "volume-$qid")"
mkdir "$V/q/snapshots/s1"
qs1=$(xattr user.id "$V/q/snapshots/s1")
check_eq "its snapshot's overlay and new .info: the same" "$(times 2 "$CAROL $ADMINS 640")" \
	"$(own "volume-$qid.$qs1" "volume-$qid.info")"
chown "$BOB:$TEAM" "$SHARE/volume-$qid.info"
chmod 0606 "$SHARE/volume-$qid.info"
mkdir "$V/q/snapshots/s2"
qs2=$(xattr user.id "$V/q/snapshots/s2")
check_eq "an existing .info keeps its own owner and mode; the new overlay takes the options'" \
	"$BOB $TEAM 606|$CAROL $ADMINS 640|volume-$qid.$qs2" \
	"$(own "volume-$qid.info")|$(own "volume-$qid.$qs2")|$(jq -r .active "$SHARE/volume-$qid.info")"
check_errno "with mode 0640 the hypervisor's group user cannot write: EACCES" EACCES \
	as $QEMU "$TEAM" -- qemu-io -f qcow2 -c "write 0 4k" "$SHARE/volume-$qid"
unmount_snapfs

# ---- names, and mode 0600 ----

uname0=$(getent passwd 0 | cut -d: -f1)
gname0=$(getent group 0 | cut -d: -f1)
mount_snapfs "file_mode=600,file_owner=$uname0,file_group=$gname0" || exit 1
mkdir "$V/n"
check_eq "file_owner=$uname0,file_group=$gname0 (names), file_mode=600 (no leading 0)" \
	"0 0 600" "$(own "volume-$(xattr user.id "$V/n")")"
unmount_snapfs

# ---- bad values: refused at mount, naming the option ----

# refused DESC OPTION PATTERN: snapfs -o OPTION exits non-zero without
# mounting and says PATTERN.
refused() {
	local out rc
	out=$(timeout 20 "$SNAPFS" -f -o "catalog=$CAT,$2" "$SHARE" "$MNT" 2>&1)
	rc=$?
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT"
		not_ok "$1 (it mounted)"
	elif [ "$rc" = 0 ] || [ "$rc" = 124 ] || ! grep -q -- "$3" <<<"$out"; then
		not_ok "$1 (exit $rc)"
		echo "$out" | sed 's/^/#   /'
	else
		ok "$1"
	fi
}
for m in abc 01777 4660 0800 -660 '' 0x1b6 66o 00000000001000; do
	refused "file_mode='$m' is refused" "file_mode=$m" "file_mode=$m: not an octal mode"
done
refused "file_owner=no-such-user is refused" file_owner=no-such-user-snapfs \
	"file_owner=no-such-user-snapfs: no such user"
refused "file_owner=4294967295 (the -1 of chown) is refused" file_owner=4294967295 \
	"file_owner=4294967295: not a uid"
refused "file_group=no-such-group is refused" file_group=no-such-group-snapfs \
	"file_group=no-such-group-snapfs: no such group"
refused "an empty file_group= is refused" file_group= "file_group=: no such group"

# ---- a daemon that may not chown (root without CAP_CHOWN, as root squashed
# by NFS): one warning, the mode still set ----

chmod 2770 "$SHARE" # new files take TEAM from the directory, as on a setgid export
SNAPFS_REAL=$SNAPFS
SNAPFS=$WORK/snapfs-nochown
printf '#!/bin/sh\nexec setpriv --bounding-set=-chown -- "%s" "$@"\n' "$SNAPFS_REAL" >"$SNAPFS"
chmod 755 "$SNAPFS"
mount_snapfs || exit 1
SNAPFS=$SNAPFS_REAL
mkdir "$V/w1" "$V/w2"
mkdir "$V/w1/snapshots/s1"
w1=$(xattr user.id "$V/w1")
check_eq "without CAP_CHOWN: files keep the daemon's owner, the directory's group, mode 0660" \
	"$(times 3 "0 $TEAM 660")" \
	"$(own "volume-$w1" "volume-$(xattr user.id "$V/w2")" "volume-$w1.$(xattr user.id "$V/w1/snapshots/s1")")"
check_eq "one warning for the whole mount, naming the owner it could not give" 1 \
	"$(grep -c "warning: cannot give .* to uid $ALICE gid $TEAM" "$LOG")"
unmount_snapfs

finish
