#!/bin/bash
# Consistency groups and group snapshots (docs/snapfs.md sections 3-8): mkdir makes a
# group with info.json, volumes/ and cgsnapshots/; its attributes (read-only
# ones, description, metadata, reset-state by admins); mv renames it; members
# are added with ln -s ../../../volumes/V (or user.add_volumes, all or
# nothing) and removed with rm (or user.remove_volumes); a member volume shows
# user.consistency_group_id and cannot be deleted; mkdir cgsnapshots/C takes
# a snapshot named C of every member at one instant (the members' disk.raw
# are compared byte for byte with a model of what the hypervisor wrote); C's
# info.json and links; the refusals (EEXIST, EBUSY, EINVAL, ENOTEMPTY, EPERM)
# leave nothing behind on the share; everything survives a remount; rmdir of
# a group snapshot merges every member snapshot and leaves the other
# snapshots and the live images as they were; reset-state and force-delete;
# user.source fills an empty group with full copies of a group snapshot or of
# a group's volumes.
#
# Volumes are 1 GiB and sparse; the hypervisor (qemu-io on the share) only
# writes in the first 8 MiB and the last MiB, and content is compared there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C
plan 270

declare -A EXP LIVE
EXP_BY_VOLUME=1 # check_volume reads EXP[<volume name>/<snapshot name>]

# ---- helpers ----

lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; } # ls on one line
attr_list() { # OBJ: the user.* attributes getfattr -d lists, on one line
	getfattr --absolute-names -d "$1" 2>/dev/null | sed -n 's/^\(user\.[a-z_.]*\)=.*/\1/p' | sort |
		tr '\n' ' ' | sed 's/ $//'
}
# share_state: the files on the share and every .info (a refusal changes none).
share_state() { (cd "$SHARE" && ls -A1 | sort && cat ./*.info 2>/dev/null); }
# snaps_of VOLUME...: "v:snapshots v:snapshots ..." (what a refusal must not change)
snaps_of() {
	local v out=''
	for v; do out+="$v:$(ls "$V/$v/snapshots" 2>&1 | tr '\n' ',' | sed 's/,$//') "; done
	echo "${out% }"
}
# check_share DESC: no file on the share outside the catalogued volumes'
# chains (base, overlays of their snapshots, .info), as by-id lists them.
check_share() {
	local known
	known=$(find "$MNT/by-id" -mindepth 1 -printf '%f %l\n' 2>/dev/null | awk '
		$2 ~ /^\.\.\/tenants\/[^\/]+\/volumes\/[^\/]+$/ { vol[$2] = $1; print "volume-" $1; print "volume-" $1 ".info"; next }
		$2 ~ /^\.\.\/tenants\/[^\/]+\/volumes\/[^\/]+\/snapshots\/[^\/]+$/ { snap[$1] = $2 }
		END { for (s in snap) { v = snap[s]; sub(/\/snapshots\/[^\/]+$/, "", v); print "volume-" vol[v] "." s } }' | sort)
	check_eq "$1: no file on the share outside the catalogued chains" "" \
		"$(cd "$SHARE" && ls -A1 | sort | comm -23 - <(echo "$known"))"
}

# An independent model of each volume: the hypervisor's writes (hv) are also
# applied to a sparse raw file $REF/<volume>.raw; ref_keep saves its written
# regions as the expected bytes of a snapshot; same_bytes compares, byte for
# byte, those regions of an image with them.
REF=$WORK/ref
mkdir -p "$REF"
regions() { # IMAGE: the first 8 MiB and the last MiB of a 1 GiB image
	{
		dd if="$1" bs=1M count=8 status=none
		dd if="$1" bs=1M skip=1023 count=1 status=none
	} 2>/dev/null
}
hvr() { # VOLDIR QEMU-IO-COMMAND...
	local d=$1 r c args=()
	r=$REF/$(basename "$1").raw
	shift
	[ -e "$r" ] || truncate -s "$GIB" "$r"
	for c in "$@"; do args+=(-c "${c/#write -c /write }"); done
	hv "$d" "$@" && qemu-io -f raw "${args[@]}" "$r" >/dev/null
}
ref_keep() { regions "$REF/$1.raw" >"$REF/$1@$2"; } # VOLUME NAME
same_bytes() { # IMAGE VOLUME@NAME
	[ "$(stat -c %s "$1")" = "$GIB" ] || { echo "$1 is not $GIB bytes"; return 1; }
	cmp <(regions "$1") "$REF/$2"
}
raw_same_bytes() { # SHAREFILE VOLUME@NAME: the same, of a share file's chain
	to_raw "$1" "$WORK/conv.raw" || { echo "cannot convert $1"; return 1; }
	same_bytes "$WORK/conv.raw" "$2"
	local rc=$?
	rm -f "$WORK/conv.raw"
	return $rc
}

# ---- setup: a team's tenant, four volumes with different data ----

mount_snapfs "admin_group=$ADMINS" || exit 1
T=$MNT/tenants/acme
mkdir "$T" "$MNT/tenants/other"
chgrp $TEAM "$T" && chmod 2770 "$T"
pid=$(xattr user.id "$T")
mkdir "$MNT/tenants/other/volumes/o"
V=$T/volumes
CG=$T/consistencygroups
mkdir "$V/a" "$V/b" "$V/c" "$V/d" "$V/e"
hvr "$V/a" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
hvr "$V/b" "write -P 0xb1 1M 2M" "write -z 1536k 256k" "write -P 0xb2 $((GIB - 4096)) 4096"
hvr "$V/c" "write -P 0xc1 512k 512k" "write -P 0xc2 $((END + 65536)) 128k" "write -P 0xc3 7M 1M"
hvr "$V/d" "write -P 0xd1 0 1M"
mkdir "$V/a/snapshots/s1" # a single snapshot of a, before any group snapshot
EXP[a/s1]=$(snap_expect "$V/a" s1)
ref_keep a s1
hvr "$V/a" "write -c -P 0xa3 4M 64k" "write -z 0 64k" "write -P 0xa4 $((2 * MIB + 100)) 5000"
check "setup: a's s1 is, byte for byte, what the hypervisor had written" \
	same_bytes "$V/a/snapshots/s1/disk.raw" a@s1

# ---- create a group ----

check "mkdir consistencygroups/G creates a group" mkdir "$CG/G"
G=$CG/G
gid=$(xattr user.id "$G")
check "user.id of the group is a uuid" is_uuid "$gid"
check_eq "status available, project_id the tenant's id" "available $pid" \
	"$(xattr user.status "$G") $(xattr user.project_id "$G")"
check_eq "a group holds cgsnapshots, info.json, volumes" "cgsnapshots info.json volumes" "$(lsw "$G")"
check_eq "volumes/ and cgsnapshots/ are empty directories" "directory directory |" \
	"$(stat -c %F "$G/volumes" "$G/cgsnapshots" 2>&1 | tr '\n' ' ')|$(ls -A "$G/volumes" 2>&1)$(ls -A "$G/cgsnapshots" 2>&1)"
check_eq "getfattr -d lists the group's read-only attributes" \
	"user.created_at user.id user.json user.project_id user.status" "$(attr_list "$G")"
created=$(xattr user.created_at "$G")
check "user.created_at is an ISO 8601 time ($created)" \
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}' <<<"$created"
info=$(cat "$G/info.json" 2>&1)
check "info.json has every key of the API's consistencygroup" jq -e '.consistencygroup | has("id")
	and has("name") and has("description") and has("status") and has("created_at")
	and has("availability_zone") and has("volume_types") and has("project_id")' <<<"$info"
check_eq "info.json: id, name, status, availability_zone, volume_types, project_id" \
	"$gid G available nova [] $pid" \
	"$(jq -r -c '.consistencygroup | "\(.id) \(.name) \(.status) \(.availability_zone) \(.volume_types) \(.project_id)"' <<<"$info" 2>&1)"
check_eq "info.json: description null, created_at as user.created_at" "null $created" \
	"$(jq -r '.consistencygroup | "\(.description) \(.created_at)"' <<<"$info" 2>&1)"
check_eq "user.json equals info.json" "$(jq -S -c . <<<"$info" 2>&1)" "$(xattr user.json "$G" | jq -S -c . 2>&1)"
check_eq "stat size of info.json equals what cat reads" "$(printf '%s\n' "$info" | wc -c)" \
	"$(stat -c %s "$G/info.json" 2>&1)"
check_eq "by-id/<group id> links to the group" "../tenants/acme/consistencygroups/G" \
	"$(readlink "$MNT/by-id/$gid")"
check_errno "mkdir of an existing group: EEXIST" EEXIST mkdir "$G"
check_errno "a regular file in a group: EPERM" EPERM touch "$G/file"
check_errno "writing a group's info.json: EROFS" EROFS sh -c "echo x > '$G/info.json'"

# ---- the group's attributes ----

c255=$(printf 'x%.0s' $(seq 1 255))
c256=${c255}y
check_errno "no description yet: ENODATA" ENODATA getfattr --absolute-names -n user.description "$G"
check "set user.description of a group" setfattr -n user.description -v "erp tier" "$G"
check_eq "user.description and info.json show it" "erp tier|erp tier" \
	"$(xattr user.description "$G")|$(jq -r .consistencygroup.description "$G/info.json" 2>&1)"
check "a 255-byte description is fine" setfattr -n user.description -v "$c255" "$G"
check_errno "a 256-byte description: E2BIG" E2BIG setfattr -n user.description -v "$c256" "$G"
check_eq "the description is unchanged by the failure" "$c255" "$(xattr user.description "$G")"
check "set user.meta.env of a group" setfattr -n user.meta.env -v prod "$G"
check_eq "get user.meta.env" "prod" "$(xattr user.meta.env "$G")"
check_errno "a bad metadata key: EINVAL" EINVAL setfattr -n 'user.meta.bad!key' -v 1 "$G"
check_errno "a 256-byte metadata value: E2BIG" E2BIG setfattr -n user.meta.big -v "$c256" "$G"
check "remove user.meta.env" setfattr -x user.meta.env "$G"
check_errno "it is gone: ENODATA" ENODATA getfattr --absolute-names -n user.meta.env "$G"
check_errno "an unknown attribute: ENOTSUP" ENOTSUP getfattr --absolute-names -n user.colour "$G"
for ro in user.id user.created_at user.project_id user.json; do
	check_errno "$ro of a group is read-only: EPERM" EPERM setfattr -n "$ro" -v x "$G"
done
check_errno "reset-state to an unknown status: EINVAL" EINVAL setfattr -n user.status -v broken "$G"
check_errno "reset-state to a volume-only status (in-use): EINVAL" EINVAL setfattr -n user.status -v in-use "$G"
for st in creating deleting error error_deleting updating available; do
	setfattr -n user.status -v $st "$G" 2>/dev/null
	check_eq "reset-state of a group to $st" "$st $st" \
		"$(xattr user.status "$G") $(jq -r .consistencygroup.status "$G/info.json" 2>&1)"
done
check "mv renames a group" mv "$G" "$CG/G2"
check_eq "same id; info.json and by-id follow" "$gid G2 ../tenants/acme/consistencygroups/G2" \
	"$(xattr user.id "$CG/G2") $(jq -r .consistencygroup.name "$CG/G2/info.json" 2>&1) $(readlink "$MNT/by-id/$gid")"
mv "$CG/G2" "$G"

# ---- permissions: the tenant's team works with groups, others cannot ----

check "a team member creates a group" as $ALICE "$TEAM" -- mkdir "$CG/alices"
check_eq "owned by her, in the tenant's group; volumes/ and cgsnapshots/ take the tenant's group and mode" \
	"$ALICE $TEAM|$TEAM 2770|$TEAM 2770" \
	"$(stat -c '%u %g' "$CG/alices" 2>&1)|$(stat -c '%g %a' "$CG/alices/volumes" 2>&1)|$(stat -c '%g %a' "$CG/alices/cgsnapshots" 2>&1)"
check "a team member adds a member with ln -s" as $ALICE "$TEAM" -- ln -s ../../../volumes/e "$CG/alices/volumes/e"
check_errno "rmdir of a member volume: EBUSY" EBUSY rmdir "$V/e"
check "a team member takes a group snapshot" as $ALICE "$TEAM" -- mkdir "$CG/alices/cgsnapshots/x"
check_errno "a team member cannot reset a group's state: EPERM" EPERM \
	as $ALICE "$TEAM" -- setfattr -n user.status -v error "$CG/alices"
check_errno "nor a group snapshot's: EPERM" EPERM \
	as $ALICE "$TEAM" -- setfattr -n user.status -v error "$CG/alices/cgsnapshots/x"
check_errno "nor force-delete a group snapshot: EPERM" EPERM \
	as $ALICE "$TEAM" -- setfattr -n user.force_delete -v 1 "$CG/alices/cgsnapshots/x"
check_errno "an outsider cannot create a group: EACCES" EACCES as $BOB "" -- mkdir "$CG/bobs"
check_errno "an outsider cannot add a member: EACCES" EACCES as $BOB "" -- ln -s ../../../volumes/d "$G/volumes/d"
check "a team member deletes the group snapshot" retry_busy as $ALICE "$TEAM" -- rmdir "$CG/alices/cgsnapshots/x"
check "a team member removes the member" as $ALICE "$TEAM" -- rm "$CG/alices/volumes/e"
check "and deletes the group" as $ALICE "$TEAM" -- rmdir "$CG/alices"
check "the volume can be deleted once it left the group" rmdir "$V/e"

# ---- membership: ln -s and rm ----

check "ln -s ../../../volumes/a G/volumes/a adds a member" ln -s ../../../volumes/a "$G/volumes/a"
check_eq "readlink gives ../../../volumes/a" "../../../volumes/a" "$(readlink "$G/volumes/a" 2>&1)"
check_eq "the link resolves to the volume" "$(stat -c %i "$V/a")" "$(stat -L -c %i "$G/volumes/a" 2>&1)"
check_eq "the member's user.consistency_group_id is the group's id" "$gid" \
	"$(xattr user.consistency_group_id "$V/a")"
check_eq "its info.json has consistencygroup_id" "$gid" "$(jq -r .volume.consistencygroup_id "$V/a/info.json" 2>&1)"
check_errno "a volume in no group: user.consistency_group_id ENODATA" ENODATA \
	getfattr --absolute-names -n user.consistency_group_id "$V/b"
check_eq "its info.json: consistencygroup_id null" "null" "$(jq -r .volume.consistencygroup_id "$V/b/info.json" 2>&1)"
mkdir "$CG/H"
state=$(share_state)
check_errno "ln -s to a missing volume: EINVAL" EINVAL ln -s ../../../volumes/nope "$G/volumes/nope"
check_errno "a link name other than the volume's name: EINVAL" EINVAL ln -s ../../../volumes/b "$G/volumes/bee"
check_errno "a volume of another tenant: EINVAL" EINVAL ln -s ../../../../other/volumes/o "$G/volumes/o"
check_errno "a target that is not ../../../volumes/<name>: EINVAL" EINVAL ln -s /tmp/b "$G/volumes/b"
check_errno "a member added again: EEXIST" EEXIST ln -sT ../../../volumes/a "$G/volumes/a"
check_errno "a member of G added to another group: EINVAL" EINVAL ln -s ../../../volumes/a "$CG/H/volumes/a"
setfattr -n user.status -v error "$V/c"
check_errno "a volume in error: EBUSY" EBUSY ln -s ../../../volumes/c "$G/volumes/c"
setfattr -n user.status -v available "$V/c"
check_errno "rm of a non-member: ENOENT" ENOENT rm "$G/volumes/b"
check_errno "rmdir of a group with members: ENOTEMPTY" ENOTEMPTY rmdir "$G"
check_eq "the refusals changed nothing: members of G, of H; group of b, c" "a||" \
	"$(lsw "$G/volumes")|$(lsw "$CG/H/volumes")|$(xattr user.consistency_group_id "$V/b")$(xattr user.consistency_group_id "$V/c")"
check "rm G/volumes/a removes the member" rm "$G/volumes/a"
check_errno "a is in no group again" ENODATA getfattr --absolute-names -n user.consistency_group_id "$V/a"
check_eq "G/volumes is empty, the volume still exists" "|available" "$(lsw "$G/volumes")|$(xattr user.status "$V/a")"

# ---- membership: user.add_volumes and user.remove_volumes, all or nothing ----

check "user.add_volumes a,b adds both" setfattr -n user.add_volumes -v a,b "$G"
check_eq "members a b; their user.consistency_group_id" "a b $gid $gid" \
	"$(lsw "$G/volumes") $(xattr user.consistency_group_id "$V/a") $(xattr user.consistency_group_id "$V/b")"
ln -s ../../../volumes/d "$CG/H/volumes/d"
check_errno "add_volumes naming an unknown volume: EINVAL" EINVAL setfattr -n user.add_volumes -v c,nope "$G"
check_errno "add_volumes naming a member of G: EINVAL" EINVAL setfattr -n user.add_volumes -v c,a "$G"
check_errno "add_volumes naming a member of another group: EINVAL" EINVAL setfattr -n user.add_volumes -v c,d "$G"
check_errno "remove_volumes naming a non-member: EINVAL" EINVAL setfattr -n user.remove_volumes -v a,c "$G"
check_eq "none of them changed anything: G has a b, H has d, c is in no group" "a b|d|" \
	"$(lsw "$G/volumes")|$(lsw "$CG/H/volumes")|$(xattr user.consistency_group_id "$V/c")"
check "remove_volumes a,b removes both" setfattr -n user.remove_volumes -v a,b "$G"
check_eq "G has no member" "" "$(lsw "$G/volumes")"
check "add_volumes a,b,c" setfattr -n user.add_volumes -v a,b,c "$G"
check_eq "members a b c" "a b c" "$(lsw "$G/volumes")"
rm "$CG/H/volumes/d"
check "an empty group is deleted by rmdir" rmdir "$CG/H"
check_eq "the share is untouched by membership changes" "$state" "$(share_state)"

# ---- a group snapshot ----

for v in a b c; do
	LIVE[$v]=$(live_sum "$V/$v")
	ref_keep $v C1
done
check "mkdir cgsnapshots/C1 takes a group snapshot" mkdir "$G/cgsnapshots/C1"
C=$G/cgsnapshots/C1
cid=$(xattr user.id "$C")
check "user.id of the group snapshot is a uuid" is_uuid "$cid"
check_eq "status available when mkdir returns, consistency_group_id the group's, project_id" \
	"available $gid $pid" \
	"$(xattr user.status "$C") $(xattr user.consistency_group_id "$C") $(xattr user.project_id "$C")"
check_eq "getfattr -d lists the group snapshot's read-only attributes" \
	"user.consistency_group_id user.created_at user.id user.json user.project_id user.status" "$(attr_list "$C")"
check_eq "C1 lists changes/, changes.json/, info.json and one link per member" "a b c changes changes.json info.json" "$(lsw "$C")"
check_eq "each link is ../../../../volumes/<volume>/snapshots/C1" \
	"../../../../volumes/a/snapshots/C1 ../../../../volumes/b/snapshots/C1 ../../../../volumes/c/snapshots/C1" \
	"$(readlink "$C/a" "$C/b" "$C/c" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "the member snapshots' disk.raw are reachable through the links" \
	test -f "$C/a/disk.raw" -a -f "$C/b/disk.raw" -a -f "$C/c/disk.raw"
check_eq "by-id/<cgsnapshot id> links to the group snapshot" \
	"../tenants/acme/consistencygroups/G/cgsnapshots/C1" "$(readlink "$MNT/by-id/$cid")"
want='' got=''
for v in a b c; do
	want+="$v:C1:available:$cid "
	got+="$v:$(lsw "$V/$v/snapshots" | grep -ow C1):$(xattr user.status "$V/$v/snapshots/C1"):$(xattr user.cgsnapshot_id "$V/$v/snapshots/C1") "
done
check_eq "each member has a snapshot C1, available, whose user.cgsnapshot_id is C1's id" "$want" "$got"
check_eq "a volume outside the group gets no snapshot; a's s1 stays" "d: a:C1,s1" \
	"d:$(lsw "$V/d/snapshots") $(snaps_of a)"
check_errno "a single snapshot has no user.cgsnapshot_id: ENODATA" ENODATA \
	getfattr --absolute-names -n user.cgsnapshot_id "$V/a/snapshots/s1"
for v in a b c; do EXP[$v/C1]=$(snap_expect "$V/$v" C1); done
check_eq "each member snapshot's data (its overlay's backing) is the volume at mkdir" \
	"${LIVE[a]} ${LIVE[b]} ${LIVE[c]}" "${EXP[a/C1]} ${EXP[b/C1]} ${EXP[c/C1]}"
check_eq "each member's C1/disk.raw shows it" "${EXP[a/C1]} ${EXP[b/C1]} ${EXP[c/C1]}" \
	"$(image_sum "$V/a/snapshots/C1/disk.raw") $(image_sum "$V/b/snapshots/C1/disk.raw") $(image_sum "$V/c/snapshots/C1/disk.raw")"
for v in a b c; do
	check "$v/snapshots/C1/disk.raw is, byte for byte, what the hypervisor had written to $v" \
		same_bytes "$V/$v/snapshots/C1/disk.raw" "$v@C1"
done
check_eq "the members' data differ (sanity)" 3 "$(printf '%s\n' "${EXP[a/C1]}" "${EXP[b/C1]}" "${EXP[c/C1]}" | sort -u | wc -l)"

info=$(cat "$C/info.json" 2>&1)
check "C1's info.json has every key of the API's cgsnapshot" jq -e '.cgsnapshot | has("id") and has("name")
	and has("description") and has("status") and has("consistency_group_id") and has("created_at")
	and has("project_id") and has("cgsnapshot_members")' <<<"$info"
check_eq "info.json: id, name, status, consistency_group_id, project_id, description, created_at" \
	"$cid C1 available $gid $pid null $(xattr user.created_at "$C")" \
	"$(jq -r '.cgsnapshot | "\(.id) \(.name) \(.status) \(.consistency_group_id) \(.project_id) \(.description) \(.created_at)"' <<<"$info" 2>&1)"
want=$(for v in a b c; do
	s=$V/$v/snapshots/C1
	jq -n -c --arg id "$(xattr user.id "$s")" --arg vid "$(xattr user.id "$V/$v")" \
		--arg ca "$(xattr user.created_at "$s")" \
		'{id: $id, volume_id: $vid, size: 1, created_at: $ca, status: "available"}'
done | jq -s -S -c 'sort_by(.volume_id)')
check_eq "info.json: cgsnapshot_members, one per member: its snapshot's id, volume_id, size, created_at, status" \
	"$want" "$(jq -S -c '[.cgsnapshot.cgsnapshot_members[] | {id, volume_id, size, created_at, status}] | sort_by(.volume_id)' <<<"$info" 2>&1)"
check_eq "user.json equals info.json" "$(jq -S -c . <<<"$info" 2>&1)" "$(xattr user.json "$C" | jq -S -c . 2>&1)"
check_eq "stat size of info.json equals what cat reads" "$(printf '%s\n' "$info" | wc -c)" \
	"$(stat -c %s "$C/info.json" 2>&1)"

# The hypervisor writes on: the group snapshot keeps its bytes.
hvr "$V/a" "write -P 0xa5 1M 64k" "write -z $END 64k"
hvr "$V/b" "write -z 1M 512k" "write -c -P 0xb3 6M 64k" "write -P 0xb4 $((END + 4096)) 512"
hvr "$V/c" "write -P 0xc4 0 64k" "write -z 7M 128k"
for v in a b c; do LIVE[$v]=$(live_sum "$V/$v"); done
check_eq "C1's member snapshots are unchanged by the hypervisor's later writes" \
	"${EXP[a/C1]} ${EXP[b/C1]} ${EXP[c/C1]}" \
	"$(image_sum "$V/a/snapshots/C1/disk.raw") $(image_sum "$V/b/snapshots/C1/disk.raw") $(image_sum "$V/c/snapshots/C1/disk.raw")"
check_volume "a after the group snapshot" "$V/a" "${LIVE[a]}" s1 C1
check_volume "b after the group snapshot" "$V/b" "${LIVE[b]}" C1
check_volume "c after the group snapshot" "$V/c" "${LIVE[c]}" C1

# ---- group snapshot refusals: nothing created, nothing left on the share ----

check_errno "mkdir of an existing group snapshot: EEXIST" EEXIST mkdir "$C"
mkdir "$V/b/snapshots/X"
before=$(snaps_of a b c)
state=$(share_state)
check_errno "a member already has a snapshot named X: EEXIST" EEXIST mkdir "$G/cgsnapshots/X"
check_eq "nothing created: cgsnapshots/, the members' snapshots, the share" "C1|$before|$state" \
	"$(lsw "$G/cgsnapshots")|$(snaps_of a b c)|$(share_state)"
check "the single snapshot X is deleted" rmdir_snap "$V/b/snapshots/X"
before=$(snaps_of a b c)
state=$(share_state)
setfattr -n user.status -v error "$V/b"
check_errno "a member in error: EBUSY" EBUSY mkdir "$G/cgsnapshots/C2"
check_eq "nothing created: cgsnapshots/, the members' snapshots, the share" "C1|$before|$state" \
	"$(lsw "$G/cgsnapshots")|$(snaps_of a b c)|$(share_state)"
setfattr -n user.status -v available "$V/b"
# A running QEMU holds the last member's active file (as in safety.sh).
hold_write_lock "$(xattr user.active_file "$V/c")"
check_errno "a member whose active file QEMU holds: EBUSY" EBUSY mkdir "$G/cgsnapshots/C2"
release_write_lock
check_eq "nothing created: no overlay left on the share for the other members" "C1|$before|$state" \
	"$(lsw "$G/cgsnapshots")|$(snaps_of a b c)|$(share_state)"
check_errno "a member snapshot deleted alone: EBUSY" EBUSY rmdir "$V/a/snapshots/C1"
check_errno "force-deleted alone: EBUSY" EBUSY setfattr -n user.force_delete -v 1 "$V/b/snapshots/C1"
check_eq "the member snapshots stay, available" "available available" \
	"$(xattr user.status "$V/a/snapshots/C1") $(xattr user.status "$V/b/snapshots/C1")"
check_eq "the share is unchanged by the refused deletes" "$state" "$(share_state)"

# ---- the group snapshot's attributes ----

check "set user.description of a group snapshot" setfattr -n user.description -v "before upgrade" "$C"
check_eq "user.description and info.json show it" "before upgrade|before upgrade" \
	"$(xattr user.description "$C")|$(jq -r .cgsnapshot.description "$C/info.json" 2>&1)"
check_errno "a 256-byte description: E2BIG" E2BIG setfattr -n user.description -v "$c256" "$C"
for ro in user.id user.created_at user.project_id user.consistency_group_id user.json; do
	check_errno "$ro of a group snapshot is read-only: EPERM" EPERM setfattr -n "$ro" -v x "$C"
done
check_errno "reset-state of a group snapshot to an unknown status: EINVAL" EINVAL \
	setfattr -n user.status -v broken "$C"
for st in creating deleting error error_deleting available; do
	setfattr -n user.status -v $st "$C" 2>/dev/null
	check_eq "reset-state of a group snapshot to $st" "$st $st" \
		"$(xattr user.status "$C") $(jq -r .cgsnapshot.status "$C/info.json" 2>&1)"
done

# ---- remount ----

group_state() {
	(cd "$MNT" && find tenants/acme -mindepth 1 | sort | while read -r p; do
		if [ -L "$p" ]; then
			echo "$p -> $(readlink "$p")"
		else
			stat -c '%n %i %u %g %a %F %s' "$p"
		fi
		getfattr --absolute-names -d -m '^user\.' "$p" 2>/dev/null | grep -v '^# file'
	done
	ls -l by-id | awk '{print $9, $11}' | sort
	cat tenants/acme/consistencygroups/G/info.json tenants/acme/consistencygroups/G/cgsnapshots/C1/info.json)
}
before=$(group_state)
unmount_snapfs
mount_snapfs "admin_group=$ADMINS" || exit 1
check_eq "groups, members, group snapshots, attributes, info.json, by-id survive a remount" "$before" "$(group_state)"
check_eq "C1's member snapshots show the same bytes after the remount" \
	"${EXP[a/C1]} ${EXP[b/C1]} ${EXP[c/C1]}" \
	"$(image_sum "$V/a/snapshots/C1/disk.raw") $(image_sum "$V/b/snapshots/C1/disk.raw") $(image_sum "$V/c/snapshots/C1/disk.raw")"

# ---- a second group snapshot ----

ref_keep c C2
check "mkdir cgsnapshots/C2" mkdir "$G/cgsnapshots/C2"
for v in a b c; do EXP[$v/C2]=$(snap_expect "$V/$v" C2); done
check_eq "C2's member snapshots are the volumes at its mkdir" "${LIVE[a]} ${LIVE[b]} ${LIVE[c]}" \
	"$(image_sum "$V/a/snapshots/C2/disk.raw") $(image_sum "$V/b/snapshots/C2/disk.raw") $(image_sum "$V/c/snapshots/C2/disk.raw")"
check "c/snapshots/C2/disk.raw is, byte for byte, what the hypervisor had written to c" \
	same_bytes "$V/c/snapshots/C2/disk.raw" c@C2
check_eq "C1 and C2 have different ids; cgsnapshots/ lists both" "2 C1 C2" \
	"$(printf '%s\n' "$cid" "$(xattr user.id "$G/cgsnapshots/C2")" | sort -u | wc -l) $(lsw "$G/cgsnapshots")"
hvr "$V/a" "write -P 0xa6 3M 1M"
hvr "$V/b" "write -P 0xb5 0 64k"
hvr "$V/c" "write -z 512k 64k" "write -P 0xc5 5M 4k"
for v in a b c; do LIVE[$v]=$(live_sum "$V/$v"); done

# ---- create from a group snapshot ----

mkdir "$CG/copy"
check "user.source of an empty group: full copies of group snapshot C1" \
	setfattr -n user.source -v consistencygroups/G/cgsnapshots/C1 "$CG/copy"
copy_id=$(xattr user.id "$CG/copy")
check_eq "the group copy has new members copy-a copy-b copy-c" "copy-a copy-b copy-c" "$(lsw "$CG/copy/volumes")"
check_eq "their links are ../../../volumes/copy-<volume>" "../../../volumes/copy-a" "$(readlink "$CG/copy/volumes/copy-a" 2>&1)"
want='' got=''
for v in a b c; do
	want+="copy-$v:available:1:$copy_id:$copy_id:: "
	got+="copy-$v:$(xattr user.status "$V/copy-$v"):$(xattr user.size "$V/copy-$v"):$(xattr user.consistency_group_id "$V/copy-$v"):$(jq -r .volume.consistencygroup_id "$V/copy-$v/info.json" 2>&1):$(backing_of "$(xattr user.active_file "$V/copy-$v")"):$(lsw "$V/copy-$v/snapshots") "
done
check_eq "each is available, 1 GiB, in group copy, a file with no backing file, no snapshot" "$want" "$got"
check_eq "each copy's content is its source's C1 member snapshot" "${EXP[a/C1]} ${EXP[b/C1]} ${EXP[c/C1]}" \
	"$(live_sum "$V/copy-a") $(live_sum "$V/copy-b") $(live_sum "$V/copy-c")"
check "copy-b is, byte for byte, what the hypervisor had written to b before C1" \
	raw_same_bytes "$(xattr user.active_file "$V/copy-b")" b@C1
hvr "$V/copy-a" "write -P 0xee 0 8M"
check_eq "writes to a copy do not change its source's snapshot" "${EXP[a/C1]}" \
	"$(image_sum "$V/a/snapshots/C1/disk.raw")"
check_errno "user.source of a group with members: ENOTEMPTY" ENOTEMPTY \
	setfattr -n user.source -v consistencygroups/G/cgsnapshots/C1 "$CG/copy"

mkdir "$CG/now"
vols=$(lsw "$V")
state=$(share_state)
for src in consistencygroups/nope/cgsnapshots/C1 consistencygroups/G/cgsnapshots/nope \
	consistencygroups/nope volumes/a consistencygroups/G/cgsnapshots/C1/a \
	"../other/consistencygroups/G" consistencygroups ""; do
	check_errno "user.source '$src': EINVAL" EINVAL setfattr -n user.source -v "$src" "$CG/now"
done
mkdir "$V/now-b"
check_errno "a volume now-b exists already: EEXIST" EEXIST \
	setfattr -n user.source -v consistencygroups/G/cgsnapshots/C1 "$CG/now"
rmdir "$V/now-b"
setfattr -n user.status -v error "$V/b"
check_errno "user.source consistencygroups/G with a member in error: EBUSY" EBUSY \
	setfattr -n user.source -v consistencygroups/G "$CG/now"
setfattr -n user.status -v available "$V/b"
check_eq "the refusals created no volume and no file; the group stays empty" "$vols|$state|" \
	"$(lsw "$V")|$(share_state)|$(lsw "$CG/now/volumes")"
check "user.source consistencygroups/G copies the members' current content" \
	setfattr -n user.source -v consistencygroups/G "$CG/now"
check_eq "members now-a now-b now-c, available" "now-a now-b now-c available available available" \
	"$(lsw "$CG/now/volumes") $(xattr user.status "$V/now-a") $(xattr user.status "$V/now-b") $(xattr user.status "$V/now-c")"
check_eq "each is its source as it is now" "${LIVE[a]} ${LIVE[b]} ${LIVE[c]}" \
	"$(live_sum "$V/now-a") $(live_sum "$V/now-b") $(live_sum "$V/now-c")"
check_eq "the sources stay in G" "$gid $gid $gid" \
	"$(xattr user.consistency_group_id "$V/a") $(xattr user.consistency_group_id "$V/b") $(xattr user.consistency_group_id "$V/c")"
# (last, on a group of its own: the value is relative to the tenant directory)
mkdir "$CG/abs"
check_errno "user.source '/consistencygroups/G' (absolute): EINVAL" EINVAL \
	setfattr -n user.source -v /consistencygroups/G "$CG/abs"
# The copies have their sources' size.
mkdir "$V/big" "$CG/big" "$CG/bigcopy"
setfattr -n user.size -v 2 "$V/big"
ln -s ../../../volumes/big "$CG/big/volumes/big"
check "user.source consistencygroups/big: a copy of a 2 GiB volume" \
	setfattr -n user.source -v consistencygroups/big "$CG/bigcopy"
check_eq "the copy is 2 GiB too" "2 $((2 * GIB))" \
	"$(xattr user.size "$V/bigcopy-big") $(qemu-img info --output=json "$SHARE/$(xattr user.active_file "$V/bigcopy-big")" 2>&1 | jq -r '.["virtual-size"]' 2>&1)"
check_share "after the copies"

# ---- delete group snapshots ----

check_errno "rmdir of a group with members and group snapshots: ENOTEMPTY" ENOTEMPTY rmdir "$G"
declare -A SIDC1
for v in a b c; do SIDC1[$v]=$(xattr user.id "$V/$v/snapshots/C1"); done
check "rmdir cgsnapshots/C1 deletes the group snapshot (C1 is the older)" retry_busy rmdir "$C"
check_errno "C1 is gone" ENOENT stat "$C"
check_errno "its by-id link is gone" ENOENT stat "$MNT/by-id/$cid"
check_eq "no member has a snapshot C1 any more; C2 and s1 stay" "a:C2,s1 b:C2 c:C2" "$(snaps_of a b c)"
check_eq "the member snapshots' overlays are gone" "" \
	"$(for v in a b c; do share_files | grep -F "${SIDC1[$v]:-none}"; done)"
check_volume "a after deleting C1" "$V/a" "${LIVE[a]}" s1 C2
check_volume "b after deleting C1" "$V/b" "${LIVE[b]}" C2
check_volume "c after deleting C1" "$V/c" "${LIVE[c]}" C2
check_eq "a copy made from C1 is unchanged" "${EXP[c/C1]}" "$(live_sum "$V/copy-c")"

check "mkdir cgsnapshots/C3" mkdir "$G/cgsnapshots/C3"
for st in deleting error_deleting creating; do
	setfattr -n user.status -v $st "$G/cgsnapshots/C3"
	check_errno "rmdir of a group snapshot in $st: EBUSY" EBUSY rmdir "$G/cgsnapshots/C3"
done
check_eq "it stays, with its member snapshots" "C2 C3|a:C2,C3,s1 b:C2,C3 c:C2,C3" \
	"$(lsw "$G/cgsnapshots")|$(snaps_of a b c)"
check "admin force-delete of the group snapshot in creating" \
	retry_busy setfattr -n user.force_delete -v 1 "$G/cgsnapshots/C3"
check_eq "C3 and its member snapshots are gone" "C2|a:C2,s1 b:C2 c:C2" "$(lsw "$G/cgsnapshots")|$(snaps_of a b c)"
setfattr -n user.status -v error "$G/cgsnapshots/C2"
check "rmdir of a group snapshot in error deletes it" retry_busy rmdir "$G/cgsnapshots/C2"
check_volume "a after deleting every group snapshot" "$V/a" "${LIVE[a]}" s1
check_volume "b after deleting every group snapshot" "$V/b" "${LIVE[b]}"
check_volume "c after deleting every group snapshot" "$V/c" "${LIVE[c]}"
check_eq "a's s1 is, byte for byte, still what it was" "" "$(same_bytes "$V/a/snapshots/s1/disk.raw" a@s1 2>&1)"

# ---- delete the group ----

check_errno "rmdir of a group with members: ENOTEMPTY" ENOTEMPTY rmdir "$G"
check "remove_volumes a,b,c" setfattr -n user.remove_volumes -v a,b,c "$G"
check "rmdir of the empty group" rmdir "$G"
check_errno "its by-id link is gone" ENOENT stat "$MNT/by-id/$gid"
check_errno "its former members are in no group" ENODATA getfattr --absolute-names -n user.consistency_group_id "$V/c"
check "a former member can be deleted" rmdir "$V/c"
check_share "at the end"
unmount_snapfs
finish
