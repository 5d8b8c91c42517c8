#!/bin/bash
# import.sh - a share written as Cinder's NFS (remotefs) driver writes it is
# imported with -o import=TENANT; manageable/ lists what no object owns;
# user.manage and user.unmanage adopt and forget snapshots; snapfs's own
# snapshots and merges on the imported share keep it valid for Cinder; a
# mount with import= again follows the snapshots Cinder took and deleted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"

for tool in qemu-img qemu-io jq sha256sum; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP no $tool"
		exit 0
	fi
done
plan 113

SIZE=64M
VA=aaaaaaaa-0000-4000-8000-000000000001 # raw base, three snapshots, zstd, extended L2
VB=bbbbbbbb-0000-4000-8000-000000000002 # qcow2 base, one snapshot
VC=cccccccc-0000-4000-8000-000000000003 # a bare raw base, no .info
VD=dddddddd-0000-4000-8000-000000000004 # hostile: overlay backed by /etc/passwd
VF=ffffffff-0000-4000-8000-000000000006 # hostile: external data file bit
VG=99999999-0000-4000-8000-000000000007 # a symlink
VH=88888888-0000-4000-8000-000000000008 # .info whose overlay is backed by another volume
S1=11111111-1111-4111-8111-111111111111
S2=22222222-2222-4222-8222-222222222222
S3=33333333-3333-4333-8333-333333333333
SX=44444444-4444-4444-8444-444444444444 # stray overlay of A, adopted by user.manage
T1=55555555-5555-4555-8555-555555555555
E1=66666666-6666-4666-8666-666666666666
H1=77777777-7777-4777-8777-777777777777

build_share() {
	# A: raw base; S1 (zlib compressed, zero clusters); S2 (zstd); S3 (extended L2)
	qemu-img create -q -f raw "$SHARE/volume-$VA" "$SIZE"
	io "volume-$VA" raw "write -P 0x11 0 4M" "write -P 0x12 60M 1M"
	snap_file $VA $S1 "volume-$VA" raw
	io "volume-$VA.$S1" qcow2 "write -z 0 1M" "write -P 0x21 4M 2M" "write -c -P 0x22 8M 64k" \
		"write -c -P 0x23 8256k 64k"
	snap_file $VA $S2 "volume-$VA.$S1" qcow2 compression_type=zstd
	io "volume-$VA.$S2" qcow2 "write -c -P 0x31 12M 64k" "write -c -P 0x32 1M 64k" \
		"write -z 4M 512k"
	snap_file $VA $S3 "volume-$VA.$S2" qcow2 extended_l2=on
	io "volume-$VA.$S3" qcow2 "write -P 0x41 16M 4k" "write -z 8M 8k" "write -P 0x42 20M 36k"
	echo "{\"active\": \"volume-$VA.$S3\", \"$S1\": \"volume-$VA.$S1\", \"$S2\": \"volume-$VA.$S2\", \"$S3\": \"volume-$VA.$S3\"}" >"$SHARE/volume-$VA.info"
	# A stray overlay over A's active file: Cinder made it, .info does not say
	snap_file $VA $SX "volume-$VA.$S3" qcow2
	io "volume-$VA.$SX" qcow2 "write -P 0x51 24M 1M"

	# B: qcow2 base (zstd), one snapshot
	qemu-img create -q -f qcow2 -o compression_type=zstd "$SHARE/volume-$VB" "$SIZE"
	io "volume-$VB" qcow2 "write -P 0x61 0 2M" "write -c -P 0x62 3M 64k"
	snap_file $VB $T1 "volume-$VB" qcow2
	io "volume-$VB.$T1" qcow2 "write -P 0x63 1M 2M" "write -z 3M 64k"
	echo "{\"active\": \"volume-$VB.$T1\", \"$T1\": \"volume-$VB.$T1\"}" >"$SHARE/volume-$VB.info"

	# C: a bare base
	qemu-img create -q -f raw "$SHARE/volume-$VC" "$SIZE"
	io "volume-$VC" raw "write -P 0x71 0 1M"

	# Hostile files
	qemu-img create -q -f raw "$SHARE/volume-$VD" "$SIZE"
	qemu-img create -q -f qcow2 -o backing_file=/etc/passwd,backing_fmt=raw \
		"$SHARE/volume-$VD.$E1" "$SIZE"
	qemu-img create -q -f qcow2 -o data_file="$WORK/external.raw" "$SHARE/volume-$VF" "$SIZE"
	ln -s /etc/passwd "$SHARE/volume-$VG"
	echo junk >"$SHARE/volume-junk"
	qemu-img create -q -f raw "$SHARE/volume-$VH" "$SIZE"
	snap_file $VH $H1 "volume-$VD" raw
	echo "{\"active\": \"volume-$VH.$H1\", \"$H1\": \"volume-$VH.$H1\"}" >"$SHARE/volume-$VH.info"
}

