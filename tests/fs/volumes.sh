#!/bin/bash
# Volumes: mkdir creates volume-<uuid> on the share (raw or qcow2), rmdir
# removes it, user.size extends, mv renames, info.json has the API's shape.
. "$(dirname "$0")/lib.sh"
plan 36

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes

check "mkdir creates a volume" mkdir "$V/db"
vid=$(xattr user.id "$V/db")
file=volume-$vid
check_eq "user.active_file is volume-<uuid>" "$file" "$(xattr user.active_file "$V/db")"
check_eq "the share holds exactly that file" "$file" "$(share_files)"
check_eq "raw, sparse, of default_size (1 GiB)" "1073741824 0" \
	"$(stat -c '%s %b' "$SHARE/$file")"
check_eq "qemu-img sees a raw image" "raw" \
	"$(qemu-img info --output=json "$SHARE/$file" | jq -r .format)"
check_eq "user.size is 1 (GiB)" "1" "$(xattr user.size "$V/db")"
check_eq "user.status is available" "available" "$(xattr user.status "$V/db")"
check_eq "user.project_id is the tenant's id" "$(xattr user.id "$MNT/tenants/acme")" \
	"$(xattr user.project_id "$V/db")"
check_eq "a volume holds info.json and snapshots/" "info.json snapshots" \
	"$(ls "$V/db" | tr '\n' ' ' | sed 's/ $//')"

info=$(cat "$V/db/info.json")
check "info.json is JSON" jq -e . <<<"$info"
check_eq "info.json: volume.id, name, size, status" "$vid db 1 available" \
	"$(jq -r '.volume | "\(.id) \(.name) \(.size) \(.status)"' <<<"$info")"
check_eq "info.json: description, metadata, created_at, tenant" \
	"null {} $(xattr user.created_at "$V/db") $(xattr user.id "$MNT/tenants/acme")" \
	"$(jq -r -c '.volume | "\(.description) \(.metadata) \(.created_at) \(.["os-vol-tenant-attr:tenant_id"])"' <<<"$info")"
check_eq "user.json equals info.json" "$(jq -S -c . <<<"$info")" \
	"$(xattr user.json "$V/db" | jq -S -c .)"
check_eq "stat size of info.json equals what cat reads" "$(printf '%s\n' "$info" | wc -c)" \
	"$(stat -c %s "$V/db/info.json")"
check_eq "by-id/<uuid> links to the volume" "../tenants/acme/volumes/db" \
	"$(readlink "$MNT/by-id/$vid")"

check_errno "mkdir of an existing volume: EEXIST" EEXIST mkdir "$V/db"
check "setfattr user.size 3 extends" setfattr -n user.size -v 3 "$V/db"
check_eq "the raw file is 3 GiB" "3221225472" "$(stat -c %s "$SHARE/$file")"
check_eq "user.size is 3" "3" "$(xattr user.size "$V/db")"
check "user.size accepts a G suffix" setfattr -n user.size -v 4G "$V/db"
check_errno "shrinking: EINVAL" EINVAL setfattr -n user.size -v 2 "$V/db"
check_errno "same size: EINVAL" EINVAL setfattr -n user.size -v 4 "$V/db"
check_errno "not a whole GiB: EINVAL" EINVAL setfattr -n user.size -v 4500M "$V/db"
check_errno "not a size: EINVAL" EINVAL setfattr -n user.size -v big "$V/db"
check_eq "the file is still 4 GiB" "4294967296" "$(stat -c %s "$SHARE/$file")"

check "mv renames a volume" mv "$V/db" "$V/db2"
check_eq "same id and file after rename" "$vid $file" \
	"$(xattr user.id "$V/db2") $(xattr user.active_file "$V/db2")"
check_eq "info.json has the new name" "db2" "$(jq -r .volume.name "$V/db2/info.json")"
mkdir "$V/other"
check_errno "mv onto an existing volume: EEXIST" EEXIST mv -T "$V/db2" "$V/other"
check "rmdir deletes the volume" rmdir "$V/db2"
check_eq "its file is gone from the share" "1" "$(share_files | wc -l)"
unmount_snapfs

# qcow2 volumes of another default size.
mount_snapfs "volume_format=qcow2,default_size=2G" || exit 1
mkdir "$V/q"
qfile=$(xattr user.active_file "$V/q")
check_eq "volume_format=qcow2, default_size=2G: a 2 GiB qcow2 image" "qcow2 2147483648" \
	"$(qemu-img info --output=json "$SHARE/$qfile" | jq -r '"\(.format) \(.["virtual-size"])"')"
setfattr -n user.size -v 5 "$V/q"
check_eq "extending a qcow2 volume resizes the image" "5368709120" \
	"$(qemu-img info --output=json "$SHARE/$qfile" | jq -r '.["virtual-size"]')"
check "qemu-img check passes" qemu-img check -q "$SHARE/$qfile"
unmount_snapfs
finish
