#!/bin/bash
# st_blocks of disk.raw: du and ls -s tell the data a snapshot holds, not
# its virtual size, from the first stat on (before any open), while it is
# open, after it is closed, after a remount and after a merge below it.
# The truth is qemu-img map of the snapshot's chain: the bytes it marks
# "data", in 512-byte blocks rounded up as du counts them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
plan 17

# map_blocks SHAREFILE: 512-byte blocks of the data of the chain from FILE.
map_blocks() {
	qemu-img map --output=json -f "$(fmt_of "$1")" "$SHARE/$1" |
		jq '[.[] | select(.data) | .length] | add // 0 | (. + 511) / 512 | floor'
}
# snap_blocks VOLDIR SNAP: map_blocks of the snapshot's data (its overlay's backing).
snap_blocks() {
	local vid sid
	vid=$(xattr user.id "$1")
	sid=$(xattr user.id "$1/snapshots/$2")
	map_blocks "$(backing_of "volume-$vid.$sid")"
}
blocks() { stat -c %b "$1"; }
du512() { du -B512 "$1" | cut -f1; }

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
D=$MNT/tenants/acme/volumes/db
mkdir "$D"
setfattr -n user.size -v 4G "$D"
S=$D/snapshots
G4=$((4 * GIB))

# 4 MiB of data in a 4 GiB raw base, then 1 MiB more (and one rewrite) in the overlay.
hv "$D" "write -P 0xa1 0 4M" >/dev/null
mkdir "$S/s1"
hv "$D" "write -P 0xb1 64M 1M" "write -P 0xb2 0 64k" "write -P 0xb3 $((G4 - 65536)) 64k"
mkdir "$S/s2"
hv "$D" "write -P 0xc1 128M 2M"
mkdir "$S/s3"

exp1=$(snap_blocks "$D" s1)
exp2=$(snap_blocks "$D" s2)
exp3=$(snap_blocks "$D" s3)
check "qemu-img sees less data than the virtual size" test "$exp2" -lt $((G4 / 512 / 100))
check_eq "s1/disk.raw: st_blocks before any open is the base's data" "$exp1" "$(blocks "$S/s1/disk.raw")"
check_eq "s2/disk.raw: du before any open is the chain's data" "$exp2" "$(du512 "$S/s2/disk.raw")"
check_eq "s3/disk.raw: ls -s before any open" "$((exp3 / 2))" \
	"$(ls -s --block-size=1024 "$S/s3/disk.raw" | cut -d' ' -f1)"
check_eq "st_size stays the virtual size" "$G4" "$(stat -c %s "$S/s2/disk.raw")"

exec 7<"$S/s2/disk.raw"
check_eq "s2/disk.raw while open" "$exp2" "$(blocks "$S/s2/disk.raw")"
exec 7<&-
cat "$S/s3/disk.raw" >/dev/null
check_eq "s3/disk.raw after it was read and closed" "$exp3" "$(blocks "$S/s3/disk.raw")"
check "cp --sparse=always copies as little as qemu-img maps" \
	sh -c "cp --sparse=always '$S/s2/disk.raw' '$WORK/s2.raw' && test \$(stat -c %b '$WORK/s2.raw') -le $((exp2 + 64))"
rm -f "$WORK/s2.raw"

unmount_snapfs
mount_snapfs || exit 1
check_eq "after a remount, s2 before any open" "$exp2" "$(du512 "$S/s2/disk.raw")"
check_eq "after a remount, s1 before any open" "$exp1" "$(blocks "$S/s1/disk.raw")"

# s2's data sits on s1's overlay: deleting s1 commits that overlay into the
# base and rebases s2's data onto it; st_blocks follows the new chain.
rmdir_snap "$S/s1"
exp2b=$(snap_blocks "$D" s2)
check_eq "after s1's merge, s2 shows the data of its new chain" "$exp2b" "$(blocks "$S/s2/disk.raw")"
check_eq "s3 as well" "$(snap_blocks "$D" s3)" "$(blocks "$S/s3/disk.raw")"

# A qcow2 base: its data is what qemu-img maps, not the file's size.
mkdir "$MNT/tenants/acme/volumes/q"
Q=$MNT/tenants/acme/volumes/q
vq=$(xattr user.id "$Q")
rmdir "$Q"
qemu-img create -q -f qcow2 "$SHARE/volume-$vq" 2G
hv_file() { qemu-io -f qcow2 -c "$2" "$SHARE/$1" >/dev/null; }
unmount_snapfs
mount_snapfs import=acme || exit 1
Q=$MNT/tenants/acme/volumes/$vq
check "the qcow2 volume is imported" test -d "$Q"
hv_file "volume-$vq" "write -P 0xd1 1M 3M"
hv_file "volume-$vq" "write -z 8M 1M"
mkdir "$Q/snapshots/sq"
check_eq "qcow2 base: du is its data clusters" "$(snap_blocks "$Q" sq)" "$(du512 "$Q/snapshots/sq/disk.raw")"

check_eq "du -c of every disk.raw of the volume sums them" \
	"$(($(snap_blocks "$D" s2) + $(snap_blocks "$D" s3)))" \
	"$(du -c -B512 "$S"/*/disk.raw | tail -1 | cut -f1)"
finish
