#!/bin/bash
# Errors (docs/snapfs.md section 7) that the other tests do not reach: regular files,
# links, moves between containers, a full catalogue, bad mount options.
. "$(dirname "$0")/lib.sh"
plan 26

mount_snapfs || exit 1
T=$MNT/tenants
mkdir "$T/acme" "$T/beta" "$T/acme/volumes/db"
D=$T/acme/volumes/db

check_errno "a regular file in /: EPERM" EPERM touch "$MNT/file"
check_errno "a regular file in tenants/: EPERM" EPERM touch "$T/file"
check_errno "a regular file in a tenant: EPERM" EPERM touch "$T/acme/file"
check_errno "a regular file in volumes/: EPERM" EPERM touch "$T/acme/volumes/file"
check_errno "a regular file in a volume: EPERM" EPERM touch "$D/file"
check_errno "a device node: EPERM" EPERM mknod "$D/null" c 1 3
check_errno "a symbolic link in volumes/: EPERM" EPERM ln -s db "$T/acme/volumes/link"
check_errno "a hard link: EPERM" EPERM ln "$D/info.json" "$D/info2.json"
check_errno "writing info.json: EROFS" EROFS sh -c "echo x > '$D/info.json'"
check_errno "removing info.json: EPERM" EPERM rm -f "$D/info.json"
check_errno "rmdir of info.json: ENOTDIR" ENOTDIR rmdir "$D/info.json"
check_errno "mkdir in by-id/: EPERM" EPERM mkdir "$MNT/by-id/x"
check_errno "moving a volume to another tenant: EPERM" EPERM mv "$D" "$T/beta/volumes/db"
check_errno "a name over 255 bytes: ENAMETOOLONG" ENAMETOOLONG mkdir "$T/acme/volumes/$(printf 'n%.0s' $(seq 1 256))"
check_errno "a missing volume: ENOENT" ENOENT getfattr --absolute-names -n user.id "$T/acme/volumes/none"
# read_ahead (default 4M) is the mount's read-ahead window (root sets it)
check_eq "read_ahead: the mount's window is 4M by default" 4096 \
	"$(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb")"
unmount_snapfs
mount_snapfs "read_ahead=0" || exit 1
check_eq "read_ahead=0 keeps the kernel's 128K" 128 \
	"$(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb")"
unmount_snapfs

# A catalogue that is full answers ENOSPC and leaves no file behind.
rm -rf "$CAT"/* "$SHARE"/*
mount_snapfs "catalog_size=256K" || exit 1
mkdir "$T/full"
err=
for i in $(seq 1 400); do
	if ! out=$(mkdir "$T/full/volumes/v$i" 2>&1); then
		err=$out
		break
	fi
done
check "creating volumes until the catalogue is full gives ENOSPC" grep -q "No space left on device" <<<"$err"
check_eq "no volume file without a catalogue entry" "$(ls "$T/full/volumes" | wc -l)" "$(share_files | wc -l)"
check "volumes made before are still there" test -d "$T/full/volumes/v1"
check "and can still be changed and deleted" sh -c "setfattr -n user.meta.k -v v '$T/full/volumes/v1' && rmdir '$T/full/volumes/v2'"
unmount_snapfs

check_errno "a bad volume_format is refused at mount" EINVAL sh -c \
	"'$SNAPFS' -f -o catalog=$CAT,volume_format=vmdk '$SHARE' '$MNT' 2>&1 | sed 's/must be raw or qcow2/Invalid argument/'; exit 1"
check_errno "a read_ahead that is not whole pages is refused at mount" EINVAL sh -c \
	"'$SNAPFS' -f -o catalog=$CAT,read_ahead=5K '$SHARE' '$MNT' 2>&1 | sed 's/not a multiple of 4K up to 1G/Invalid argument/'; exit 1"
finish
