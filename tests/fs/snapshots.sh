#!/bin/bash
# Volume snapshots (docs/snapfs.md sections 2-5, 13): mkdir makes the qcow2 overlay
# volume-<vid>.<sid> over the previously active file and records it in
# volume-<vid>.info; disk.raw shows the volume as it was at mkdir, whatever the
# hypervisor writes afterwards (plain, partial-cluster, zero, compressed
# writes, discards); cat, dd, cp --sparse=always and SEEK_DATA/SEEK_HOLE read
# it; info.json and user.* describe it; mv renames it; everything survives a
# remount; rmdir merges (newest: commit, active file goes back; middle:
# commit and rebase of the next overlay) leaving every other snapshot, the
# live image and the share consistent; the same over a qcow2 base volume.
#
# Volumes are 1 GiB and sparse; the hypervisor (qemu-io on the share) only
# writes in the first 8 MiB and the last MiB, and content is compared there
# (region_sum), plus one full-length comparison of a three-deep chain.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
plan 151


# ---- helpers (the hypervisor's view of the share, expectations) ----







# check_volume DESC VOLDIR LIVE NAME... (oldest first): 8 checks of a volume
# and its snapshots against the expectations EXP[NAME] and LIVE.
declare -A EXP

# ---- create ----

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
pid_acme=$(xattr user.id "$MNT/tenants/acme")
V=$MNT/tenants/acme/volumes
mkdir "$V/db"
D=$V/db
S=$D/snapshots
vid=$(xattr user.id "$D")
base=volume-$vid

check "the hypervisor writes to the raw base file" hv "$D" \
	"write -P 0xa1 0 4M" "write -P 0xa2 $END 64k" "write -P 0xa3 $((GIB - 65536)) 64k"
live_a=$(live_sum "$D")

check "mkdir snapshots/s1 creates a snapshot" mkdir "$S/s1"
sid1=$(xattr user.id "$S/s1")
ov1=volume-$vid.$sid1
check "user.id of the snapshot is a uuid" grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' <<<"$sid1"
check_eq "status available and progress 100% when mkdir returns" "available 100%" \
	"$(xattr user.status "$S/s1") $(xattr user.progress "$S/s1")"
check_eq "the volume's user.active_file is the new overlay volume-<vid>.<sid>" "$ov1" \
	"$(xattr user.active_file "$D")"
check_eq "the share holds the base, the overlay and .info" \
	"$(printf '%s\n' "$base" "$ov1" "$base.info" | sort)" "$(share_files)"
check_eq "the overlay is qcow2, backed by the base by relative name, format raw, same size" \
	"qcow2 $base raw $GIB" \
	"$(qemu-img info --output=json "$SHARE/$ov1" | jq -r '"\(.format) \(.["backing-filename"]) \(.["backing-filename-format"]) \(.["virtual-size"])"')"
check "qemu-img check passes on the overlay" qemu-img check -q "$SHARE/$ov1"
check_eq ".info maps active and the snapshot id to the overlay" \
	"$(jq -n -S -c --arg s "$sid1" --arg o "$ov1" '{active: $o, ($s): $o}')" \
	"$(jq -S -c . "$SHARE/$base.info" 2>&1)"
check_eq "the volume stays available" "available" "$(xattr user.status "$D")"
check_eq "a snapshot holds changes/, changes.json/, disk.raw and info.json" "changes changes.json disk.raw info.json" \
	"$(ls "$S/s1" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "disk.raw is a regular file of the volume's size" "regular file $GIB" \
	"$(stat -c '%F %s' "$S/s1/disk.raw" 2>&1)"
check "disk.raw has no write permission bits" sh -c "stat -c %A '$S/s1/disk.raw' | grep -q '^-[^w]*$'"
check_eq "by-id/<sid> links to the snapshot" "../tenants/acme/volumes/db/snapshots/s1" \
	"$(readlink "$MNT/by-id/$sid1")"
check "disk.raw is reachable through by-id" test -f "$MNT/by-id/$sid1/disk.raw"

EXP[s1]=$(snap_expect "$D" s1)
check_eq "the snapshot's data (its overlay's backing) is the volume at mkdir" "$live_a" "${EXP[s1]}"
check_eq "s1/disk.raw shows it" "${EXP[s1]}" "$(image_sum "$S/s1/disk.raw")"

# The snapshot's attributes and info.json.
check_eq "getfattr -d lists the snapshot's read-only attributes" \
	"user.created_at user.id user.json user.progress user.project_id user.size user.status user.volume_id" \
	"$(getfattr --absolute-names -d "$S/s1" 2>/dev/null | sed -n 's/^\(user\.[a-z_.]*\)=.*/\1/p' | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "user.size, user.volume_id, user.project_id" "1 $vid $pid_acme" \
	"$(xattr user.size "$S/s1") $(xattr user.volume_id "$S/s1") $(xattr user.project_id "$S/s1")"
