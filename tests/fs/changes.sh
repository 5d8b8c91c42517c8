#!/bin/bash
# changes/ (README "Incremental backups"): snapshots/S/changes/<O> is a
# sparse file of S's size whose data regions are the clusters the overlays
# between an older snapshot O and S allocate (data, zero writes, discards,
# compressed writes), holes elsewhere; applied with examples/apply-changes
# onto a copy of O's disk.raw (ranges from changes.json/, and from a
# SEEK_DATA walk) it gives S's disk.raw, byte for byte. Its allocated
# bytes equal the union of what qemu-img map says each overlay between them
# allocates. changes.json/<O> lists the same ranges in qemu-img map's shape.
# Over a raw base, a qcow2 base (volume_format=qcow2) and an imported Cinder
# chain; after a middle snapshot is merged away; open changes files hold
# both snapshots (rmdir: EBUSY); EROFS, ENOENT; a group snapshot's
# changes/<older group snapshot>/<member volume>.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C

for tool in qemu-img qemu-io jq sha256sum python3; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP no $tool"
		exit 0
	fi
done
plan 85

SIZE=64M
lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
whole_sum() { sha256sum <"$1" | cut -d' ' -f1; }

# seek_walk FILE: "bytes ranges" of FILE's data regions by SEEK_DATA/SEEK_HOLE.
seek_walk() {
	python3 - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
pos = total = n = 0
while pos < size:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    total += h - d
    n += 1
    pos = h
print(total, n)
PY
}

APPLY=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/examples/apply-changes

# applied_sums OLDER-IMAGE CHANGES: "sha256 sha256" of OLDER-IMAGE's copy
# with CHANGES applied by examples/apply-changes, the ranges read from
# changes.json/ and found by SEEK_DATA/SEEK_HOLE.
applied_sums() {
	local w out=
	for w in json seek; do
		cp --sparse=always "$1" "$WORK/copy.raw"
		python3 "$APPLY" --walk $w "$2" "$WORK/copy.raw" >/dev/null || echo "apply-changes --walk $w failed" >&2
		out="$out${out:+ }$(whole_sum "$WORK/copy.raw")"
		rm -f "$WORK/copy.raw"
	done
	echo "$out"
}

# expect_alloc SHARE-FILE STOP-FILE: bytes allocated (qemu-img map: depth 0,
# present) in SHARE-FILE and the files below it down to STOP-FILE
# (excluded), their union.
expect_alloc() {
	local f=$1 stop=$2
	while [ -n "$f" ] && [ "$f" != "$stop" ]; do
		qemu-img map --output=json -f "$(fmt_of "$f")" "$SHARE/$f" |
			jq -r '.[] | select(.depth == 0 and .present) | "\(.start) \(.length)"'
		f=$(backing_of "$f")
	done | sort -n | awk '
		{ s = $1; e = $1 + $2
		  if (n && s <= ce) { if (e > ce) ce = e; next }
		  if (n) tot += ce - cs
		  cs = s; ce = e; n = 1 }
		END { if (n) tot += ce - cs; print tot + 0 }'
}

# check_pair VOLDIR OLDER NEWER DESC: 3 checks.
check_pair() {
	local d=$1 o=$2 s=$3 vid sido sids exp got
	vid=$(xattr user.id "$d")
	sido=$(xattr user.id "$d/snapshots/$o")
	sids=$(xattr user.id "$d/snapshots/$s")
	exp=$(whole_sum "$d/snapshots/$s/disk.raw")
	check_eq "$4: $o + changes/$o is $s (sha256; ranges from changes.json, from SEEK_DATA)" \
		"$exp $exp" "$(applied_sums "$d/snapshots/$o/disk.raw" "$d/snapshots/$s/changes/$o")"
	exp=$(expect_alloc "$(backing_of "volume-$vid.$sids")" "$(backing_of "volume-$vid.$sido")")
	got=$(seek_walk "$d/snapshots/$s/changes/$o")
	check_eq "$4: $s/changes/$o's data is what the overlays between allocate ($exp bytes)" \
		"$exp" "${got% *}"
	check_eq "$4: changes.json/$o: present lengths add up to it, all lengths to the size" \
		"$exp $(stat -c %s "$d/snapshots/$s/disk.raw")" \
		"$(jq -r '[(map(select(.present)) | map(.length) | add // 0), (map(.length) | add)] | join(" ")' \
			"$d/snapshots/$s/changes.json/$o" 2>&1)"
}

