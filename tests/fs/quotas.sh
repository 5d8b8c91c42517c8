#!/bin/bash
# quotas.sh - tenant quotas as Cinder has them (user.quota.volumes,
# user.quota.snapshots, user.quota.gigabytes): each limit refuses with
# EDQUOT at its boundary (N allowed, N+1 refused, nothing new on the share or
# in the catalogue, a log line naming tenant, quota, use and limit); only
# admins set limits, bad values are EINVAL, a limit below the use is EINVAL
# (Cinder's quota update); usage (user.usage.*, user.quota_set) follows
# creates, extends and deletes, survives a remount and equals a recount of
# the tree after a kill -9 at every step of a create, extend or delete of a
# volume, a snapshot or a group snapshot; a
# group snapshot takes every member's snapshot or none; and two hosts on one
# etcd cluster racing for the last unit of a quota: exactly one wins.
# Needs a --enable-fault-injection build.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"

need_fault_injection
plan 129

A=$MNT/tenants/acme

# usage_of TENANTDIR: "volumes snapshots gigabytes" as snapfs counts them.
usage_of() {
	echo "$(xattr user.usage.volumes "$1") $(xattr user.usage.snapshots "$1")" \
		"$(xattr user.usage.gigabytes "$1")"
}
# recount TENANTDIR: the same counted from the tree: every volume and
# snapshot directory, and their user.size (GiB).
recount() {
	local v=0 s=0 g=0 d x
	for d in "$1"/volumes/*/; do
		[ -d "$d" ] || continue
		v=$((v + 1))
		g=$((g + $(xattr user.size "$d")))
		for x in "$d"snapshots/*/; do
			[ -d "$x" ] || continue
			s=$((s + 1))
			g=$((g + $(xattr user.size "$x")))
		done
	done
	echo "$v $s $g"
}
# state: what must not change when an operation is refused: the share's
# files with their checksums, every path of the tree, and the ids.
state() {
	(cd "$SHARE" && find . -type f -printf '%P ' -exec md5sum {} \; | sort)
	(cd "$MNT" && find tenants by-id | sort)
}
setq() { setfattr -n "user.quota.$1" -v "$2" "$3"; }
logged() { grep -q "$1" "$LOG"; }

mount_snapfs "admin_group=$ADMINS" || exit 1
mkdir "$A"
chgrp "$TEAM" "$A"
chmod 2770 "$A"

# ---- defaults: unlimited, nothing in use ----
for q in volumes snapshots gigabytes; do
	check_eq "user.quota.$q is -1 (unlimited) when unset" -1 "$(xattr "user.quota.$q" "$A")"
done
check_eq "nothing in use in a new tenant" "0 0 0" "$(usage_of "$A")"
check "getfattr -d lists the quotas and the usage" \
	bash -c "getfattr -d '$A' | grep -q '^user.quota.gigabytes=\"-1\"' &&
		 getfattr -d '$A' | grep -q '^user.usage.volumes=\"0\"'"

# ---- who may set limits, and which values ----
check_errno "a tenant member may not set a quota" EPERM \
	as $ALICE $TEAM -- setfattr -n user.quota.volumes -v 5 "$A"
check_errno "a tenant member may not remove a quota" EPERM \
	as $ALICE $TEAM -- setfattr -x user.quota.volumes "$A"
check_eq "a tenant member reads the usage" "0" \
	"$(as $ALICE $TEAM -- getfattr --absolute-names --only-values -n user.usage.volumes "$A" 2>&1)"
check "an admin_group member sets a quota" \
	as $CAROL "$ADMINS,$TEAM" -- setfattr -n user.quota.volumes -v 7 "$A"
check_eq "the limit is kept" 7 "$(xattr user.quota.volumes "$A")"
for bad in abc -2 1.5 1G 2147483648 " 3" 07 ""; do
	check_errno "user.quota.volumes='$bad' is EINVAL" EINVAL setq volumes "$bad" "$A"
done
check_eq "a bad value changes nothing" 7 "$(xattr user.quota.volumes "$A")"
check_errno "user.quota.backups is not an attribute" ENOTSUP setq backups 1 "$A"
check_errno "user.usage.volumes is read-only" EPERM \
	setfattr -n user.usage.volumes -v 1 "$A"
check_errno "no quotas on a volume" ENOTSUP bash -c \
	"mkdir '$A/volumes/tmp' && setfattr -n user.quota.volumes -v 1 '$A/volumes/tmp'"
rmdir "$A/volumes/tmp"