whole_sum() { sha256sum <"$1" | cut -d' ' -f1; }
# chain_sum FILE: sha256 of qemu-img convert -O raw of FILE's chain.
chain_sum() {
	to_raw "$1" "$WORK/conv.raw" && whole_sum "$WORK/conv.raw"
	rm -f "$WORK/conv.raw"
}
# snap_ok VID SID: disk.raw of snapshot SID equals the conversion of its
# overlay's backing chain.
snap_sum_pair() { # VID SNAPSHOT-DIR-NAME
	local d=$TEN/volumes/$1/snapshots/$2 sid
	sid=$(xattr user.id "$d")
	echo "$(chain_sum "$(backing_of "volume-$1.$sid")") $(whole_sum "$d/disk.raw" 2>&1)"
}
check_snap() {
	local p
	p=$(snap_sum_pair "$1" "$2")
	check_eq "$3" "${p% *}" "${p#* }"
}
share_state() { (cd "$SHARE" && ls -A1 | sort && sha256sum -- volume-* 2>/dev/null); }

# Cinder's invariants for volume VID: .info keys name existing overlays,
# .info's active is the top of a chain whose backing names are relative
# basenames of the same volume, and qemu-img check passes.
cinder_valid() {
	local vid=$1 info active f k
	info=$SHARE/volume-$vid.info
	active=$(jq -r .active "$info") || return 1
	[ -f "$SHARE/$active" ] || { echo "active $active missing"; return 1; }
	for k in $(jq -r 'keys[] | select(. != "active")' "$info"); do
		f=$(jq -r --arg k "$k" '.[$k]' "$info")
		[ "$f" = "volume-$vid.$k" ] && [ -f "$SHARE/$f" ] || { echo "key $k -> $f"; return 1; }
	done
	chain_actual "$active" | while read -r f fmt b bf; do
		case $b in -|volume-$vid|volume-$vid.*) ;; *) echo "$f: backing $b"; exit 1 ;; esac
	done || return 1
	qcow2_check "$vid"
}

hostile_state() { (cd "$SHARE" && sha256sum -- volume-$VD* volume-$VF volume-$VH* volume-junk && readlink volume-$VG); }

build_share
BEFORE=$(share_state)
HOSTILE=$(hostile_state)
TEN=$MNT/tenants/cinder

mount_snapfs import=cinder || { echo "Bail out! mount failed"; exit 1; }
check_eq "tenant cinder created, root's, 0755" "root 755" "$(stat -c '%U %a' "$TEN")"
check_eq "volumes A, B, C, D and only they are imported, named by uuid" \
	"$(printf '%s\n' $VA $VB $VC $VD | sort)" "$(ls "$TEN/volumes" | sort)"
check_eq "A's snapshots are .info's keys" "$(printf '%s\n' $S1 $S2 $S3 | sort)" \
	"$(ls "$TEN/volumes/$VA/snapshots" | sort)"
check_eq "B's snapshot" "$T1" "$(ls "$TEN/volumes/$VB/snapshots")"
check_eq "C has none" "" "$(ls "$TEN/volumes/$VC/snapshots")"
check_eq "volume id is its uuid" "$VA" "$(xattr user.id "$TEN/volumes/$VA")"
check_eq "snapshot id is its uuid" "$S2" "$(xattr user.id "$TEN/volumes/$VA/snapshots/$S2")"
check_eq "a 64 MiB volume's user.size is 1 (GiB, rounded up as the API)" "1" "$(xattr user.size "$TEN/volumes/$VA")"
check_eq "A's active file is .info's" "volume-$VA.$S3" "$(xattr user.active_file "$TEN/volumes/$VA")"
check_eq "snapshots are available" "available available" \
	"$(xattr user.status "$TEN/volumes/$VA/snapshots/$S1") $(xattr user.status "$TEN/volumes/$VB/snapshots/$T1")"