# three_snapshots VOLDIR DESC: writes of every kind between s1, s2 and s3,
# then the checks of every pair: 12 checks.
three_snapshots() {
	local d=$1
	hv "$d" "write -P 0x11 0 4M" "write -P 0x12 60M 1M"
	mkdir "$d/snapshots/s1"
	hv "$d" "write -P 0x21 1M 2M" "write -z 8M 1M" "discard 60M 512k" \
		"write -c -P 0x22 16M 64k" "write -c -P 0x23 16512k 64k"
	mkdir "$d/snapshots/s2"
	hv "$d" "write -P 0x31 2M 4k" "write -z 20M 128k" "discard 0 64k" "write -c -P 0x32 32M 64k" \
		"write -P 0x33 16M 64k"
	mkdir "$d/snapshots/s3"
	check_eq "$2: changes/ of s3, s2, s1 list the older snapshots" "s1 s2|s1|" \
		"$(lsw "$d/snapshots/s3/changes")|$(lsw "$d/snapshots/s2/changes")|$(lsw "$d/snapshots/s1/changes")"
	check_eq "$2: changes.json/ lists the same" "s1 s2" "$(lsw "$d/snapshots/s3/changes.json")"
	check_pair "$d" s1 s2 "$2"
	check_pair "$d" s2 s3 "$2"
	check_pair "$d" s1 s3 "$2"
}

mount_snapfs "default_size=1G" || { echo "Bail out! mount failed"; exit 1; }
mkdir "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes

# ---- raw base ----
mkdir "$V/raw"
three_snapshots "$V/raw" "raw base"
S=$V/raw/snapshots
check_eq "a snapshot lists changes, changes.json, disk.raw, info.json" \
	"changes changes.json disk.raw info.json" "$(lsw "$S/s3")"
check_eq "changes/s1 is a read-only regular file of disk.raw's size" "regular file $GIB r--r--r--" \
	"$(stat -c '%F %s %A' "$S/s3/changes/s1" 2>&1 | sed 's/-\(r..r..r..\)$/\1/; s/ -/ /')"
check "changes/ and changes.json/ are read-only directories" \
	sh -c "stat -c %A '$S/s3/changes' '$S/s3/changes.json' | grep -qvx 'd.*w.*' && ! stat -c %A '$S/s3/changes' | grep -q w"
check "changes.json/s1 is JSON with qemu-img map's fields, sorted and contiguous" \
	jq -e 'length > 1 and (. as $a | [range(1; length)] | all($a[.].start == $a[. - 1].start + $a[. - 1].length))
		and (.[0].start == 0) and all(has("start") and has("length") and has("present") and has("zero") and has("data"))
		and all(if .present then has("depth") else (.zero or .data) | not end)' "$S/s3/changes.json/s1"
check "a zero write between s2 and s3 is a data region of changes/s2 that reads as zeros" \
	python3 -c "
import os, sys
fd = os.open('$S/s3/changes/s2', os.O_RDONLY)
assert os.lseek(fd, 20 << 20, os.SEEK_DATA) == 20 << 20
assert os.pread(fd, 128 << 10, 20 << 20) == bytes(128 << 10)
assert os.lseek(fd, 21 << 20, os.SEEK_DATA) == 32 << 20
"
check "bytes outside the changes read as zeros, inside as s3's disk.raw" \
	python3 -c "
