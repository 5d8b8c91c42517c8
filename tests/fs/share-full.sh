#!/bin/bash
# A full share: a merge that runs out of space answers ENOSPC, leaves the
# snapshot in error_deleting with its disk.raw refused, keeps every other
# snapshot and the live image, and a force-delete finishes once there is
# room. The share is a small tmpfs mounted over the test's share.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"

if ! mount -t tmpfs -o size=96M tmpfs "$SHARE" 2>/dev/null; then
	echo "1..0 # SKIP cannot mount a tmpfs for a small share"
	exit 0
fi
share_cleanup() {
	cleanup 2>/dev/null # unmounts snapfs; cannot remove the tmpfs itself
	umount "$SHARE" 2>/dev/null
	rm -rf "$WORK"
}
trap share_cleanup EXIT
plan 10

V=$MNT/tenants/acme/volumes
mount_snapfs || exit 1
mkdir "$MNT/tenants/acme" "$V/db"
hv "$V/db" "write -P 0x11 0 20M"
mkdir "$V/db/snapshots/s1"
hv "$V/db" "write -P 0x22 0 20M"
mkdir "$V/db/snapshots/s2"
# 16 MiB that s1's overlay lacks: committing them into it needs room
hv "$V/db" "write -P 0x33 512M 16M"
s1_sum=$(snap_expect "$V/db" s1)
to_raw "$(xattr user.active_file "$V/db")" "$WORK/live.raw"
live=$(sha256sum <"$WORK/live.raw")
rm -f "$WORK/live.raw"
fill=$(($(df --output=avail -B1M "$SHARE" | tail -1) - 4))
dd if=/dev/zero of="$SHARE/filler" bs=1M count="$fill" status=none 2>/dev/null

check_errno "rmdir s2 on a full share: ENOSPC" ENOSPC rmdir "$V/db/snapshots/s2"
check_eq "s2 is error_deleting" error_deleting "$(xattr user.status "$V/db/snapshots/s2")"
check "s2's disk.raw is refused" sh -c "! cat '$V/db/snapshots/s2/disk.raw' >/dev/null 2>&1"
check_eq "s1 keeps its bytes" "$s1_sum" "$(image_sum "$V/db/snapshots/s1/disk.raw")"
rm -f "$SHARE/filler"
check "with room again, force-delete finishes the merge" \
	setfattr -n user.force_delete -v 1 "$V/db/snapshots/s2"
check_errno "s2 is gone" ENOENT stat "$V/db/snapshots/s2"
to_raw "$(xattr user.active_file "$V/db")" "$WORK/live.raw"
check_eq "the live image kept every byte" "$live" "$(sha256sum <"$WORK/live.raw")"
rm -f "$WORK/live.raw"
check_eq "s1 still keeps its bytes" "$s1_sum" "$(image_sum "$V/db/snapshots/s1/disk.raw")"
check "qemu-img check passes on every file" qcow2_check "$(xattr user.id "$V/db")"
unmount_snapfs
finish
