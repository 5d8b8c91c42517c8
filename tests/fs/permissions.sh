#!/bin/bash
# Permissions (docs/snapfs.md section 8): admins give a tenant to a team with chgrp and
# chmod 2770; the kernel enforces the mode bits; admin-only operations answer
# EPERM to everyone else.
. "$(dirname "$0")/lib.sh"
plan 23

mount_snapfs "admin_group=$ADMINS" || exit 1
T=$MNT/tenants/acme
mkdir "$T"

check "admin chgrp of a tenant" chgrp $TEAM "$T"
check "admin chmod 2770 of a tenant" chmod 2770 "$T"
check_eq "the tenant shows group and mode" "$TEAM 2770" "$(stat -c '%g %a' "$T")"
check_eq "its fixed directories take its group and mode" \
	"$TEAM 2770 $TEAM 2770 $TEAM 2770" \
	"$(stat -c '%g %a' "$T/volumes" "$T/consistencygroups" "$T/manageable" | tr '\n' ' ' | sed 's/ $//')"
check "a team member creates a volume" as $ALICE "$TEAM" -- mkdir "$T/volumes/alices"
check_eq "owned by her, in the tenant's group" "$ALICE $TEAM" "$(stat -c '%u %g' "$T/volumes/alices")"
check_eq "a new volume takes the tenant's mode" "2770" "$(stat -c '%a' "$T/volumes/alices")"
check "a team member sets metadata" as $ALICE "$TEAM" -- setfattr -n user.meta.owner -v alice "$T/volumes/alices"
check "a team member reads info.json" as $ALICE "$TEAM" -- cat "$T/volumes/alices/info.json"
check_errno "an outsider cannot list the tenant: EACCES" EACCES as $BOB "" -- ls "$T/volumes"
check_errno "an outsider cannot create a volume: EACCES" EACCES as $BOB "" -- mkdir "$T/volumes/bobs"
check_errno "an outsider cannot read attributes: EACCES" EACCES \
	as $BOB "" -- getfattr --absolute-names -n user.id "$T/volumes/alices"
check_errno "a team member cannot reset state: EPERM" EPERM \
	as $ALICE "$TEAM" -- setfattr -n user.status -v error "$T/volumes/alices"
check_errno "a team member cannot chmod her volume: EPERM" EPERM \
	as $ALICE "$TEAM" -- chmod 0777 "$T/volumes/alices"
check_errno "a team member cannot chgrp her volume: EPERM" EPERM \
	as $ALICE "$TEAM" -- chgrp $ALICE "$T/volumes/alices"
check_errno "a team member cannot delete the tenant: EPERM" EPERM as $ALICE "$TEAM" -- rmdir "$T"
# chown needs CAP_CHOWN in the kernel's own check (default_permissions), so
# only root changes owners; admin_group members do the other admin actions.
check "root chowns a volume" chown $BOB "$T/volumes/alices"
check_eq "the owner changed" "$BOB" "$(stat -c %u "$T/volumes/alices")"
check "an admin_group member resets state where the mode bits let her in" \
	as $CAROL "$ADMINS,$TEAM" -- setfattr -n user.status -v error "$T/volumes/alices"
check_errno "chmod of a fixed directory: EPERM" EPERM chmod 0700 "$T/volumes"
check_errno "truncating info.json: EROFS" EROFS truncate -s 0 "$T/volumes/alices/info.json"
check "a team member deletes a volume" as $ALICE "$TEAM" -- rmdir "$T/volumes/alices"
unmount_snapfs
finish