for s in $S1 $S2 $S3; do
	check_snap $VA $s "A's snapshot $s: disk.raw equals qemu-img convert of its chain"
done
check_snap $VB $T1 "B's snapshot: disk.raw equals qemu-img convert of its chain"
check_eq "disk.raw's size is the virtual size" $((64 * MIB)) \
	"$(stat -c %s "$TEN/volumes/$VA/snapshots/$S3/disk.raw")"
check_eq "importing changed no file of the share" "$BEFORE" "$(share_state)"
check "a bare base is imported without snapshots" test -d "$TEN/volumes/$VD" -a -z "$(ls "$TEN/volumes/$VD/snapshots")"
check "the log says why H was skipped" grep -q "import: volume $VH skipped" "$LOG"
check "the log says why F was skipped" grep -q "import: volume $VF skipped.*data" "$LOG"

# manageable/
M=$TEN/manageable
check_eq "manageable/ lists every file no object owns" \
	"$(printf '%s\n' volume-$VA.$SX volume-$VD.$E1 volume-$VF volume-$VG volume-$VH \
		volume-$VH.$H1 volume-junk | sort)" "$(ls "$M" | sort)"
check_eq "a stray overlay over the active file is safe" "true" "$(xattr user.safe_to_manage "$M/volume-$VA.$SX")"
check_errno "a safe file has no reason" ENODATA getfattr -n user.reason_not_safe "$M/volume-$VA.$SX"
check_eq "user.reference is the basename" "volume-$VA.$SX" "$(xattr user.reference "$M/volume-$VA.$SX")"
check_eq "user.cinder_id of an overlay is its snapshot uuid" "$SX" "$(xattr user.cinder_id "$M/volume-$VA.$SX")"
check_eq "user.cinder_id of a base is its volume uuid" "$VH" "$(xattr user.cinder_id "$M/volume-$VH")"
check_eq "user.size is GiB rounded up" "1" "$(xattr user.size "$M/volume-$VA.$SX")"
check_eq "a backing /etc/passwd is unsafe" "false" "$(xattr user.safe_to_manage "$M/volume-$VD.$E1")"
check "... with a reason" test -n "$(xattr user.reason_not_safe "$M/volume-$VD.$E1")"
check_eq "the data-file bit is unsafe" "false" "$(xattr user.safe_to_manage "$M/volume-$VF")"
check "... with a reason naming the data file" bash -c "getfattr --only-values -n user.reason_not_safe '$M/volume-$VF' | grep -qi 'data'"
check_eq "a symlink is unsafe" "a symbolic link" "$(xattr user.reason_not_safe "$M/volume-$VG")"
check_eq "a bad name is unsafe" "false" "$(xattr user.safe_to_manage "$M/volume-junk")"
check_eq "an overlay of another volume's file is unsafe" "false" \
	"$(xattr user.safe_to_manage "$M/volume-$VH.$H1")"
check_eq "so is the base of a volume whose .info chain fails" "false" \
	"$(xattr user.safe_to_manage "$M/volume-$VH")"
check_eq "getfattr -d lists the manageable attributes" \
	"user.cinder_id user.reference user.safe_to_manage user.size" \
	"$(getfattr --absolute-names -d "$M/volume-$VA.$SX" 2>/dev/null | sed -n 's/=.*//p' | sort | xargs)"
check "manageable entries are read-only regular files of root" \
	test "$(stat -c '%F %a %U' "$M/volume-$VA.$SX")" = "regular empty file 444 root"
check_eq "they read empty" "" "$(cat "$M/volume-$VA.$SX")"
check_errno "they cannot be written" EROFS bash -c "echo x >> '$M/volume-$VA.$SX'"
check_errno "their attributes cannot be set" EPERM setfattr -n user.size -v 2 "$M/volume-$VA.$SX"
check "inode numbers are stable" test "$(stat -c %i "$M/volume-$VA.$SX")" = "$(ls -i "$M" | awk -v n="volume-$VA.$SX" '$2 == n {print $1}')"
mkdir "$MNT/tenants/other"
check_eq "manageable/ is the same in every tenant" "$(ls "$M")" "$(ls "$MNT/tenants/other/manageable")"