created=$(xattr user.created_at "$S/s1")
iso_not_before() { # TIME EARLIER
	[[ $1 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2} ]] && [[ ! $1 < $2 ]]
}
check "user.created_at is an ISO 8601 time, not before the volume's ($created)" \
	iso_not_before "$created" "$(xattr user.created_at "$D")"
info=$(cat "$S/s1/info.json" 2>&1)
check "info.json is JSON" jq -e .snapshot <<<"$info"
check "info.json has every key of the API's snapshot" jq -e '.snapshot | has("id") and has("name")
	and has("description") and has("status") and has("size") and has("volume_id") and has("created_at")
	and has("metadata") and has("os-extended-snapshot-attributes:progress")
	and has("os-extended-snapshot-attributes:project_id")' <<<"$info"
check_eq "info.json: id, name, status, size, volume_id, progress, project_id" \
	"$sid1 s1 available 1 $vid 100% $pid_acme" \
	"$(jq -r '.snapshot | "\(.id) \(.name) \(.status) \(.size) \(.volume_id) \(.["os-extended-snapshot-attributes:progress"]) \(.["os-extended-snapshot-attributes:project_id"])"' <<<"$info" 2>&1)"
check_eq "info.json: description null, metadata {}, created_at as user.created_at" "null {} $created" \
	"$(jq -r -c '.snapshot | "\(.description) \(.metadata) \(.created_at)"' <<<"$info" 2>&1)"
check_eq "user.json equals info.json" "$(jq -S -c . <<<"$info" 2>&1)" \
	"$(xattr user.json "$S/s1" | jq -S -c . 2>&1)"
check_eq "stat size of info.json equals what cat reads" "$(printf '%s\n' "$info" | wc -c)" \
	"$(stat -c %s "$S/s1/info.json" 2>&1)"

# ---- the hypervisor writes on; more snapshots ----

check "the hypervisor writes to the overlay (plain, partial, zero, compressed, discard)" hv "$D" \
	"write -P 0xb1 1M 1M" "write -P 0xb2 $((3 * MIB + 512)) 1000" "write -z 512k 128k" \
	"write -c -P 0xb3 4M 64k" "write -c -P 0xb4 5M 64k" "discard 0 64k" \
	"write -P 0xb5 $((END + 131072)) 4k"
check_eq "s1/disk.raw is unchanged by those writes" "${EXP[s1]}" "$(image_sum "$S/s1/disk.raw")"
live_b=$(live_sum "$D")
check "the live image changed (sanity)" test "$live_b" != "$live_a"

check "mkdir snapshots/s2" mkdir "$S/s2"
sid2=$(xattr user.id "$S/s2")
ov2=volume-$vid.$sid2
check_eq "s2's overlay is backed by s1's overlay (qcow2) and is now active" "$ov1 qcow2 $ov2" \
	"$(qemu-img info --output=json "$SHARE/$ov2" | jq -r '"\(.["backing-filename"]) \(.["backing-filename-format"])"') $(xattr user.active_file "$D")"
EXP[s2]=$(snap_expect "$D" s2)
check_eq "s2's data is the volume at its mkdir" "$live_b" "${EXP[s2]}"
check_eq "s2/disk.raw shows it (two-file chain, compressed and zero clusters)" "${EXP[s2]}" \
	"$(image_sum "$S/s2/disk.raw")"
check "the ids of s1 and s2 differ" test "$sid1" != "$sid2"

check "the hypervisor writes to s2's overlay (into compressed clusters, across clusters)" hv "$D" \
	"write -P 0xc1 $((5 * MIB + 4096)) 4096" "write -z 1M 64k" "write -P 0xc2 $((2 * MIB - 512)) 1024" \
	"discard 4M 64k" "write -c -P 0xc3 6M 128k" "write -z 7M 64k"
check "mkdir snapshots/s3" mkdir "$S/s3"
sid3=$(xattr user.id "$S/s3")
EXP[s3]=$(snap_expect "$D" s3)
to_raw "$(backing_of "volume-$vid.$sid3")" "$WORK/s3.raw"
check "the hypervisor writes to s3's overlay" hv "$D" \
	"write -P 0xd1 0 128k" "write -P 0xd2 $((6 * MIB + 100)) 200" "write -P 0xd3 $((GIB - 4096)) 4096"
live=$(live_sum "$D")
check_eq "s1 and s2 are unchanged by later snapshots and writes" "${EXP[s1]} ${EXP[s2]}" \
	"$(image_sum "$S/s1/disk.raw") $(image_sum "$S/s2/disk.raw")"
check_eq "ls snapshots/" "s1 s2 s3" "$(ls "$S" 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# ---- reading s3 (a three-file chain) every way backups do ----