import os
c = os.open('$S/s3/changes/s2', os.O_RDONLY)
r = os.open('$S/s3/disk.raw', os.O_RDONLY)
h = os.lseek(c, 0, os.SEEK_HOLE)
assert os.pread(c, 65536, h) == bytes(65536), 'hole not zero'
assert os.pread(r, 65536, 3 << 20) == b'\x11' * 65536
assert os.pread(c, 65536, 3 << 20) == bytes(65536), 'unchanged range not a hole'
assert os.pread(c, 4096, 2 << 20) == os.pread(r, 4096, 2 << 20) == b'\x31' * 4096
"
check_eq "st_blocks of an open changes file counts its data" "$(($(seek_walk "$S/s3/changes/s1" | cut -d' ' -f1) / 512))" \
	"$(python3 -c "import os; print(os.fstat(os.open('$S/s3/changes/s1', os.O_RDONLY)).st_blocks)")"
check "cp --sparse=always copies only the data regions" \
	sh -c "cp --sparse=always '$S/s3/changes/s2' '$WORK/delta' && test \$(stat -c %b '$WORK/delta') -le \$(( $(seek_walk "$S/s3/changes/s2" | cut -d' ' -f1) / 512 + 64 ))"
rm -f "$WORK/delta"

# errors
check_errno "write to changes/s1: EROFS" EROFS sh -c "echo x >'$S/s3/changes/s1'"
check_errno "a newer snapshot in changes/: ENOENT" ENOENT cat "$S/s1/changes/s3"
check_errno "the snapshot itself in changes/: ENOENT" ENOENT stat "$S/s2/changes/s2"
check_errno "an unknown name in changes/: ENOENT" ENOENT stat "$S/s2/changes/nope"
check_errno "an unknown name in changes.json/: ENOENT" ENOENT stat "$S/s2/changes.json/nope"
check_errno "mkdir in changes/: EPERM or EACCES" EPERM mkdir "$S/s3/changes/x"
check_errno "rm of changes/s1: EPERM" EPERM rm -f "$S/s3/changes/s1"

# apply-changes itself: --sum tells a changed byte, refusals
cp --sparse=always "$S/s1/disk.raw" "$WORK/copy.raw"
python3 "$APPLY" "$S/s3/changes/s1" "$WORK/copy.raw" >/dev/null
sums=$(for f in "$S/s3/disk.raw" "$WORK/copy.raw" "$S/s1/disk.raw"; do
	python3 "$APPLY" --sum "$S/s3/changes/s1" "$f"; done | uniq | wc -l)
printf '\x00' | dd of="$WORK/copy.raw" bs=1 seek=$((2 << 20)) conv=notrunc status=none
check_eq "apply-changes --sum: s3 and the copy agree, s1 differs, so does one changed byte" "2 differ" \
	"$sums $([ "$(python3 "$APPLY" --sum "$S/s3/changes/s1" "$WORK/copy.raw")" = \
		"$(python3 "$APPLY" --sum "$S/s3/changes/s1" "$S/s3/disk.raw")" ] && echo same || echo differ)"
rm -f "$WORK/copy.raw"
python3 "$APPLY" "$S/s3/changes/s1" "$WORK/none.raw" >/dev/null 2>"$WORK/err"
check_eq "apply-changes onto a missing image: exit 1, the reason" "1 yes" \
	"$? $(grep -q 'none.raw: No such file' "$WORK/err" && echo yes)"
python3 "$APPLY" -j 0 "$S/s3/changes/s1" "$S/s1/disk.raw" >/dev/null 2>&1
check_eq "apply-changes -j 0: exit 2" 2 "$?"
python3 "$APPLY" --walk json "$S/s3/disk.raw" "$WORK/none.raw" >/dev/null 2>&1
check_eq "apply-changes --walk json of a file with no changes.json/: exit 1" 1 "$?"

# an open changes file holds both snapshots
exec 7<"$S/s3/changes/s1"
check_errno "rmdir of the older snapshot while changes/ is open: EBUSY" EBUSY rmdir "$S/s1"
check_errno "rmdir of the newer snapshot while changes/ is open: EBUSY" EBUSY rmdir "$S/s3"
exec 7<&-
exec 7<"$S/s3/changes.json/s1"
check_errno "the same while changes.json/ is open: EBUSY" EBUSY rmdir "$S/s1"
exec 7<&-

