#!/bin/bash
# info.json as the block-storage API returns it: every volume's passes
# Tempest's volumes.show_volume schema and each v3 microversion variant of it
# that Tempest has, every snapshot's snapshots.show_snapshot, validated as
# Tempest's rest_client does (api_schema.py): volumes plain, described, with
# metadata, qcow2, extended, in error, members of a group, copies made by a
# group fill, imported from Cinder's files, and attached to a QEMU (a
# qemu-storage-daemon's QMP socket); snapshots plain, described, members of a
# group snapshot, imported. The fields snapfs fills in: user_id (the owner's
# uid), volume_type __DEFAULT__, links to by-id, the attachment (id,
# attachment_id, device; no QMP socket), a group snapshot's
# consistencygroup_id. Old shapes fail the schemas (the check is not void).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C
PY=$(command -v /usr/bin/python3 || command -v python3)
CHECKER=$(cd "$(dirname "$0")" && pwd)/api_schema.py
if ! schemas=$("$PY" "$CHECKER" --list 2>&1); then
	echo "1..0 # SKIP Tempest's schemas are not installed (tempest, python3-jsonschema): $schemas"
	exit 0
fi
HAVE_QSD=
if command -v qemu-storage-daemon >/dev/null 2>&1; then
	. "$(dirname "$0")/qsdlib.sh"
	HAVE_QSD=1
fi
plan 20

T=$MNT/tenants/acme
V=$T/volumes
CG=$T/consistencygroups
VOL_SCHEMAS=$(grep -c show_volume <<<"$schemas")
SNAP_SCHEMAS=$(grep -c show_snapshot <<<"$schemas")
check "Tempest has show_volume with v3 variants and show_snapshot ($VOL_SCHEMAS, $SNAP_SCHEMAS)" \
	test "$VOL_SCHEMAS" -ge 2 -a "$SNAP_SCHEMAS" -ge 1

# validate KIND FILE...: every FILE passes every schema of KIND; prints the
# failures.
validate() { "$PY" "$CHECKER" "$@" | grep -v '^ok ' || true; }
# all_pass DESC KIND COUNT FILE...: COUNT files, each passes each schema.
all_pass() {
	local desc=$1 kind=$2 count=$3 out n
	shift 3
	n=$#
	out=$(validate "$kind" "$@")
	if [ "$n" = "$count" ] && [ -z "$out" ]; then
		ok "$desc ($n files)"
	else
		not_ok "$desc ($n files, expected $count)"
		echo "$out" | sed 's/^/#   /'
	fi
}

# ---- Cinder's files, imported at mount ----
VA=$(cat /proc/sys/kernel/random/uuid) SA=$(cat /proc/sys/kernel/random/uuid)
qemu-img create -q -f raw "$SHARE/volume-$VA" 1G
qemu-img create -q -f qcow2 -o "backing_file=volume-$VA,backing_fmt=raw" "$SHARE/volume-$VA.$SA" 1G
echo "{\"active\": \"volume-$VA.$SA\", \"$SA\": \"volume-$VA.$SA\"}" >"$SHARE/volume-$VA.info"

mount_snapfs "admin_group=$ADMINS,import=acme" || exit 1
chgrp "$TEAM" "$T"
chmod 2770 "$T"
mkdir "$V/plain" "$V/described" "$V/big" "$V/broken" "$V/m1" "$V/m2" "$CG/g" "$CG/copy"
as "$ALICE" "$TEAM" -- mkdir "$V/alices"
setfattr -n user.description -v "a described volume" "$V/described"
setfattr -n user.meta.purpose -v "tests" "$V/described"
setfattr -n user.size -v 3 "$V/big"
setfattr -n user.status -v error "$V/broken"
mkdir "$V/plain/snapshots/s1" "$V/described/snapshots/s2"
setfattr -n user.description -v "a described snapshot" "$V/described/snapshots/s2"
setfattr -n user.meta.k -v v "$V/described/snapshots/s2"
setfattr -n user.add_volumes -v m1,m2 "$CG/g"
mkdir "$CG/g/cgsnapshots/c1"
setfattr -n user.source -v consistencygroups/g/cgsnapshots/c1 "$CG/copy"
unmount_snapfs
mount_snapfs "admin_group=$ADMINS,volume_format=qcow2" || exit 1
mkdir "$V/q"
mkdir "$V/q/snapshots/sq"