check "cat of the whole s3/disk.raw equals qemu-img convert of its chain" \
	sh -c "cat '$S/s3/disk.raw' | cmp - '$WORK/s3.raw'"
check_eq "dd bs=1M of the written regions" "${EXP[s3]}" "$(image_sum "$S/s3/disk.raw")"
slice_sum() { # FILE: sha256 of an unaligned slice across clusters (4 KiB reads)
	{ dd if="$1" iflag=skip_bytes,count_bytes skip=$((2 * MIB - 700)) count=$((3 * MIB + 1500)) \
		bs=4k status=none || echo "cannot read $1"; } 2>/dev/null | sha256sum | cut -d' ' -f1
}
check_eq "dd at unaligned offsets across clusters (4 KiB blocks)" \
	"$(slice_sum "$WORK/s3.raw")" "$(slice_sum "$S/s3/disk.raw")"
check_eq "a read at the end returns only up to the size" "4096 0" \
	"$(dd if="$S/s3/disk.raw" iflag=skip_bytes skip=$((GIB - 4096)) bs=64k status=none | wc -c) $(dd if="$S/s3/disk.raw" bs=1M skip=1024 status=none | wc -c)"
fewer_blocks() { local b; b=$(stat -c '%b * %B' "$1") && [ $((b)) -lt "$(stat -c %s "$1")" ]; }
check "disk.raw reports fewer blocks than its size (so cp treats it as sparse)" \
	fewer_blocks "$S/s3/disk.raw"

seek_at() { # FILE OFFSET data|hole: the offset lseek returns, or ENXIO
	perl -e 'open(my $f, "<", $ARGV[0]) or die "open: $!\n";
		my $r = sysseek($f, $ARGV[1], $ARGV[2] eq "data" ? 3 : 4);
		print defined $r ? $r + 0 : ($!{ENXIO} ? "ENXIO" : "error: $!")' "$@" 2>&1
}
d0=$(seek_at "$S/s3/disk.raw" 0 data)
h0=$(seek_at "$S/s3/disk.raw" "${d0//[^0-9]/0}" hole)
check "SEEK_DATA finds data in the first 8 MiB, SEEK_HOLE a hole after it ($d0, $h0)" \
	sh -c "[ '$d0' -lt $((8 * MIB)) ] && [ '$h0' -gt '$d0' ] && [ '$h0' -lt $GIB ]"
d1=$(seek_at "$S/s3/disk.raw" $((16 * MIB)) data)
check "SEEK_DATA from 16 MiB skips the hole to the data in the last MiB ($d1)" \
	sh -c "[ '$d1' -ge $((16 * MIB)) ] && [ '$d1' -le $END ]"
check_eq "SEEK_HOLE at the last byte gives the size; SEEK_DATA at the size gives ENXIO" "$GIB ENXIO" \
	"$(seek_at "$S/s3/disk.raw" $((GIB - 1)) hole) $(seek_at "$S/s3/disk.raw" $GIB data)"

check "cp --sparse=always copies s3/disk.raw" cp --sparse=always "$S/s3/disk.raw" "$WORK/copy.raw"
check_eq "the copy has the snapshot's content" "${EXP[s3]}" "$(image_sum "$WORK/copy.raw")"
check "the copy is sparse: under 64 MiB allocated for a 1 GiB image" \
	test "$(du -k "$WORK/copy.raw" | cut -f1)" -lt 65536
rm -f "$WORK/copy.raw" "$WORK/s3.raw"
check_volume "three snapshots" "$D" "$live" s1 s2 s3

# ---- update: description, metadata, rename ----

check "set user.description of a snapshot" setfattr -n user.description -v "before upgrade" "$S/s2"
check "set user.meta.app of a snapshot" setfattr -n user.meta.app -v erp "$S/s2"
check_eq "info.json shows description and metadata" 'before upgrade {"app":"erp"}' \
	"$(jq -r -c '.snapshot | "\(.description) \(.metadata)"' "$S/s2/info.json" 2>&1)"
check_eq "user.json follows" "$(jq -S -c . "$S/s2/info.json" 2>&1)" "$(xattr user.json "$S/s2" | jq -S -c . 2>&1)"

info_before=$(jq -S -c . "$SHARE/$base.info" 2>&1)
check "mv snapshots/s1 snapshots/first renames" mv "$S/s1" "$S/first"
EXP[first]=${EXP[s1]}
check_eq "same id after rename; info.json has the new name" "$sid1 first" \
	"$(xattr user.id "$S/first") $(jq -r .snapshot.name "$S/first/info.json" 2>&1)"