# a merged middle snapshot disappears; what it held still counts
check "rmdir s2 (merge) once nothing is open" rmdir_snap "$S/s2"
check_eq "s2 is gone from s3's changes/ and changes.json/" "s1|s1" \
	"$(lsw "$S/s3/changes")|$(lsw "$S/s3/changes.json")"
check_errno "changes/s2 is gone: ENOENT" ENOENT stat "$S/s3/changes/s2"
check_pair "$V/raw" s1 s3 "after the merge of s2"
check "the overlays pass qemu-img check" qcow2_check "$(xattr user.id "$V/raw")"
check "rmdir s1 once nothing is open" rmdir_snap "$S/s1"
check_eq "s3's changes/ is empty" "" "$(lsw "$S/s3/changes")"
unmount_snapfs

# ---- qcow2 base ----
mount_snapfs "default_size=1G,volume_format=qcow2" || { echo "Bail out! mount failed"; exit 1; }
mkdir "$V/q"
check_eq "the volume's base is qcow2" qcow2 "$(fmt_of "$(xattr user.active_file "$V/q")")"
three_snapshots "$V/q" "qcow2 base"

# ---- examples/incremental-backup.sh ----
EX=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/examples/incremental-backup.sh
BK=$WORK/backup
mkdir "$V/bk"
hv "$V/bk" "write -P 0x61 0 3M" "write -P 0x62 500M 1M"
check "incremental-backup.sh: the first night (full copy) exits 0" "$EX" "$V/bk" "$BK"
night1=$(cat "$BK/snapshot" 2>/dev/null)
check_eq "it keeps one snapshot; the backup is its disk.raw (sha256)" \
	"$night1|$(whole_sum "$V/bk/snapshots/$night1/disk.raw")" "$(lsw "$V/bk/snapshots")|$(whole_sum "$BK/disk.raw")"
hv "$V/bk" "write -P 0x63 1M 64k" "write -z 2M 128k" "discard 500M 64k" "write -c -P 0x64 900M 64k"
sleep 1 # a new snapshot name (UTC seconds)
out=$("$EX" "$V/bk" "$BK" 2>&1)
rc=$?
check_eq "an incremental night exits 0 and copies the 5 changed clusters" "0 $((5 * 65536))" \
	"$rc $(sed -n 's/.* \([0-9]*\) bytes copied.*/\1/p' <<<"$out")"
night2=$(cat "$BK/snapshot" 2>/dev/null)
check_eq "the previous snapshot is gone, the backup is the new one's disk.raw (sha256)" \
	"$night2|$(whole_sum "$V/bk/snapshots/$night2/disk.raw")" "$(lsw "$V/bk/snapshots")|$(whole_sum "$BK/disk.raw")"
hv "$V/bk" "write -P 0x65 700M 2M"
sleep 1
check "a night with VERIFY=full exits 0" env VERIFY=full "$EX" "$V/bk" "$BK"
night3=$(cat "$BK/snapshot" 2>/dev/null)
check_eq "the backup and disk.raw.sha256 are the newest snapshot's" \
	"$(whole_sum "$V/bk/snapshots/$night3/disk.raw")|$(whole_sum "$V/bk/snapshots/$night3/disk.raw")" \
	"$(whole_sum "$BK/disk.raw")|$(cut -d' ' -f1 "$BK/disk.raw.sha256")"
"$EX" "$V/bk" >/dev/null 2>&1
check_eq "bad arguments: exit status 2" 2 "$?"

