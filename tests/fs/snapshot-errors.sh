#!/bin/bash
# Snapshot refusals (docs/snapfs.md section 7) and the admin operations: disk.raw and
# info.json are read-only (EROFS), nothing else can be created in snapshots/
# or a snapshot (EPERM); taken names (EEXIST); a volume with snapshots can be
# neither deleted (ENOTEMPTY) nor extended (EBUSY); no snapshot of a volume
# that is not available (EBUSY); no delete while creating/deleting/... or while
# disk.raw is open (EBUSY); attribute limits (E2BIG, EINVAL, ENODATA, ENOTSUP,
# EPERM); permissions of a tenant's team; reset-state and force-delete by
# admins. Every refusal leaves the share and the snapshots as they were.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
plan 136


# ---- helpers (as in snapshots.sh) ----

# share_state: the files on the share and every .info (a refusal changes none).
share_state() { (cd "$SHARE" && ls -A1 | sort && cat ./*.info 2>/dev/null); }

# consistent DESC VOLDIR LIVE NAME...: 4 checks after a delete.
declare -A EXP
consistent() {
	local desc=$1 d=$2 live=$3 vid active n sid want got
	shift 3
	vid=$(xattr user.id "$d")
	active=$(xattr user.active_file "$d")
	want='' got=''
	for n; do
		want+="$n=${EXP[$n]-unrecorded} "
		got+="$n=$(image_sum "$d/snapshots/$n/disk.raw") "
	done
	check_eq "$desc: snapshots left ($*) show the same bytes" "$want" "$got"
	check_eq "$desc: the live image is unchanged" "$live" "$(live_sum "$d")"
	check_eq "$desc: .info names user.active_file and the snapshots left" \
		"$(info_expected "$d" "$active" "$@")" "$(info_actual "$vid")"
	check_share_files "$desc" "$d" "$@"
}

# ---- setup: a team's tenant, a volume with two snapshots ----

mount_snapfs "admin_group=$ADMINS" || exit 1
T=$MNT/tenants/acme
mkdir "$T"
chgrp $TEAM "$T" && chmod 2770 "$T"
V=$T/volumes
mkdir "$V/db" "$V/web"
D=$V/db
S=$D/snapshots
hv "$D" "write -P 0x11 0 2M" "write -P 0x12 $END 64k"
mkdir "$S/s1"
EXP[s1]=$(snap_expect "$D" s1)
hv "$D" "write -P 0x21 1M 2M" "write -z 0 64k"
mkdir "$S/s2"
EXP[s2]=$(snap_expect "$D" s2)
hv "$D" "write -P 0x31 3M 1M"
live=$(live_sum "$D")
mkdir "$V/web/snapshots/w1"
check_eq "setup: a volume with two snapshots, another with one" "s1 s2 w1" \
	"$(ls "$S" "$V/web/snapshots" 2>&1 | grep -x '[sw][0-9]' | tr '\n' ' ' | sed 's/ $//')"
state=$(share_state)

# ---- files: disk.raw and info.json are read-only, nothing else exists ----

check_errno "dd conv=notrunc into disk.raw: EROFS" EROFS \
	dd if=/dev/zero of="$S/s1/disk.raw" bs=512 count=1 conv=notrunc status=none
check_errno "echo > disk.raw: EROFS" EROFS sh -c "echo x > '$S/s1/disk.raw'"
check_errno "echo >> disk.raw: EROFS" EROFS sh -c "echo x >> '$S/s1/disk.raw'"
check_errno "truncate -s 0 disk.raw: EROFS" EROFS truncate -s 0 "$S/s1/disk.raw"
check_errno "truncate -s 2G disk.raw: EROFS" EROFS truncate -s 2G "$S/s1/disk.raw"
check_eq "disk.raw is unchanged" "${EXP[s1]}" "$(image_sum "$S/s1/disk.raw")"
check_errno "writing a snapshot's info.json: EROFS" EROFS sh -c "echo x > '$S/s1/info.json'"
check_errno "a regular file in snapshots/: EPERM" EPERM touch "$S/file"
check_errno "a regular file in a snapshot: EPERM" EPERM touch "$S/s1/file"
check_errno "a directory in a snapshot: EPERM" EPERM mkdir "$S/s1/sub"
check_errno "a symbolic link in snapshots/: EPERM" EPERM ln -s s1 "$S/link"
check_errno "a device node in a snapshot: EPERM" EPERM mknod "$S/s1/null" c 1 3
check_errno "a hard link to disk.raw: EPERM" EPERM ln "$S/s1/disk.raw" "$S/s1/disk2.raw"
check_errno "removing disk.raw: EPERM" EPERM rm -f "$S/s1/disk.raw"
check_errno "rmdir of disk.raw: ENOTDIR" ENOTDIR rmdir "$S/s1/disk.raw"
check_errno "mkdir of an existing snapshot: EEXIST" EEXIST mkdir "$S/s1"
check_errno "a missing snapshot: ENOENT" ENOENT getfattr --absolute-names -n user.id "$S/none"
check_errno "mv onto an existing snapshot: EEXIST" EEXIST mv -T "$S/s1" "$S/s2"
check_errno "moving a snapshot to another volume: EPERM" EPERM mv "$S/s1" "$V/web/snapshots/s1"
check_errno "moving a snapshot into volumes/: EPERM" EPERM mv "$S/s1" "$V/s1"
check_eq "the share is unchanged by all of that" "$state" "$(share_state)"

# ---- the volume: delete, extend, snapshot in a bad state ----

# (on the other volume, so that a wrong success cannot take the rest along)
check_errno "rmdir of a volume with snapshots: ENOTEMPTY" ENOTEMPTY rmdir "$V/web"
check_errno "extending a volume with snapshots: EBUSY" EBUSY setfattr -n user.size -v 2 "$V/web"
check_eq "its snapshot, size and status are unchanged" "w1 1 available" \
	"$(ls "$V/web/snapshots" 2>&1) $(xattr user.size "$V/web") $(xattr user.status "$V/web")"
setfattr -n user.status -v error "$D"
check_errno "snapshot of a volume in error: EBUSY" EBUSY mkdir "$S/s3"
setfattr -n user.status -v creating "$D"
check_errno "snapshot of a volume in creating: EBUSY" EBUSY mkdir "$S/s3"
check_eq "the refused snapshots left nothing" "s1 s2" "$(ls "$S" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "and the share is unchanged" "$state" "$(share_state)"
setfattr -n user.status -v available "$D"
check "a snapshot once the volume is available again" mkdir "$S/s3"
EXP[s3]=$(snap_expect "$D" s3)
check_eq "s3 shows the volume at its mkdir" "$live" "${EXP[s3]}"
hv "$D" "write -P 0x41 5M 64k"
live=$(live_sum "$D")
state=$(share_state)

# ---- attributes ----

c255=$(printf 'x%.0s' $(seq 1 255))
c256=${c255}y
A=$S/s3
check_errno "no description yet: ENODATA" ENODATA getfattr --absolute-names -n user.description "$A"
check "set user.description" setfattr -n user.description -v "nightly" "$A"
check_eq "get user.description" "nightly" "$(xattr user.description "$A")"
check "a 255-byte description is fine" setfattr -n user.description -v "$c255" "$A"
check_errno "a 256-byte description: E2BIG" E2BIG setfattr -n user.description -v "$c256" "$A"
check_eq "info.json keeps the 255-byte description" "$c255" "$(jq -r .snapshot.description "$A/info.json" 2>&1)"
check "remove user.description" setfattr -x user.description "$A"
check_eq "info.json: description null again" "null" "$(jq -r .snapshot.description "$A/info.json" 2>&1)"
check "set user.meta.env" setfattr -n user.meta.env -v prod "$A"
check "a key with every allowed character" setfattr -n "user.meta.A-z_0:9. x" -v v "$A"
check_eq "info.json metadata" '{"A-z_0:9. x":"v","env":"prod"}' \
	"$(jq -S -c .snapshot.metadata "$A/info.json" 2>&1)"
check "a 255-byte value is fine" setfattr -n user.meta.big -v "$c255" "$A"
check_errno "a 256-byte value: E2BIG" E2BIG setfattr -n user.meta.big2 -v "$c256" "$A"
check_errno "a bad key: EINVAL" EINVAL setfattr -n 'user.meta.bad!key' -v 1 "$A"
check_errno "an empty key: EINVAL" EINVAL setfattr -n 'user.meta.' -v 1 "$A"
check_errno "a missing key: ENODATA" ENODATA getfattr --absolute-names -n user.meta.nope "$A"
check "remove user.meta.env" setfattr -x user.meta.env "$A"
check_errno "removing it again: ENODATA" ENODATA setfattr -x user.meta.env "$A"
check_errno "an unknown attribute on read: ENOTSUP" ENOTSUP getfattr --absolute-names -n user.colour "$A"
check_errno "an unknown attribute on write: ENOTSUP" ENOTSUP setfattr -n user.colour -v red "$A"
for ro in user.id user.progress user.created_at user.size user.volume_id user.project_id user.json; do
	check_errno "$ro of a snapshot is read-only: EPERM" EPERM setfattr -n "$ro" -v x "$A"
done
check_eq "the share is untouched by attribute changes" "$state" "$(share_state)"

# ---- permissions: the tenant's team works with snapshots, others cannot ----

check "a team member creates a snapshot" as $ALICE "$TEAM" -- mkdir "$S/alices"
check_eq "owned by her, in the tenant's group" "$ALICE $TEAM" "$(stat -c '%u %g' "$S/alices" 2>&1)"
check "a team member reads disk.raw" as $ALICE "$TEAM" -- dd if="$S/alices/disk.raw" of=/dev/null bs=1M count=2 status=none
check "a team member sets a snapshot's description" \
	as $ALICE "$TEAM" -- setfattr -n user.description -v mine "$S/alices"
check_errno "a team member cannot reset a snapshot's state: EPERM" EPERM \
	as $ALICE "$TEAM" -- setfattr -n user.status -v error "$S/alices"
check_errno "a team member cannot force-delete: EPERM" EPERM \
	as $ALICE "$TEAM" -- setfattr -n user.force_delete -v 1 "$S/alices"
check_errno "an outsider cannot create a snapshot: EACCES" EACCES as $BOB "" -- mkdir "$S/bobs"
check_errno "an outsider cannot read disk.raw: EACCES" EACCES \
	as $BOB "" -- dd if="$S/s1/disk.raw" of=/dev/null bs=1M count=1 status=none
check "an admin_group member resets a snapshot's state" \
	as $CAROL "$ADMINS,$TEAM" -- setfattr -n user.status -v available "$S/alices"
check "a team member deletes her snapshot" retry_busy as $ALICE "$TEAM" -- rmdir "$S/alices"
consistent "after the team member's delete" "$D" "$live" s1 s2 s3

# ---- reset-state: the API's snapshot statuses, admins only ----

check_errno "unknown status: EINVAL" EINVAL setfattr -n user.status -v broken "$A"
check_errno "a volume-only status (in-use): EINVAL" EINVAL setfattr -n user.status -v in-use "$A"
for st in creating available deleting error error_deleting backing-up restoring unmanaging available; do
	setfattr -n user.status -v $st "$A" 2>/dev/null
	check_eq "reset-state to $st" "$st $st" \
		"$(xattr user.status "$A") $(jq -r .snapshot.status "$A/info.json" 2>&1)"
done

# ---- rmdir in each status ----

state=$(share_state)
for st in creating deleting error_deleting restoring; do
	setfattr -n user.status -v $st "$S/s1"
	check_errno "rmdir of a snapshot in $st: EBUSY" EBUSY rmdir "$S/s1"
done
check_eq "the refused deletes left everything in place" "$state
s1 s2 s3" "$(share_state)
$(ls "$S" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
setfattr -n user.status -v error "$S/s1"
sid1=$(xattr user.id "$S/s1")
check "rmdir of a snapshot in error deletes it (merging)" rmdir_snap "$S/s1"
check "its overlay is gone" test ! -e "$SHARE/volume-$(xattr user.id "$D").$sid1"
consistent "after deleting the snapshot in error" "$D" "$live" s2 s3

# ---- rmdir while disk.raw is open ----

sid2=$(xattr user.id "$S/s2")
if exec 3<"$S/s2/disk.raw"; then
	check_errno "rmdir while disk.raw is open: EBUSY" EBUSY rmdir "$S/s2"
	check_eq "the snapshot stays available" "available" "$(xattr user.status "$S/s2")"
	check_eq "the open file still reads the snapshot's bytes" \
		"$(dd if="$S/s2/disk.raw" bs=1M count=8 status=none | sha256sum)" \
		"$(dd bs=1M count=8 iflag=fullblock status=none <&3 | sha256sum)"
	exec 3<&-
else
	not_ok "rmdir while disk.raw is open: EBUSY (cannot open disk.raw)"
	not_ok "the snapshot stays available"
	not_ok "the open file still reads the snapshot's bytes"
fi
check "rmdir once it is closed" rmdir_snap "$S/s2"
check "its overlay is gone" test ! -e "$SHARE/volume-$(xattr user.id "$D").$sid2"
consistent "after deleting the snapshot that was open" "$D" "$live" s3

# ---- force-delete (admin), in any state, still merging ----

mkdir "$S/s4"
EXP[s4]=$(snap_expect "$D" s4)
hv "$D" "write -P 0x51 6M 64k"
live=$(live_sum "$D")
mkdir "$S/s5"
EXP[s5]=$(snap_expect "$D" s5)
hv "$D" "write -P 0x61 7M 64k"
live=$(live_sum "$D")
check_errno "force_delete by a non-admin: EPERM" EPERM as $ALICE "$TEAM" -- setfattr -n user.force_delete -v 1 "$S/s4"
setfattr -n user.status -v creating "$S/s4"
sid4=$(xattr user.id "$S/s4")
check "admin force-delete of a middle snapshot in creating" retry_busy setfattr -n user.force_delete -v 1 "$S/s4"
check_errno "it is gone" ENOENT stat "$S/s4"
check "its overlay is gone" test ! -e "$SHARE/volume-$(xattr user.id "$D").$sid4"
consistent "after the force-delete" "$D" "$live" s3 s5
setfattr -n user.status -v error_deleting "$S/s5"
check "admin force-delete of the newest snapshot in error_deleting" retry_busy setfattr -n user.force_delete -v 1 "$S/s5"
check "admin force-delete of the last snapshot, available" retry_busy setfattr -n user.force_delete -v 1 "$S/s3"
consistent "after force-deleting every snapshot" "$D" "$live"
check_eq "the active file is the base again" "volume-$(xattr user.id "$D")" "$(xattr user.active_file "$D")"
check "the volume can be extended again" setfattr -n user.size -v 2 "$D"
check "and deleted" rmdir "$D"
unmount_snapfs

# ---- a merge that fails: EIO, error_deleting, nothing changed; force-delete clears it ----

mount_snapfs "admin_group=$ADMINS" || exit 1
M=$V/m
mkdir "$M"
hv "$M" "write -P 0x71 0 1M"
mkdir "$M/snapshots/m1"
hv "$M" "write -P 0x72 512k 1M"
mkdir "$M/snapshots/m2"
EXP[m2]=$(snap_expect "$M" m2)
hv "$M" "write -P 0x73 1M 1M"
live=$(live_sum "$M")
unmount_snapfs
mount_snapfs "admin_group=$ADMINS,qemu_img=/bin/false" || exit 1
state=$(share_state)
fails_eio() { local out; out=$("$@" 2>&1) && return 1; grep -q "Input/output error" <<<"$out" || { echo "$out"; return 1; }; }
check "a merge that fails (qemu_img=/bin/false): rmdir gives EIO" fails_eio rmdir "$M/snapshots/m1"
check_eq "the snapshot stays, in error_deleting" "error_deleting" "$(xattr user.status "$M/snapshots/m1")"
check_eq "the share is unchanged by the failed merge" "$state" "$(share_state)"
check_eq "the live image and the other snapshot are unchanged" "$live ${EXP[m2]}" \
	"$(live_sum "$M") $(image_sum "$M/snapshots/m2/disk.raw")"
check_errno "rmdir again, in error_deleting: EBUSY" EBUSY rmdir "$M/snapshots/m1"
unmount_snapfs
mount_snapfs "admin_group=$ADMINS" || exit 1
check_eq "error_deleting survives a remount" "error_deleting" "$(xattr user.status "$M/snapshots/m1")"
check "force-delete clears it (with a working qemu-img)" \
	retry_busy setfattr -n user.force_delete -v 1 "$M/snapshots/m1"
consistent "after force-deleting the snapshot whose merge failed" "$M" "$live" m2
unmount_snapfs
finish