check_eq "by-id follows the rename" "../tenants/acme/volumes/db/snapshots/first" "$(readlink "$MNT/by-id/$sid1")"
check_eq "the share is untouched by a rename" "$info_before" "$(jq -S -c . "$SHARE/$base.info" 2>&1)"
check_errno "the old name is gone" ENOENT stat "$S/s1"
check "renaming the volume keeps its snapshots" mv "$D" "$V/orders"
D=$V/orders
S=$D/snapshots
check_eq "by-id of a snapshot follows the volume's rename" "../tenants/acme/volumes/orders/snapshots/s2" \
	"$(readlink "$MNT/by-id/$sid2")"

# ---- remount ----

check "admin reset-state of s3 to error (kept across the remount)" setfattr -n user.status -v error "$S/s3"
snap_state() {
	(cd "$MNT" && find tenants -mindepth 1 | sort | while read -r p; do
		stat -c '%n %i %u %g %a %F %s' "$p"
		getfattr --absolute-names -d -m '^user\.' "$p" 2>/dev/null | grep -v '^# file'
	done
	ls -l by-id | awk '{print $9, $11}' | sort
	for f in tenants/acme/volumes/orders/snapshots/*/info.json; do cat "$f"; done)
}
before=$(snap_state)
unmount_snapfs
mount_snapfs || exit 1
check_eq "names, ids, inodes, statuses, attributes, info.json, by-id survive a remount" "$before" "$(snap_state)"
check_eq "disk.raw of every snapshot is the same after the remount" "${EXP[first]} ${EXP[s2]} ${EXP[s3]}" \
	"$(image_sum "$S/first/disk.raw") $(image_sum "$S/s2/disk.raw") $(image_sum "$S/s3/disk.raw")"
check "reset s3 back to available" setfattr -n user.status -v available "$S/s3"
check_volume "after remount" "$D" "$live" first s2 s3

# ---- delete: middle, newest, oldest, last ----

check "rmdir of the middle snapshot s2" rmdir_snap "$S/s2"
check_errno "s2 is gone" ENOENT stat "$S/s2"
check "its overlay file is gone" test ! -e "$SHARE/$ov2"
check_errno "its by-id link is gone" ENOENT stat "$MNT/by-id/$sid2"
check_volume "after deleting the middle snapshot" "$D" "$live" first s3

check "rmdir of the newest snapshot s3" rmdir_snap "$S/s3"
check_eq "the active file is s1's overlay again" "$ov1" "$(xattr user.active_file "$D")"
check_volume "after deleting the newest snapshot" "$D" "$live" first

check "the hypervisor writes to the active overlay again" hv "$D" \
	"write -P 0xe1 3M 64k" "write -c -P 0xe2 7M 64k"
live_e=$(live_sum "$D")
check "mkdir snapshots/s4 after deletes" mkdir "$S/s4"
EXP[s4]=$(snap_expect "$D" s4)
check_eq "s4's data is the volume at its mkdir" "$live_e" "${EXP[s4]}"
check "the hypervisor writes to s4's overlay" hv "$D" "write -P 0xf1 4M 4096" "write -z 0 64k"
live=$(live_sum "$D")

check "rmdir of the oldest snapshot (commit into the raw base, rebase of s4's overlay)" rmdir_snap "$S/first"
check "s1's overlay file is gone" test ! -e "$SHARE/$ov1"
check_volume "after deleting the oldest snapshot" "$D" "$live" s4

check "rmdir of the last snapshot" rmdir_snap "$S/s4"
check_eq "the active file is the base again" "$base" "$(xattr user.active_file "$D")"
check_volume "after deleting every snapshot" "$D" "$live"
check "the volume can be deleted once it has no snapshots" rmdir "$D"
check_eq "no file of the volume is left on the share (.info included)" "" "$(cd "$SHARE" && ls -A)"
unmount_snapfs

# ---- a qcow2 base volume ----

mount_snapfs "volume_format=qcow2" || exit 1
Q=$V/q
mkdir "$Q"
check "the hypervisor writes to a qcow2 base (with a compressed cluster)" hv "$Q" \
	"write -P 0x51 0 2M" "write -c -P 0x52 2M 64k" "write -P 0x53 $END 64k"
check "mkdir of a snapshot of a qcow2 volume" mkdir "$Q/snapshots/q1"
EXP[q1]=$(snap_expect "$Q" q1)
hv "$Q" "write -P 0x61 1M 64k" "write -z 2M 64k" "write -P 0x62 $((GIB - 512)) 512"
mkdir "$Q/snapshots/q2"
EXP[q2]=$(snap_expect "$Q" q2)
hv "$Q" "write -P 0x71 512k 4k"
live=$(live_sum "$Q")
check_volume "qcow2 volume, two snapshots" "$Q" "$live" q1 q2
check "rmdir of the older snapshot (commit into the qcow2 base)" rmdir_snap "$Q/snapshots/q1"
check_volume "qcow2 volume, after deleting the older snapshot" "$Q" "$live" q2
unmount_snapfs
finish
