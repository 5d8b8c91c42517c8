#!/bin/bash
# Every refused change leaves exactly one log line that names the errno, the
# object and the reason (SPEC section 5), each errno of the section through
# the real tool: EEXIST, EBUSY, ENOTEMPTY, EINVAL, E2BIG, EPERM, ENOTSUP,
# ENODATA (removing a missing attribute), EROFS, ENOSPC (a full catalogue),
# EIO (a merge that fails). EACCES of mode bits is the kernel's
# (default_permissions): snapfs never sees the request, so no line. Queries
# that find nothing (a missing name, a missing attribute) write no line at
# log_level=info and one debug line at log_level=debug; log_level=error
# drops refusals.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C
plan 69

T=$MNT/tenants
V=$T/acme/volumes

# lines_since N: what the daemon logged after its first N lines.
lines_since() { tail -n +"$(($1 + 1))" "$LOG"; }
log_count() { wc -l <"$LOG"; }

# refused DESC ERRNO WHAT CMD...: CMD fails with ERRNO and the daemon logs
# exactly one line naming ERRNO, with WHAT (the object) on it: two checks.
refused() {
	local desc=$1 err=$2 what=$3 n lines
	shift 3
	n=$(log_count)
	check_errno "$desc: $err" "$err" "$@"
	lines=$(lines_since "$n" | grep -w -- "$err")
	if [ "$(grep -c . <<<"$lines")" = 1 ] && grep -qF -- "$what" <<<"$lines"; then
		ok "$desc: one log line naming $err and $what"
	else
		not_ok "$desc: one log line naming $err and $what"
		lines_since "$n" | sed 's/^/#   logged: /'
	fi
}

# silent DESC CMD...: CMD fails and the daemon logs nothing.
silent() {
	local desc=$1 n
	shift
	n=$(log_count)
	"$@" >/dev/null 2>&1
	check_eq "$desc: no log line" "" "$(lines_since "$n")"
}

mount_snapfs "admin_group=$ADMINS" || exit 1
mkdir "$T/acme" "$V/db" "$V/web" "$MNT/tenants/acme/consistencygroups/g"
chgrp "$TEAM" "$T/acme"
chmod 2770 "$T/acme"
mkdir "$V/db/snapshots/s1" "$V/db/snapshots/s2"

refused "rename a snapshot onto another" EEXIST "s2 is the name" mv -T "$V/db/snapshots/s1" "$V/db/snapshots/s2"
setfattr -n user.description -v first "$V/web"
refused "create a description that exists (XATTR_CREATE)" EEXIST "volumes/web" \
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.description", b"x", os.XATTR_CREATE)' "$V/web"
refused "extend a volume with snapshots" EBUSY "volumes/db" setfattr -n user.size -v 2 "$V/db"
ln -s ../../../volumes/web "$T/acme/consistencygroups/g/volumes/web"
refused "delete a volume of a group" EBUSY "volumes/web" rmdir "$V/web"
rm "$T/acme/consistencygroups/g/volumes/web"
refused "delete a volume with snapshots" ENOTEMPTY "volumes/db" rmdir "$V/db"
refused "reset-state to an unknown status" EINVAL "volumes/web" setfattr -n user.status -v bogus "$V/web"
refused "a size that is no size" EINVAL "volumes/web" setfattr -n user.size -v abc "$V/web"
refused "a metadata key with a slash" EINVAL "volumes/web" setfattr -n "user.meta.a/b" -v 1 "$V/web"
refused "fill a group from a source that does not exist" EINVAL "consistencygroups/g" \
	setfattr -n user.source -v consistencygroups/none "$T/acme/consistencygroups/g"