# A remount imports nothing twice
unmount_snapfs
mount_snapfs import=cinder || { echo "Bail out! remount failed"; exit 1; }
check_eq "remount: the same volumes" "$(printf '%s\n' $VA $VB $VC $VD | sort)" "$(ls "$TEN/volumes" | sort)"
check_eq "remount: the same snapshots" "$(printf '%s\n' $S1 $S2 $S3 | sort)" \
	"$(ls "$TEN/volumes/$VA/snapshots" | sort)"
check "remount: the log says nothing was added" grep -q "import into tenant cinder: 0 volumes" "$LOG"

# user.manage
SN=$TEN/volumes/$VA/snapshots
# a team that may write in the tenant, but is not admin
chgrp $TEAM "$TEN" && chmod 2770 "$TEN" && chgrp $TEAM "$SN/$S2" && chmod 770 "$SN/$S2"
check_errno "manage by a non-admin: EPERM" EPERM as $ALICE $TEAM -- setfattr -n user.manage -v "volume-$VA.$SX" "$SN"
check_errno "manage of another volume's file: EINVAL" EINVAL setfattr -n user.manage -v "volume-$VD.$E1" "$SN"
check_errno "manage of a hostile file: EINVAL" EINVAL setfattr -n user.manage -v "volume-$VF" "$SN"
check_errno "manage of a missing file: EINVAL" EINVAL setfattr -n user.manage -v "volume-$VA.$E1" "$SN"
check_errno "manage of a managed snapshot: EEXIST" EEXIST setfattr -n user.manage -v "volume-$VA.$S2" "$SN"
check "manage of the stray overlay" setfattr -n user.manage -v "volume-$VA.$SX" "$SN"
check_eq "it is a snapshot named after its uuid" "available" "$(xattr user.status "$SN/$SX")"
check_eq "it is the active file now" "volume-$VA.$SX" "$(xattr user.active_file "$TEN/volumes/$VA")"
check_eq ".info names it, active" "volume-$VA.$SX volume-$VA.$SX" \
	"$(jq -r --arg k $SX '.active + " " + .[$k]' "$SHARE/volume-$VA.info")"
check_snap $VA $SX "the adopted snapshot's disk.raw equals its chain"
check "it left manageable/" test ! -e "$M/volume-$VA.$SX"

# user.unmanage of a snapshot in the middle of the chain
check_errno "unmanage by a non-admin: EPERM" EPERM as $ALICE $TEAM -- setfattr -n user.unmanage -v 1 "$SN/$S2"
check_errno "unmanage with a bad value: EINVAL" EINVAL setfattr -n user.unmanage -v 2 "$SN/$S2"
check "unmanage S2" setfattr -n user.unmanage -v 1 "$SN/$S2"
check_eq "S2 is gone from snapshots/" "$(printf '%s\n' $S1 $S3 $SX | sort)" "$(ls "$SN" | sort)"
check "S2's file stays" test -f "$SHARE/volume-$VA.$S2"
check_eq ".info dropped S2's key" "null" "$(jq -r --arg k $S2 '.[$k]' "$SHARE/volume-$VA.info")"
check_snap $VA $S3 "S3 still reads through S2's file"
check_eq "S2's file is manageable, safe" "true" "$(xattr user.safe_to_manage "$M/volume-$VA.$S2")"
check_errno "a volume with unmanaged files in its chain is not deletable" ENOTEMPTY \
	setfattr -n user.force_delete -v 1 "$TEN/volumes/$VA"
check "manage S2 back (a member of the chain that .info does not name)" \
	setfattr -n user.manage -v "volume-$VA.$S2" "$SN"
check_eq "S2 is back, the active file unchanged" "$S2 volume-$VA.$SX" \
	"$(ls "$SN" | grep -x $S2) $(xattr user.active_file "$TEN/volumes/$VA")"
check_snap $VA $S2 "S2's disk.raw after manage"
check "unmanage S2 again" setfattr -n user.unmanage -v 1 "$SN/$S2"