# ---- volumes: N allowed, N+1 refused ----
check "user.quota.volumes=2" setq volumes 2 "$A"
check "a member creates volume 1 of 2" as $ALICE $TEAM -- mkdir "$A/volumes/v1"
check "a member creates volume 2 of 2" as $ALICE $TEAM -- mkdir "$A/volumes/v2"
before=$(state)
check_errno "volume 3 of 2 is EDQUOT" EDQUOT as $ALICE $TEAM -- mkdir "$A/volumes/v3"
check_eq "nothing created on the share or in the tree" "$before" "$(state)"
check "the refusal names tenant, quota, use and limit" \
	logged "tenant acme ([0-9a-f-]*) quota volumes exceeded: in use 2, asked 1, limit 2"
check_eq "usage: 2 volumes, 2 GiB" "2 0 2" "$(usage_of "$A")"
# Cinder's quota update: not below what is in use
check_errno "user.quota.volumes=1 below 2 in use is EINVAL" EINVAL setq volumes 1 "$A"
check "the refusal is logged" logged "quota volumes 1 refused: below the 2 in use"
check_eq "the limit stays 2" 2 "$(xattr user.quota.volumes "$A")"
check "setfattr -x user.quota.volumes: unlimited again" setfattr -x user.quota.volumes "$A"
check_eq "removed: -1" -1 "$(xattr user.quota.volumes "$A")"
check "then volume 3 is allowed" mkdir "$A/volumes/v3"
rmdir "$A/volumes/v3"

# ---- snapshots ----
check "user.quota.snapshots=2" setq snapshots 2 "$A"
check "snapshot 1 of 2" as $ALICE $TEAM -- mkdir "$A/volumes/v1/snapshots/s1"
check "snapshot 2 of 2" as $ALICE $TEAM -- mkdir "$A/volumes/v1/snapshots/s2"
before=$(state)
check_errno "snapshot 3 of 2 is EDQUOT" EDQUOT as $ALICE $TEAM -- mkdir "$A/volumes/v1/snapshots/s3"
check_eq "no overlay, no .info change, no entry" "$before" "$(state)"
check_eq "the volume stays available" available "$(xattr user.status "$A/volumes/v1")"
check "the refusal is logged" logged "quota snapshots exceeded: in use 2, asked 1, limit 2"
check_eq "usage: 2 volumes, 2 snapshots, 4 GiB (snapshots count their size)" "2 2 4" \
	"$(usage_of "$A")"
check "setfattr -x user.quota.snapshots" setfattr -x user.quota.snapshots "$A"

# ---- gigabytes: volumes, snapshots and extends ----
check "user.quota.gigabytes=5" setq gigabytes 5 "$A"
check "volume v3 (1 GiB) fills 5 of 5 GiB" mkdir "$A/volumes/v3"
before=$(state)
check_errno "volume v4 (1 GiB more) is EDQUOT" EDQUOT mkdir "$A/volumes/v4"
check_errno "extending v3 to 2G is EDQUOT" EDQUOT setfattr -n user.size -v 2G "$A/volumes/v3"
check_errno "a snapshot of v2 (1 GiB) is EDQUOT" EDQUOT mkdir "$A/volumes/v2/snapshots/s"
check_eq "nothing changed by the three refusals" "$before" "$(state)"
check_eq "v3 keeps 1 GiB and is available" "1 available" \
	"$(xattr user.size "$A/volumes/v3") $(xattr user.status "$A/volumes/v3")"
check "the extend's refusal is logged" \
	logged "volume extend refused: tenant acme ([0-9a-f-]*) quota gigabytes exceeded: in use 5, asked 1, limit 5"
check "deleting snapshot s2 releases its GiB" rmdir "$A/volumes/v1/snapshots/s2"
check_eq "usage: 3 volumes, 1 snapshot, 4 GiB" "3 1 4" "$(usage_of "$A")"
check "now v3 extends to 2G" setfattr -n user.size -v 2G "$A/volumes/v3"
check_eq "usage: 5 GiB" "3 1 5" "$(usage_of "$A")"
json=$(xattr user.quota_set "$A")
check_eq "user.quota_set: Cinder's quota set with usage" \
	"$(xattr user.id "$A") 5 5 3 -1 1" \
	"$(echo "$json" | jq -r '.quota_set | "\(.id) \(.gigabytes.limit) \(.gigabytes.in_use) \(.volumes.in_use) \(.volumes.limit) \(.snapshots.in_use)"')"
check_eq "usage is what the tree holds" "$(recount "$A")" "$(usage_of "$A")"