# ---- a group snapshot against an older one, per member ----
G=$MNT/tenants/acme/consistencygroups/g
mkdir "$V/m1" "$V/m2" "$G"
ln -s ../../../volumes/m1 "$G/volumes/m1"
ln -s ../../../volumes/m2 "$G/volumes/m2"
hv "$V/m1" "write -P 0x41 0 2M"
hv "$V/m2" "write -P 0x51 0 3M"
mkdir "$G/cgsnapshots/c1"
hv "$V/m1" "write -P 0x42 1M 1M" "write -z 10M 64k"
hv "$V/m2" "write -c -P 0x52 5M 64k" "discard 0 64k"
mkdir "$G/cgsnapshots/c2"
C=$G/cgsnapshots
check_eq "a group snapshot lists changes and changes.json" "changes changes.json info.json m1 m2" "$(lsw "$C/c2")"
check_eq "c2's changes/ lists c1; c1's nothing" "c1|" "$(lsw "$C/c2/changes")|$(lsw "$C/c1/changes")"
check_eq "changes/c1/ holds one file per member volume" "m1 m2|m1 m2" \
	"$(lsw "$C/c2/changes/c1")|$(lsw "$C/c2/changes.json/c1")"
check_eq "each is the member snapshot's changes file (same inode)" \
	"$(stat -c %i "$V/m1/snapshots/c2/changes/c1")" "$(stat -c %i "$C/c2/changes/c1/m1")"
for m in m1 m2; do
	exp=$(whole_sum "$V/$m/snapshots/c2/disk.raw")
	check_eq "member $m: c1 + changes/c1/$m is c2 (sha256; changes.json, SEEK_DATA)" "$exp $exp" \
		"$(applied_sums "$V/$m/snapshots/c1/disk.raw" "$C/c2/changes/c1/$m")"
done
exec 7<"$C/c2/changes/c1/m1"
check_errno "rmdir of the older group snapshot while a member's changes file is open: EBUSY" EBUSY rmdir "$C/c1"
exec 7<&-
check_errno "a newer group snapshot in changes/: ENOENT" ENOENT stat "$C/c1/changes/c2"
check_errno "a volume that is no member: ENOENT" ENOENT stat "$C/c2/changes/c1/q"
check "rmdir c1 once nothing is open" retry_busy rmdir "$C/c1"
check_eq "c1 is gone from c2's changes/" "" "$(lsw "$C/c2/changes")"
unmount_snapfs

# ---- an imported Cinder chain ----
rm -rf "$SHARE" "$CAT"
mkdir -p "$SHARE" "$CAT"
VA=aaaaaaaa-0000-4000-8000-000000000001
S1=11111111-1111-4111-8111-111111111111
S2=22222222-2222-4222-8222-222222222222
S3=33333333-3333-4333-8333-333333333333
qemu-img create -q -f raw "$SHARE/volume-$VA" "$SIZE"
io "volume-$VA" raw "write -P 0x11 0 4M" "write -P 0x12 60M 1M"
snap_file $VA $S1 "volume-$VA" raw
io "volume-$VA.$S1" qcow2 "write -z 0 1M" "write -P 0x21 4M 2M" "write -c -P 0x22 8M 64k"
snap_file $VA $S2 "volume-$VA.$S1" qcow2 compression_type=zstd
io "volume-$VA.$S2" qcow2 "write -c -P 0x31 12M 64k" "write -z 4M 512k" "discard 8M 64k"
snap_file $VA $S3 "volume-$VA.$S2" qcow2 extended_l2=on
io "volume-$VA.$S3" qcow2 "write -P 0x41 16M 4k" "write -z 8M 8k"
echo "{\"active\": \"volume-$VA.$S3\", \"$S1\": \"volume-$VA.$S1\", \"$S2\": \"volume-$VA.$S2\", \"$S3\": \"volume-$VA.$S3\"}" >"$SHARE/volume-$VA.info"
mount_snapfs import=cinder || { echo "Bail out! mount failed"; exit 1; }
D=$MNT/tenants/cinder/volumes/$VA
check_eq "imported: changes/ of the newest snapshot lists the two older ones" \
	"$(printf '%s\n' $S1 $S2 | sort | tr '\n' ' ' | sed 's/ $//')" "$(lsw "$D/snapshots/$S3/changes")"
check_pair "$D" $S1 $S2 "imported"
check_pair "$D" $S2 $S3 "imported"
check_pair "$D" $S1 $S3 "imported"
unmount_snapfs
finish
