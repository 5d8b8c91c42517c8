#!/bin/bash
# Tenants: mkdir/rmdir/mv by admins, the fixed directories, by-id links.
. "$(dirname "$0")/lib.sh"
plan 27

mount_snapfs "admin_group=$ADMINS" || exit 1
T=$MNT/tenants

check "admin creates a tenant with mkdir" mkdir "$T/acme"
check_eq "tenants/ lists it" "acme" "$(ls "$T")"
check_eq "a tenant has volumes, consistencygroups, manageable" \
	"consistencygroups manageable volumes" "$(ls "$T/acme" | tr '\n' ' ' | sed 's/ $//')"
check_errno "mkdir of an existing tenant: EEXIST" EEXIST mkdir "$T/acme"
check_errno "non-admin mkdir of a tenant: EPERM" EPERM as $BOB "" -- mkdir "$T/intruder"
check "admin_group member creates a tenant" as $CAROL "$ADMINS" -- mkdir "$T/carols"
check_eq "the tenant belongs to its creator" "$CAROL" "$(stat -c %u "$T/carols")"

id=$(xattr user.id "$T/acme")
check "user.id is a uuid" grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$id"
check_eq "by-id/<uuid> links to the tenant" "../tenants/acme" "$(readlink "$MNT/by-id/$id")"
check_eq "by-id/<uuid> resolves" "$(stat -c %i "$T/acme")" "$(stat -L -c %i "$MNT/by-id/$id")"
check "user.created_at is ISO 8601" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}' \
	<<<"$(xattr user.created_at "$T/acme")"

check "a volume in the tenant" mkdir "$T/acme/volumes/v1"
check_errno "rmdir of a tenant with volumes: ENOTEMPTY" ENOTEMPTY rmdir "$T/acme"
check_errno "rmdir of a fixed directory: EPERM" EPERM rmdir "$T/acme/manageable"
check_errno "mkdir of a fixed directory's sibling: EPERM" EPERM mkdir "$T/acme/other"
check_errno "mv of a fixed directory: EPERM" EPERM mv "$T/acme/volumes" "$T/acme/vols"
check_errno "non-admin rmdir of a tenant: EPERM" EPERM as $BOB "" -- rmdir "$T/carols"
check_errno "non-admin rename of a tenant: EPERM" EPERM as $BOB "" -- mv "$T/carols" "$T/bobs"

check "admin renames a tenant" mv "$T/carols" "$T/carol"
check_eq "renamed tenant keeps its id" "$(xattr user.id "$T/carol")" \
	"$(basename "$(ls -l "$MNT/by-id" | awk '/tenants\/carol$/ {print $9}')")"
check_errno "rename onto an existing tenant: EEXIST" EEXIST mv -T "$T/carol" "$T/acme"
check "rmdir of the volume" rmdir "$T/acme/volumes/v1"
check "rmdir of the empty tenant" rmdir "$T/acme"
check_errno "it is gone" ENOENT stat "$T/acme"
check_errno "and so is its by-id link" ENOENT stat "$MNT/by-id/$id"
check_errno "mkdir directly under / is refused: EPERM" EPERM mkdir "$MNT/elsewhere"

unmount_snapfs
finish
