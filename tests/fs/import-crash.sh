#!/bin/bash
# Crash safety of snapshot manage and unmanage: the daemon is killed at each
# recorded step (fault injection); the next mount finishes or undoes the
# operation. An undone manage leaves the file (snapfs did not make it) and it
# is manageable again; a finished one is an available snapshot named in
# .info. An unmanage always finishes: the snapshot is gone from the tree and
# .info, its file stays and the other snapshots still read. A reconcile
# killed before its transaction commits leaves the catalogue as it was.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"

need_fault_injection
for tool in qemu-img qemu-io jq sha256sum; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP no $tool"
		exit 0
	fi
done
plan 43

SIZE=64M
S=11111111-1111-4111-8111-11111111111
X=22222222-2222-4222-8222-22222222222
TEN=$MNT/tenants/cinder

# One volume per scenario (n = 1..4): a raw base, snapshot $S$n in .info
# (active), a stray overlay $X$n over it.
vid() { echo "aaaaaaaa-0000-4000-8000-00000000000$1"; }
build() {
	local v=$(vid $1) s=$S$1 x=$X$1
	qemu-img create -q -f raw "$SHARE/volume-$v" "$SIZE"
	qemu-io -f raw -c "write -P 0x1$1 0 1M" "$SHARE/volume-$v" >/dev/null
	qemu-img create -q -f qcow2 -o "backing_file=$SHARE/volume-$v,backing_fmt=raw" \
		"$SHARE/volume-$v.$s" "$SIZE"
	(cd "$SHARE" && qemu-img rebase -q -u -b "volume-$v" -F raw "volume-$v.$s")
	qemu-io -f qcow2 -c "write -P 0x2$1 1M 1M" "$SHARE/volume-$v.$s" >/dev/null
	echo "{\"active\": \"volume-$v.$s\", \"$s\": \"volume-$v.$s\"}" >"$SHARE/volume-$v.info"
	qemu-img create -q -f qcow2 -o "backing_file=$SHARE/volume-$v.$s,backing_fmt=qcow2" \
		"$SHARE/volume-$v.$x" "$SIZE"
	(cd "$SHARE" && qemu-img rebase -q -u -b "volume-$v.$s" -F qcow2 "volume-$v.$x")
	qemu-io -f qcow2 -c "write -P 0x3$1 2M 1M" "$SHARE/volume-$v.$x" >/dev/null
}

whole_sum() { sha256sum <"$1" | cut -d' ' -f1; }
chain_sum() {
	to_raw "$1" "$WORK/conv.raw" && whole_sum "$WORK/conv.raw"
	rm -f "$WORK/conv.raw"
}

for n in 1 2 3 4; do build $n; done
mount_snapfs import=cinder || { echo "Bail out! mount failed"; exit 1; }
check_eq "four volumes imported" 4 "$(ls "$TEN/volumes" | wc -l)"
unmount_snapfs

# manage, killed after the record: undone, the file stays, manageable again
v=$(vid 1)
crash_during snapshot-manage-recorded setfattr -n user.manage -v "volume-$v.${X}1" \
	"$TEN/volumes/$v/snapshots"
check_eq "manage undone: no snapshot ${X}1" "${S}1" "$(ls "$TEN/volumes/$v/snapshots")"
check "manage undone: the file stays" test -f "$SHARE/volume-$v.${X}1"
check_eq "manage undone: .info as before" "volume-$v.${S}1 null" \
	"$(jq -r --arg k "${X}1" '.active + " " + (.[$k] // "null")' "$SHARE/volume-$v.info")"
check_eq "manage undone: the active file as before" "volume-$v.${S}1" \
	"$(xattr user.active_file "$TEN/volumes/$v")"
check_eq "manage undone: the file is manageable, safe" true \
	"$(xattr user.safe_to_manage "$TEN/manageable/volume-$v.${X}1")"
check "manage undone: a manage now succeeds" setfattr -n user.manage -v "volume-$v.${X}1" \
	"$TEN/volumes/$v/snapshots"
check_eq "... and the snapshot reads its chain" "$(chain_sum "volume-$v.${S}1")" \
	"$(whole_sum "$TEN/volumes/$v/snapshots/${X}1/disk.raw")"
unmount_snapfs

# manage, killed after .info: finished
v=$(vid 2)
crash_during snapshot-manage-info setfattr -n user.manage -v "volume-$v.${X}2" \
	"$TEN/volumes/$v/snapshots"
check_eq "manage finished: the snapshot is available" available \
	"$(xattr user.status "$TEN/volumes/$v/snapshots/${X}2")"
check_eq "manage finished: it is the active file" "volume-$v.${X}2" \
	"$(xattr user.active_file "$TEN/volumes/$v")"