# ---- group snapshots: every member's snapshot or none ----
G=$MNT/tenants/grp
mkdir "$G" "$G/volumes/a" "$G/volumes/b" "$G/volumes/c" "$G/consistencygroups/cg"
setfattr -n user.add_volumes -v a,b,c "$G/consistencygroups/cg"
mkdir "$G/volumes/a/snapshots/old"
check "user.quota.snapshots=3 with 1 in use" setq snapshots 3 "$G"
before=$(state)
check_errno "a group snapshot of 3 members is EDQUOT" EDQUOT mkdir "$G/consistencygroups/cg/cgsnapshots/c1"
check_eq "no member snapshot, no group snapshot, no file" "$before" "$(state)"
check "the refusal is logged once for the whole group snapshot" \
	logged "group snapshot create refused: tenant grp ([0-9a-f-]*) quota snapshots exceeded: in use 1, asked 3, limit 3"
check "user.quota.snapshots=4" setq snapshots 4 "$G"
check "the group snapshot fits" mkdir "$G/consistencygroups/cg/cgsnapshots/c1"
check_eq "usage: 3 volumes, 4 snapshots, 7 GiB" "3 4 7" "$(usage_of "$G")"
check "deleting the group snapshot" rmdir "$G/consistencygroups/cg/cgsnapshots/c1"
check_eq "releases its 3 member snapshots" "3 1 4" "$(usage_of "$G")"
check "user.quota.volumes=4" setq volumes 4 "$G"
mkdir "$G/consistencygroups/cg2"
before=$(state)
check_errno "filling a group with 3 copies over the volumes quota is EDQUOT" EDQUOT \
	setfattr -n user.source -v consistencygroups/cg "$G/consistencygroups/cg2"
check_eq "no copy made" "$before" "$(state)"

# ---- remount ----
acme_before="$(usage_of "$A") $(xattr user.quota.gigabytes "$A")"
grp_before="$(usage_of "$G") $(xattr user.quota.snapshots "$G") $(xattr user.quota.volumes "$G")"
unmount_snapfs
mount_snapfs "admin_group=$ADMINS" || exit 1
check_eq "acme's usage and limit survive a remount" "$acme_before" \
	"$(usage_of "$A") $(xattr user.quota.gigabytes "$A")"
check_eq "grp's usage and limits survive a remount" "$grp_before" \
	"$(usage_of "$G") $(xattr user.quota.snapshots "$G") $(xattr user.quota.volumes "$G")"
check_errno "and still refuse" EDQUOT mkdir "$A/volumes/v9"

# ---- kill -9 in the middle of creates, extends and deletes ----
C=$MNT/tenants/crash
mkdir "$C" "$C/volumes/base" "$C/volumes/m1" "$C/volumes/m2" "$C/consistencygroups/g"
setfattr -n user.add_volumes -v m1,m2 "$C/consistencygroups/g"
setq volumes 100 "$C"
quiet_unmount() {
	fusermount3 -u "$MNT"
	wait "$SNAPFS_PID"
	SNAPFS_PID=
}
n=0
for step in volume-create-recorded volume-create-file \
	volume-extend-recorded volume-extend-file \
	volume-delete-recorded volume-delete-file \
	snapshot-create-recorded snapshot-create-overlay snapshot-create-info \
	snapshot-delete-recorded snapshot-delete-commit snapshot-delete-info snapshot-delete-unlink \
	cgsnapshot-create-recorded cgsnapshot-create-overlays cgsnapshot-create-info \
	cgsnapshot-delete-recorded cgsnapshot-delete-member; do
	n=$((n + 1))
	case $step in
	volume-create-*) cmd=(mkdir "$C/volumes/new$n") ;;
	volume-extend-*)
		mkdir "$C/volumes/x$n"
		cmd=(setfattr -n user.size -v 3G "$C/volumes/x$n")
		;;
	volume-delete-*)
		mkdir "$C/volumes/d$n"
		cmd=(rmdir "$C/volumes/d$n")
		;;
	snapshot-create-*) cmd=(mkdir "$C/volumes/base/snapshots/s$n") ;;
	snapshot-delete-*)
		mkdir "$C/volumes/base/snapshots/d$n"
		cmd=(rmdir "$C/volumes/base/snapshots/d$n")
		;;
	cgsnapshot-create-*) cmd=(mkdir "$C/consistencygroups/g/cgsnapshots/c$n") ;;
	cgsnapshot-delete-*)
		mkdir "$C/consistencygroups/g/cgsnapshots/d$n"
		cmd=(rmdir "$C/consistencygroups/g/cgsnapshots/d$n")
		;;
	esac
	quiet_unmount
	crash_during "$step" "${cmd[@]}" || exit 1
	check_eq "$step: usage after recovery equals a recount" "$(recount "$C")" "$(usage_of "$C")"