# snapfs changes the imported share: snapshots made and merged
check "rmdir S1 (its overlay is the backing of the unmanaged S2)" rmdir_snap "$SN/$S1"
check_snap $VA $S3 "S3 after S1's merge"
check "rmdir S3 (its backing is the unmanaged S2)" rmdir_snap "$SN/$S3"
check_snap $VA $SX "the adopted snapshot after S3's merge"
check "mkdir a new snapshot of A" mkdir "$SN/new"
check_snap $VA new "the new snapshot reads"
check "A is valid for Cinder" cinder_valid $VA
check "mkdir a snapshot of B" mkdir "$TEN/volumes/$VB/snapshots/b2"
check "rmdir B's imported snapshot" rmdir_snap "$TEN/volumes/$VB/snapshots/$T1"
check_snap $VB b2 "B's new snapshot after the merge"
check "B is valid for Cinder" cinder_valid $VB
check_eq "the files snapfs did not adopt were never changed" "$HOSTILE" "$(hostile_state)"
unmount_snapfs
mount_snapfs import=cinder || { echo "Bail out! third mount failed"; exit 1; }
check_eq "after a remount, A's snapshots are the same" "$(printf '%s\n' $SX new | sort)" "$(ls "$SN" | sort)"
NEWID=$(xattr user.id "$SN/new")
unmount_snapfs

# Reconcile: while snapfs is unmounted, Cinder takes and deletes snapshots
# of volumes that are already catalogued; the next mount with import=
# follows .info where the files agree, and leaves a volume alone otherwise.
N1=a1000000-0000-4000-8000-0000000000a1
N2=a2000000-0000-4000-8000-0000000000a2
N3=a3000000-0000-4000-8000-0000000000a3
Z1=a4000000-0000-4000-8000-0000000000a4
SB=$TEN/volumes/$VB/snapshots

# info_jq VID JQ-ARGS...: Cinder rewrites .info.
info_jq() {
	local f=$SHARE/volume-$1.info
	shift
	jq -c "$@" "$f" >"$WORK/info.new" && mv "$WORK/info.new" "$f"
}
# cinder_snap VID SID: Cinder's snapshot of a volume no QEMU runs: an
# overlay on .info's active file (snap_file), the new active file and key.
cinder_snap() {
	local active
	active=$(jq -r .active "$SHARE/volume-$1.info")
	snap_file "$1" "$2" "$active" "$(fmt_of "$active")" &&
		info_jq "$1" --arg k "$2" --arg f "volume-$1.$2" '.active = $f | .[$k] = $f'
}
# cinder_delete VID SID: Cinder's _delete_snapshot offline: commit the
# overlay into its backing file and remove it (_img_commit), rebase -u the
# overlay above it onto that file, or make that file active; drop the key.
cinder_delete() {
	local f active below bfmt higher=
	f=$(jq -r --arg k "$2" '.[$k]' "$SHARE/volume-$1.info")
	active=$(jq -r .active "$SHARE/volume-$1.info")
	below=$(backing_of "$f")
	bfmt=$(fmt_of "$below")
	[ "$f" = "$active" ] || higher=$(chain_actual "$active" | awk -v f="$f" '$3 == f {print $1}')
	qemu-img commit -q -d "$SHARE/$f" && rm -f "$SHARE/$f" || return 1
	if [ -n "$higher" ]; then
		(cd "$SHARE" && qemu-img rebase -q -u -b "$below" -F "$bfmt" "$higher") &&
			info_jq "$1" --arg k "$2" 'del(.[$k])'
	else
		info_jq "$1" --arg k "$2" --arg b "$below" 'del(.[$k]) | .active = $b'
	fi
}
LOG_MARK=0
mark_log() { LOG_MARK=$(wc -l <"$LOG"); }
log_since() { tail -n +$((LOG_MARK + 1)) "$LOG"; }
log_has() { log_since | grep -q -- "$1"; }