vols=("$V"/*/info.json)
snaps=("$V"/*/snapshots/*/info.json)
# plain described big broken m1 m2 copy-m1 copy-m2 alices q and the imported one
all_pass "every volume's info.json passes every show_volume schema" volume 11 "${vols[@]}"
# s1 s2 sq, c1 of m1 and m2, the imported one
all_pass "every snapshot's info.json passes show_snapshot" snapshot 6 "${snaps[@]}"

uid_form() { printf '00000000-0000-0000-0000-%012u' "$1"; }
check_eq "user_id: the owner's uid as a UUID (root's, alice's)" "$(uid_form 0) $(uid_form "$ALICE")" \
	"$(jq -r .volume.user_id "$V/plain/info.json") $(jq -r .volume.user_id "$V/alices/info.json")"
check_eq "volume_type is Cinder's default type" "__DEFAULT__" "$(jq -r .volume.volume_type "$V/q/info.json")"
check_eq "links: self and bookmark, the by-id entry" \
	"self snapfs:by-id/$(xattr user.id "$V/plain") bookmark snapfs:by-id/$(xattr user.id "$V/plain")" \
	"$(jq -r '.volume.links[] | "\(.rel) \(.href)"' "$V/plain/info.json" | tr '\n' ' ' | sed 's/ $//')"
check "the by-id link of a volume's links exists" test -d "$MNT/$(jq -r '.volume.links[0].href' "$V/plain/info.json" | sed 's/^snapfs://')"
check_eq "replication_status disabled, consistencygroup_id the group's for a member" \
	"disabled $(xattr user.id "$CG/g")" "$(jq -r '.volume | "\(.replication_status) \(.consistencygroup_id)"' "$V/m1/info.json")"
C1=$CG/g/cgsnapshots/c1/info.json
check_eq "a group snapshot: consistencygroup_id as Cinder spells it, consistency_group_id beside it" \
	"$(xattr user.id "$CG/g") $(xattr user.id "$CG/g")" \
	"$(jq -r '.cgsnapshot | "\(.consistencygroup_id) \(.consistency_group_id)"' "$C1")"

# The checker refuses what is not the API's: each of these shapes fails.
jq '.volume.attachments = [{"volume_id": .volume.id, "device": "n0", "qmp_socket": "/x", "server_id": null, "host_name": null}]' \
	"$V/plain/info.json" >"$WORK/old-attach.json"
jq 'del(.volume.links)' "$V/plain/info.json" >"$WORK/no-links.json"
jq 'del(.volume.user_id)' "$V/plain/info.json" >"$WORK/bad-user.json"
jq '.snapshot.extra = 1' "$V/plain/snapshots/s1/info.json" >"$WORK/extra-key.json"
check_eq "the old attachment (qmp_socket, no id), no links, no user_id: each fails every schema" \
	"$((3 * VOL_SCHEMAS))" "$(validate volume "$WORK/old-attach.json" "$WORK/no-links.json" "$WORK/bad-user.json" | grep -c '^FAIL')"
check_eq "a snapshot with a key the API does not have fails" "$SNAP_SCHEMAS" \
	"$(validate snapshot "$WORK/extra-key.json" | grep -c '^FAIL')"
unmount_snapfs

# ---- attached to a QEMU ----
if [ -z "$HAVE_QSD" ]; then
	for i in $(seq 1 7); do ok "# SKIP no qemu-storage-daemon for an attached volume"; done
	finish
fi
mount_snapfs "admin_group=$ADMINS" || exit 1
qsd_start h1 "$V/plain:plain0" || { echo "Bail out! qemu-storage-daemon"; exit 1; }
SOCK=$(qsd_sock h1)
check "attach plain to QEMU's node plain0" setfattr -n user.attach -v "$SOCK#plain0" "$V/plain"
mkdir "$V/plain/snapshots/online"
all_pass "the attached volume passes every show_volume schema" volume 1 "$V/plain/info.json"
all_pass "its snapshot taken through QEMU passes show_snapshot" snapshot 1 "$V/plain/snapshots/online/info.json"
vid=$(xattr user.id "$V/plain")
node=$(xattr user.attach "$V/plain")
check_eq "one attachment: id and volume_id the volume's, device the node QEMU runs it on, no QMP socket" \
	"$vid $vid ${node##*#} null null null" \
	"$(jq -r '.volume.attachments[] | "\(.id) \(.volume_id) \(.device) \(.server_id) \(.host_name) \(.qmp_socket)"' "$V/plain/info.json")"
aid=$(jq -r '.volume.attachments[0].attachment_id' "$V/plain/info.json")
check "attachment_id is a UUID, the same on every read and after another snapshot" \
	sh -c "echo '$aid' | grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' && mkdir '$V/plain/snapshots/online2' && test \"\$(jq -r '.volume.attachments[0].attachment_id' '$V/plain/info.json')\" = '$aid'"
setfattr -x user.attach "$V/plain"
check_eq "detached: no attachment" "0" "$(jq '.volume.attachments | length' "$V/plain/info.json")"
unmount_snapfs
finish