done
# The recount is what the quota enforces: a limit at the recount refuses one more.
vols=$(recount "$C" | cut -d' ' -f1)
check "user.quota.volumes at the recount ($vols)" setq volumes "$vols" "$C"
check_errno "one more volume is EDQUOT" EDQUOT mkdir "$C/volumes/one-more"
check_eq "and the recount did not move" "$vols" "$(recount "$C" | cut -d' ' -f1)"
unmount_snapfs

# ---- two hosts on one etcd cluster racing for the last unit ----
files_before=$(find "$SHARE" -maxdepth 1 -name 'volume-*' ! -name '*.*' | wc -l)
etcd_cluster_start || exit 1
mount_host a "admin_group=$ADMINS" || exit 1
mount_host b "admin_group=$ADMINS" || exit 1
HA=$(host_mnt a)/tenants/race HB=$(host_mnt b)/tenants/race
mkdir "$HA"
for i in $(seq 1 50); do [ -d "$HB" ] && break; sleep 0.1; done
setq volumes 0 "$HA"
# race WHAT_A WHAT_B: both commands start at once (a barrier file); prints
# "rc_a rc_b" (0 or the errno text).
race() {
	rm -f "$WORK/go"
	(while [ ! -e "$WORK/go" ]; do sleep 0.002; done
	 t=$(date +%s%N); bash -c "$1" 2>"$WORK/err-a"; echo $? >"$WORK/rc-a"
	 echo "$t $(date +%s%N)" >"$WORK/t-a") &
	local pa=$!
	(while [ ! -e "$WORK/go" ]; do sleep 0.002; done
	 t=$(date +%s%N); bash -c "$2" 2>"$WORK/err-b"; echo $? >"$WORK/rc-b"
	 echo "$t $(date +%s%N)" >"$WORK/t-b") &
	local pb=$!
	sleep 0.2
	touch "$WORK/go"
	wait $pa $pb
	local sa ea sb eb
	read -r sa ea <"$WORK/t-a"
	read -r sb eb <"$WORK/t-b"
	# how the two calls met: both under way at once, or one after the other
	if [ "$sa" -lt "$eb" ] && [ "$sb" -lt "$ea" ]; then
		OVERLAPPED=$((OVERLAPPED + 1))
	fi
	RACES=$((RACES + 1))
}
OVERLAPPED=0 RACES=0
outcome() {
	local w=0 q=0 h
	for h in a b; do
		if [ "$(cat "$WORK/rc-$h")" = 0 ]; then
			w=$((w + 1))
		elif grep -q "Disk quota exceeded" "$WORK/err-$h"; then
			q=$((q + 1))
		fi
	done
	echo "$w won, $q EDQUOT"
}
# settled DIR EXPECTED: usage on DIR reaches EXPECTED within 2 s.
settled() {
	local i
	for i in $(seq 1 40); do
		[ "$(usage_of "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
for r in 1 2 3 4 5; do
	setq volumes "$r" "$HA"
	for i in $(seq 1 40); do [ "$(xattr user.quota.volumes "$HB")" = "$r" ] && break; sleep 0.05; done
	race "mkdir '$HA/volumes/a$r'" "mkdir '$HB/volumes/b$r'"
	check_eq "round $r: two hosts race for the last volume: exactly one wins" \
		"1 won, 1 EDQUOT" "$(outcome)"
	check "round $r: both hosts count $r volumes" \
		bash -c "$(declare -f usage_of xattr settled); settled '$HA' '$r 0 $r' && settled '$HB' '$r 0 $r'"
done
check_eq "the share holds 5 more volume files" $((files_before + 5)) \
	"$(find "$SHARE" -maxdepth 1 -name 'volume-*' ! -name '*.*' | wc -l)"
# two volumes (one operation per volume: the race is for the quota only)
va=$(ls "$HA/volumes" | sed -n 1p) vb=$(ls "$HA/volumes" | sed -n 2p)
setq snapshots 1 "$HA"
race "mkdir '$HA/volumes/$va/snapshots/sa'" "mkdir '$HB/volumes/$vb/snapshots/sb'"
check_eq "the last snapshot: exactly one host wins" "1 won, 1 EDQUOT" "$(outcome)"
check "both hosts count one snapshot" \
	bash -c "$(declare -f usage_of xattr settled); settled '$HA' '5 1 6' && settled '$HB' '5 1 6'"
echo "# the two hosts' calls overlapped in time in $OVERLAPPED of $RACES races"
unmount_host a
unmount_host b
finish