# B: two snapshots taken, the hypervisor writing between them.
cinder_snap $VB $N1 && io "volume-$VB.$N1" qcow2 "write -P 0x81 2M 1M" "write -z 0 64k"
cinder_snap $VB $N2 && io "volume-$VB.$N2" qcow2 "write -c -P 0x82 5M 64k" "write -P 0x83 63M 64k"
# A: SX deleted (between "new" above and the hidden layer S2 below), N3 taken.
cinder_delete $VA $SX
cinder_snap $VA $N3 && io "volume-$VA.$N3" qcow2 "write -P 0x84 30M 1M"
BEFORE=$(share_state)
mark_log
mount_snapfs import=cinder || { echo "Bail out! reconcile mount failed"; exit 1; }
check_eq "reconcile: B's snapshots are b2 and the two Cinder took" \
	"$(printf '%s\n' b2 $N1 $N2 | sort)" "$(ls "$SB" | sort)"
check_eq "B's active file is .info's" "volume-$VB.$N2" "$(xattr user.active_file "$TEN/volumes/$VB")"
check_eq "a new snapshot is available, its uuid its id, sized as its data" "available $N1 1" \
	"$(xattr user.status "$SB/$N1") $(xattr user.id "$SB/$N1") $(xattr user.size "$SB/$N1")"
for s in b2 $N1 $N2; do
	check_snap $VB $s "B's snapshot $s: disk.raw equals qemu-img convert of its chain"
done
check_eq "A: SX, which Cinder deleted, is gone; N3 is added" "$(printf '%s\n' new $N3 | sort)" \
	"$(ls "$SN" | sort)"
check_eq "A's active file is .info's" "volume-$VA.$N3" "$(xattr user.active_file "$TEN/volumes/$VA")"
check_snap $VA new "A's snapshot above the deleted one reads through the file SX was merged into"
check_snap $VA $N3 "A's new snapshot: disk.raw equals qemu-img convert of its chain"
check "the log says what was reconciled" \
	log_has "import: volume $VB follows volume-$VB.info: 2 snapshots added, 0 forgotten"
check "... for A too" log_has "import: volume $VA follows volume-$VA.info: 1 snapshots added, 1 forgotten"
check_eq "reconciling changed no file of the share" "$BEFORE" "$(share_state)"
check "snapfs merges a snapshot Cinder took" rmdir_snap "$SB/$N1"
check_snap $VB $N2 "B's newest snapshot after that merge"
check "B is valid for Cinder" cinder_valid $VB
unmount_snapfs

mark_log
mount_snapfs import=cinder || { echo "Bail out! remount failed"; exit 1; }
check "a remount adds and forgets nothing" \
	log_has "import into tenant cinder: 0 volumes and snapshots added, 0 snapshots forgotten"
check_eq "... B's snapshots are the same" "$(printf '%s\n' b2 $N2 | sort)" "$(ls "$SB" | sort)"
check_eq "... and A's" "$(printf '%s\n' new $N3 | sort)" "$(ls "$SN" | sort)"
unmount_snapfs

# B: Cinder deletes its newest snapshot (the active file moves down).
# A: Cinder's .info disagrees: an overlay on "new"'s file, not on the active
# file, made active; N3's key stays while its file leaves the chain.
cinder_delete $VB $N2
snap_file $VA $Z1 "volume-$VA.$NEWID" qcow2
info_jq $VA --arg k $Z1 --arg f "volume-$VA.$Z1" '.active = $f | .[$k] = $f'
A_INFO=$(sha256sum <"$SHARE/volume-$VA.info")
mark_log
mount_snapfs import=cinder || { echo "Bail out! last mount failed"; exit 1; }
check_eq "B: the newest snapshot Cinder deleted is gone" "b2" "$(ls "$SB")"
check_eq "B's active file moved down to b2's overlay" "volume-$VB.$(xattr user.id "$SB/b2")" \
	"$(xattr user.active_file "$TEN/volumes/$VB")"
check_snap $VB b2 "B's remaining snapshot"
check_eq "A, whose .info disagrees, is left alone" "$(printf '%s\n' new $N3 | sort) volume-$VA.$N3" \
	"$(ls "$SN" | sort) $(xattr user.active_file "$TEN/volumes/$VA")"
check "the log names A and the reason, in one line" \
	test "$(log_since | grep -c "import: volume $VA left alone: .info names snapshot $N3")" = 1
check_eq "A's .info is never written by import" "$A_INFO" "$(sha256sum <"$SHARE/volume-$VA.info")"
check_snap $VA $N3 "A's snapshots still read"
unmount_snapfs
finish