check_eq "manage finished: .info names it" "volume-$v.${X}2 volume-$v.${X}2" \
	"$(jq -r --arg k "${X}2" '.active + " " + .[$k]' "$SHARE/volume-$v.info")"
check_eq "manage finished: the snapshot reads its chain" "$(chain_sum "volume-$v.${S}2")" \
	"$(whole_sum "$TEN/volumes/$v/snapshots/${X}2/disk.raw")"
check "manage finished: not manageable any more" test ! -e "$TEN/manageable/volume-$v.${X}2"
unmount_snapfs

# unmanage, killed after the record, and after .info: finished both times
for n in 3 4; do
	v=$(vid $n)
	step=snapshot-unmanage-recorded
	[ $n = 4 ] && step=snapshot-unmanage-info
	crash_during $step setfattr -n user.unmanage -v 1 "$TEN/volumes/$v/snapshots/$S$n"
	check_eq "$step: unmanage finished" "" "$(ls "$TEN/volumes/$v/snapshots")"
	check "$step: the file stays" test -f "$SHARE/volume-$v.$S$n"
	check_eq "$step: .info dropped the key" "volume-$v.$S$n null" \
		"$(jq -r --arg k "$S$n" '.active + " " + (.[$k] // "null")' "$SHARE/volume-$v.info")"
	check_eq "$step: the file is manageable, safe" true \
		"$(xattr user.safe_to_manage "$TEN/manageable/volume-$v.$S$n")"
	check "$step: manage the stray overlay over it" setfattr -n user.manage \
		-v "volume-$v.$X$n" "$TEN/volumes/$v/snapshots"
	check_eq "$step: its disk.raw reads through the unmanaged file" \
		"$(chain_sum "volume-$v.$S$n")" "$(whole_sum "$TEN/volumes/$v/snapshots/$X$n/disk.raw")"
	check "$step: qemu-img check passes" qcow2_check "$v"
	unmount_snapfs
done

# The reconcile of a catalogued volume, killed before its one transaction
# commits: nothing of it is in the catalogue; the next mount does it all.
# Cinder, offline: S1 (under X1) merged away, snapshot Y taken on X1.
v=$(vid 1)
Y=33333333-3333-4333-8333-333333333333
(cd "$SHARE" && qemu-img commit -q -d "volume-$v.${S}1" && rm "volume-$v.${S}1" &&
	qemu-img rebase -q -u -b "volume-$v" -F raw "volume-$v.${X}1" &&
	qemu-img create -q -f qcow2 -o "backing_file=$SHARE/volume-$v.${X}1,backing_fmt=qcow2" \
		"volume-$v.$Y" "$SIZE" &&
	qemu-img rebase -q -u -b "volume-$v.${X}1" -F qcow2 "volume-$v.$Y")
qemu-io -f qcow2 -c "write -P 0x4 3M 1M" "$SHARE/volume-$v.$Y" >/dev/null
jq -c --arg k "${S}1" --arg y "$Y" --arg f "volume-$v.$Y" 'del(.[$k]) | .active = $f | .[$y] = $f' \
	"$SHARE/volume-$v.info" >"$WORK/info" && mv "$WORK/info" "$SHARE/volume-$v.info"
# SIGTERM on a timeout (124): only the fault point kills with SIGKILL (137)
SNAPFS_CRASH_AT=import-reconcile timeout 60 "$SNAPFS" -f -o "catalog=$CAT,allow_other,import=cinder" \
	"$SHARE" "$MNT" >>"$LOG" 2>&1
check_eq "import-reconcile: killed before the commit" 137 "$?"
fusermount3 -u "$MNT" 2>/dev/null
mount_snapfs || { echo "Bail out! mount without import failed"; exit 1; }
check_eq "import-reconcile: nothing of it is in the catalogue" \
	"$(printf '%s\n' ${S}1 ${X}1 | sort) volume-$v.${X}1" \
	"$(ls "$TEN/volumes/$v/snapshots" | sort) $(xattr user.active_file "$TEN/volumes/$v")"
unmount_snapfs
mount_snapfs import=cinder || { echo "Bail out! mount failed"; exit 1; }
check_eq "import-reconcile: the next mount reconciles all of it" \
	"$(printf '%s\n' ${X}1 $Y | sort) volume-$v.$Y" \
	"$(ls "$TEN/volumes/$v/snapshots" | sort) $(xattr user.active_file "$TEN/volumes/$v")"
check_eq "import-reconcile: X1 reads through the file S1 was merged into" \
	"$(chain_sum "volume-$v")" "$(whole_sum "$TEN/volumes/$v/snapshots/${X}1/disk.raw")"
check_eq "import-reconcile: Y reads its chain" "$(chain_sum "volume-$v.${X}1")" \
	"$(whole_sum "$TEN/volumes/$v/snapshots/$Y/disk.raw")"
unmount_snapfs
finish