refused "a description of 256 bytes" E2BIG "volumes/web" setfattr -n user.description -v "$(printf 'd%.0s' $(seq 256))" "$V/web"
refused "a metadata value of 256 bytes" E2BIG "volumes/web" setfattr -n user.meta.k -v "$(printf 'm%.0s' $(seq 256))" "$V/web"
as "$ALICE" "$TEAM" -- mkdir "$V/alice"
refused "reset-state by a non-admin" EPERM "volumes/alice" as "$ALICE" "$TEAM" -- setfattr -n user.status -v error "$V/alice"
refused "a tenant by a non-admin" EPERM "tenants/other" as "$ALICE" "$TEAM" -- mkdir "$T/other"
refused "a regular file" EPERM "volumes/db/file" touch "$V/db/file"
refused "a hard link" EPERM "volumes/db/copy.json" ln "$V/db/info.json" "$V/db/copy.json"
refused "remove info.json" EPERM "volumes/db/info.json" rm -f "$V/db/info.json"
refused "a read-only attribute" EPERM "volumes/db" setfattr -n user.id -v x "$V/db"
refused "move a volume out of its tenant's volumes/" EPERM "volumes/web" mv "$V/web" "$T/acme/web"
refused "an unknown attribute" ENOTSUP "volumes/web" setfattr -n user.bogus -v 1 "$V/web"
refused "remove an unknown attribute" ENOTSUP "volumes/web" setfattr -x user.bogus "$V/web"
refused "remove a metadata key that is not there" ENODATA "volumes/web" setfattr -x user.meta.none "$V/web"
refused "write info.json" EROFS "volumes/web/info.json" sh -c "echo x >'$V/web/info.json'"
refused "write disk.raw" EROFS "snapshots/s1/disk.raw" sh -c "echo x >>'$V/db/snapshots/s1/disk.raw'"
refused "truncate disk.raw" EROFS "snapshots/s1/disk.raw" truncate -s 0 "$V/db/snapshots/s1/disk.raw"

# EACCES: the kernel checks the mode bits and never asks snapfs.
n=$(log_count)
check_errno "a tenant not yours: EACCES" EACCES as "$BOB" "" -- mkdir "$V/bob"
check_eq "EACCES is the kernel's: no snapfs line" "" "$(lines_since "$n" | grep -w EACCES)"

# Queries that find nothing are not refusals: no line at info.
silent "ls of a missing name (ENOENT)" ls "$V/none"
silent "getfattr of an absent description (ENODATA)" getfattr -n user.description "$V/db"
silent "getfattr -d" getfattr -d "$V/db"
unmount_snapfs

# log_level=debug: the queries get their line; log_level=error: refusals none.
mount_snapfs "admin_group=$ADMINS,log_level=debug" || exit 1
n=$(log_count)
ls "$V/none" >/dev/null 2>&1
check "log_level=debug: a missing name is a debug line" grep -q "debug: lookup tenants/acme/volumes/none: ENOENT" <(lines_since "$n")
n=$(log_count)
getfattr -n user.description "$V/db" >/dev/null 2>&1
check "log_level=debug: a missing attribute is a debug line" grep -q "debug: getxattr user.description tenants/acme/volumes/db: ENODATA" <(lines_since "$n")
unmount_snapfs
n0=$(log_count)
mount_snapfs "admin_group=$ADMINS,log_level=error" || exit 1
silent "log_level=error: a refusal (EINVAL, an info line)" setfattr -n user.status -v bogus "$V/web"
unmount_snapfs
check_eq "log_level=error: no info line from mount to unmount" "" "$(lines_since "$n0" | grep 'info:')"

# EIO: a merge that fails (qemu-img that always fails).
mount_snapfs "admin_group=$ADMINS,qemu_img=/bin/false" || exit 1
refused "a merge that fails" EIO "snapshots/s1" rmdir "$V/db/snapshots/s1"
check "EIO is an error line" grep -q "error: rmdir tenants/acme/volumes/db/snapshots/s1: EIO" "$LOG"
refused "rmdir again, in error_deleting" EBUSY "snapshots/s1" rmdir "$V/db/snapshots/s1"
unmount_snapfs

# ENOSPC: a full catalogue.
rm -rf "${CAT:?}"/* "${SHARE:?}"/*
mount_snapfs "catalog_size=256K" || exit 1
mkdir "$T/full"
last=
for i in $(seq 1 400); do
	n=$(log_count)
	if ! out=$(mkdir "$T/full/volumes/v$i" 2>&1); then
		last=$out
		break
	fi
done
check "volumes until the catalogue is full: ENOSPC" grep -q "No space left on device" <<<"$last"
check_eq "one log line naming ENOSPC and the volume" 1 "$(lines_since "$n" | grep -w ENOSPC | grep -c "volumes/v$i")"
unmount_snapfs
finish
