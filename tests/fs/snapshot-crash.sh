#!/bin/bash
# Crash safety of snapshots: the daemon is killed (SIGKILL, through the
# fault-injection hook of a --enable-fault-injection build) at every step of
# snapshot create and delete; the next mount must finish or undo the create
# and always finish the delete, leaving no orphan overlay, a .info that agrees
# with the catalogue, qcow2 files that pass qemu-img check, and every other
# snapshot and the live image with the bytes they had before.
#
# Each scenario has its own 1 GiB volume, prepared in one mount: create steps
# on a volume with one snapshot, delete steps on a volume with three
# (s1 s2 s3, data written between them), deleting the newest (s3), a middle
# one (s2) or the oldest (s1, merged into the raw base); the rebase step only
# exists for a snapshot that is not the newest.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"

need_fault_injection
plan 208

V=$MNT/tenants/acme/volumes

# ---- helpers (as in snapshots.sh) ----

# check_volume DESC VOLDIR LIVE NAME... (oldest first): 8 checks of a volume
# and its snapshots against EXP[<volume name>/NAME] and LIVE.
declare -A EXP SID
EXP_BY_VOLUME=1 # EXP[<volume name>/<snapshot name>]

# check_share DESC: no file on the share outside the catalogued volumes'
# chains (base, overlays of their snapshots, .info), as by-id lists them.
check_share() {
	local known
	known=$(find "$MNT/by-id" -mindepth 1 -printf '%f %l\n' 2>/dev/null | awk '
		$2 !~ /\/snapshots\// { vol[$2] = $1; print "volume-" $1; print "volume-" $1 ".info"; next }
		{ snap[$1] = $2 }
		END { for (s in snap) { v = snap[s]; sub(/\/snapshots\/.*/, "", v); print "volume-" vol[v] "." s } }' | sort)
	check_eq "$1: no file on the share outside the catalogued chains" "" \
		"$(cd "$SHARE" && ls -A1 | sort | comm -23 - <(echo "$known"))"
}

# ---- setup: one volume per scenario ----

CREATE_STEPS="snapshot-create-recorded snapshot-create-overlay snapshot-create-info"
# step:snapshot deleted (s1 oldest, s2 middle, s3 newest)
DELETE_CASES="snapshot-delete-recorded:s2 snapshot-delete-recorded:s3
	snapshot-delete-commit:s2 snapshot-delete-commit:s3 snapshot-delete-commit:s1
	snapshot-delete-rebase:s2 snapshot-delete-rebase:s1
	snapshot-delete-info:s2 snapshot-delete-info:s3
	snapshot-delete-unlink:s2 snapshot-delete-unlink:s3"

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"

# Every volume of a kind gets the same writes, so the expected bytes of its
# snapshots (qemu-img's reading of each overlay's backing, taken from the
# first volume) are the same for all.
exp_c1='' live_c=''
for step in $CREATE_STEPS; do
	d=$V/${step#snapshot-}
	mkdir "$d"
	hv "$d" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
	mkdir "$d/snapshots/s1"
	hv "$d" "write -P 0xb1 1M 1M" "write -c -P 0xb2 4M 64k" "write -z 0 64k"
	[ -n "$exp_c1" ] || exp_c1=$(snap_expect "$d" s1)
	[ -n "$live_c" ] || live_c=$(live_sum "$d")
	EXP[$(basename "$d")/s1]=$exp_c1
done

exp_d1='' exp_d2='' exp_d3='' live_d=''
make_delete_volume() { # NAME
	local d=$V/$1 n
	mkdir "$d"
	hv "$d" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
	mkdir "$d/snapshots/s1"
	hv "$d" "write -P 0xb1 1M 1M" "write -c -P 0xb2 4M 64k" "write -z 0 64k" \
		"write -P 0xb3 $((END + 4096)) 4k"
	mkdir "$d/snapshots/s2"
	hv "$d" "write -P 0xc1 2M 64k" "discard 1M 64k" "write -P 0xc2 $((5 * MIB + 100)) 300"
	mkdir "$d/snapshots/s3"
	hv "$d" "write -P 0xd1 3M 128k" "write -z 2M 64k"
	[ -n "$exp_d1" ] || exp_d1=$(snap_expect "$d" s1)
	[ -n "$exp_d2" ] || exp_d2=$(snap_expect "$d" s2)
	[ -n "$exp_d3" ] || exp_d3=$(snap_expect "$d" s3)
	[ -n "$live_d" ] || live_d=$(live_sum "$d")
	EXP[$1/s1]=$exp_d1 EXP[$1/s2]=$exp_d2 EXP[$1/s3]=$exp_d3
	for n in s1 s2 s3; do SID[$1/$n]=$(xattr user.id "$d/snapshots/$n"); done
}
case_volume() { local v=${1#snapshot-}; echo "${v/:/-}"; } # step:target -> volume name
for c in $DELETE_CASES; do
	make_delete_volume "$(case_volume "$c")"
done
make_delete_volume force-commit-s2
setfattr -n user.status -v creating "$V/force-commit-s2/snapshots/s2"
unmount_snapfs

# ---- create ----

# outcome_ok VOLDIR: the snapshot "new" is either whole (an id, a by-id link)
# or not there at all (no by-id link to it).
outcome_ok() {
	local d=$1 sid
	if [ -e "$d/snapshots/new" ]; then
		sid=$(xattr user.id "$d/snapshots/new")
		[ -n "$sid" ] && [ "$(readlink "$MNT/by-id/$sid")" = "../tenants/acme/volumes/$(basename "$d")/snapshots/new" ]
	else
		! ls -l "$MNT/by-id" | grep -q "volumes/$(basename "$d")/snapshots/new"
	fi
}

for step in $CREATE_STEPS; do
	vol=${step#snapshot-}
	d=$V/$vol
	crash_during "$step" mkdir "$d/snapshots/new" || exit 1
	if [ -e "$d/snapshots/new" ]; then
		outcome=kept names="s1 new"
		EXP[$vol/new]=$live_c
	else
		outcome=undone names=s1
	fi
	check "$step: the snapshot is whole or gone ($outcome)" outcome_ok "$d"
	# shellcheck disable=SC2086
	check_volume "$step" "$d" "$live_c" $names
	check "$step: the volume takes a new snapshot after recovery" mkdir "$d/snapshots/after"
	check_share "$step"
	unmount_snapfs
done

# ---- delete ----

# delete_done VOLDIR NAME: the snapshot and its by-id link are gone.
delete_done() {
	local sid=${SID[$(basename "$1")/$2]-}
	[ ! -e "$1/snapshots/$2" ] && [ -n "$sid" ] && [ ! -L "$MNT/by-id/$sid" ]
}

run_delete_case() { # STEP TARGET VOLNAME CMD...
	local step=$1 target=$2 vol=$3 d=$V/$3 n names='' vid
	shift 3
	crash_during "$step" "$@" || exit 1
	vid=$(xattr user.id "$d")
	for n in s1 s2 s3; do [ $n = "$target" ] || names+=" $n"; done
	check "$vol: the delete of $target is finished" delete_done "$d" "$target"
	check "$vol: the overlay of $target is gone" test ! -e "$SHARE/volume-$vid.${SID[$vol/$target]-unknown}"
	# shellcheck disable=SC2086
	check_volume "$vol" "$d" "$live_d" $names
	check "$vol: the volume takes a new snapshot after recovery" mkdir "$d/snapshots/after"
	check_share "$vol"
	unmount_snapfs
}

for c in $DELETE_CASES; do
	step=${c%:*} target=${c#*:} vol=$(case_volume "$c")
	run_delete_case "$step" "$target" "$vol" rmdir "$V/$vol/snapshots/$target"
done
# force-delete (admin) of a middle snapshot in creating goes the same way.
run_delete_case snapshot-delete-commit s2 force-commit-s2 \
	setfattr -n user.force_delete -v 1 "$V/force-commit-s2/snapshots/s2"
finish
