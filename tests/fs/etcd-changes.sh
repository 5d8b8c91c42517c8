#!/bin/bash
# changes/ with the catalogue in etcd (SPEC section 10): two hosts on one
# share; while host b has snapshots/S/changes/<O> (or a group snapshot's
# member changes file) open, rmdir of either snapshot on host a answers
# EBUSY, as for an open disk.raw; once b closes it, a deletes them; b's
# changes/ follows a's merges.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C

for tool in qemu-img qemu-io etcd etcdctl; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP no $tool"
		exit 0
	fi
done
plan 14

lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
etcd_cluster_start || exit 1
mount_host a || exit 1
mount_host b || exit 1
A=$(host_mnt a) B=$(host_mnt b)
mkdir "$A/tenants/acme" "$A/tenants/acme/volumes/v"
W=tenants/acme/volumes/v
hv "$A/$W" "write -P 0x11 0 1M"
mkdir "$A/$W/snapshots/s1"
hv "$A/$W" "write -P 0x22 0 64k"
mkdir "$A/$W/snapshots/s2"
hv "$A/$W" "write -P 0x33 64k 64k"
mkdir "$A/$W/snapshots/s3"
check_eq "b lists s3's older snapshots" "s1 s2" "$(lsw "$B/$W/snapshots/s3/changes")"

exec 3<"$B/$W/snapshots/s3/changes/s1"
check_eq "b reads s3/changes/s1: s3's bytes where it changed" "22 33" \
	"$(dd if=/dev/fd/3 bs=65536 count=2 status=none | od -An -tx1 -w65536 | awk '{ print $1 }' | tr '\n' ' ' | sed 's/ $//')"
check_errno "rmdir of the older snapshot on a while b has the changes open" EBUSY rmdir "$A/$W/snapshots/s1"
check_errno "rmdir of the newer snapshot on a while b has the changes open" EBUSY rmdir "$A/$W/snapshots/s3"
check_errno "force-delete of s1 on a as well" EBUSY setfattr -n user.force_delete -v 1 "$A/$W/snapshots/s1"
check "the middle snapshot s2 is not held: rmdir on a merges it" rmdir_snap "$A/$W/snapshots/s2"
exec 3<&-
sleep 1 # b's copy of the catalogue follows a's within a second
check_eq "b's s3/changes/ no longer lists s2" "s1" "$(lsw "$B/$W/snapshots/s3/changes")"
check_eq "after the merge, s3/changes/s1 on b still holds both clusters" "131072" \
	"$(python3 -c "
import os
fd = os.open('$B/$W/snapshots/s3/changes/s1', os.O_RDONLY)
d = os.lseek(fd, 0, os.SEEK_DATA); print(os.lseek(fd, d, os.SEEK_HOLE) - d)")"
check "once b closed it, rmdir of s1 on a works" rmdir_snap "$A/$W/snapshots/s1"

# group snapshots
G=tenants/acme/consistencygroups/g
mkdir "$A/tenants/acme/volumes/m" "$A/$G"
ln -s ../../../volumes/m "$A/$G/volumes/m"
hv "$A/tenants/acme/volumes/m" "write -P 0x44 0 64k"
mkdir "$A/$G/cgsnapshots/c1"
hv "$A/tenants/acme/volumes/m" "write -P 0x55 0 64k"
mkdir "$A/$G/cgsnapshots/c2"
exec 3<"$B/$G/cgsnapshots/c2/changes/c1/m"
check_errno "rmdir of the older group snapshot on a while b has a member's changes open" EBUSY \
	rmdir "$A/$G/cgsnapshots/c1"
exec 3<&-
check "once closed, rmdir of c1 on a works" retry_busy rmdir "$A/$G/cgsnapshots/c1"
sleep 1
check_eq "b's c2/changes/ is empty" "" "$(lsw "$B/$G/cgsnapshots/c2/changes")"
unmount_host b
unmount_host a
finish
