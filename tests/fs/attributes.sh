#!/bin/bash
# user.* attributes: description and metadata with the API's limits,
# read-only attributes, reset-state and force-delete by admins.
. "$(dirname "$0")/lib.sh"
plan 41

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
chmod 0777 "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes
mkdir "$V/db"
D=$V/db

c255=$(printf 'x%.0s' $(seq 1 255))
c256=${c255}y

check_eq "getfattr --absolute-names -d lists the read-only attributes" \
	"user.active_file user.created_at user.id user.json user.project_id user.size user.status" \
	"$(getfattr --absolute-names -d "$D" | sed -n 's/^\(user\.[a-z_.]*\)=.*/\1/p' | sort | tr '\n' ' ' | sed 's/ $//')"
check_errno "no description yet: ENODATA" ENODATA getfattr --absolute-names -n user.description "$D"
check "set user.description" setfattr -n user.description -v "nightly db" "$D"
check_eq "get user.description" "nightly db" "$(xattr user.description "$D")"
check_eq "info.json shows it" "nightly db" "$(jq -r .volume.description "$D/info.json")"
check "a 255-byte description is fine" setfattr -n user.description -v "$c255" "$D"
check_errno "a 256-byte description: E2BIG" E2BIG setfattr -n user.description -v "$c256" "$D"
check_eq "the description is unchanged by the failure" "$c255" "$(xattr user.description "$D")"
check "remove user.description" setfattr -x user.description "$D"
check_eq "info.json: description null again" "null" "$(jq -r .volume.description "$D/info.json")"

check "set user.meta.env" setfattr -n user.meta.env -v prod "$D"
check "a key with every allowed character" setfattr -n "user.meta.A-z_0:9. x" -v v "$D"
check_eq "get user.meta.env" "prod" "$(xattr user.meta.env "$D")"
check_eq "info.json metadata" '{"env":"prod","A-z_0:9. x":"v"}' \
	"$(jq -c .volume.metadata "$D/info.json")"
check "getfattr --absolute-names -d lists user.meta.env" grep -q '^user.meta.env="prod"$' <<<"$(getfattr --absolute-names -d "$D")"
check "a 255-byte value is fine" setfattr -n user.meta.big -v "$c255" "$D"
check_errno "a 256-byte value: E2BIG" E2BIG setfattr -n user.meta.big2 -v "$c256" "$D"
check_errno "a bad key: EINVAL" EINVAL setfattr -n 'user.meta.bad!key' -v 1 "$D"
check_errno "an empty key: EINVAL" EINVAL setfattr -n 'user.meta.' -v 1 "$D"
check_errno "a missing key: ENODATA" ENODATA getfattr --absolute-names -n user.meta.nope "$D"
check "remove user.meta.env" setfattr -x user.meta.env "$D"
check_errno "removing it again: ENODATA" ENODATA setfattr -x user.meta.env "$D"
check_errno "an unknown attribute on read: ENOTSUP" ENOTSUP getfattr --absolute-names -n user.colour "$D"
check_errno "an unknown attribute on write: ENOTSUP" ENOTSUP setfattr -n user.colour -v red "$D"
check_errno "a non-user namespace: ENOTSUP" ENOTSUP setfattr -n trusted.x -v 1 "$D"
for ro in user.id user.created_at user.project_id user.active_file user.json; do
	check_errno "$ro is read-only: EPERM" EPERM setfattr -n "$ro" -v x "$D"
done
check_errno "attributes of a fixed directory: ENOTSUP" ENOTSUP \
	setfattr -n user.description -v x "$MNT/tenants/acme/volumes"

# reset-state and force-delete (admin), as the API.
check_errno "non-admin reset-state: EPERM" EPERM as $BOB "" -- setfattr -n user.status -v error "$D"
check_errno "unknown status: EINVAL" EINVAL setfattr -n user.status -v broken "$D"
check "admin reset-state to error" setfattr -n user.status -v error "$D"
check_eq "user.status is error" "error" "$(xattr user.status "$D")"
check_errno "extend while in error: EBUSY" EBUSY setfattr -n user.size -v 9 "$D"
setfattr -n user.status -v creating "$D"
check_errno "rmdir while creating: EBUSY" EBUSY rmdir "$D"
check_errno "non-admin force-delete: EPERM" EPERM as $BOB "" -- setfattr -n user.force_delete -v 1 "$D"
check "admin force-delete in any state" setfattr -n user.force_delete -v 1 "$D"
check_eq "volume and file gone" "0 0" "$(ls "$V" | wc -l) $(share_files | wc -l)"
unmount_snapfs
finish
