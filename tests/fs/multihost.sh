#!/bin/bash
# multihost.sh - several hosts over one share and one etcd cluster behave as
# one system: the same tree everywhere, changes seen within a second, one
# operation per volume, no bytes of a snapshot another host merged, a dead
# host's operation finished or undone by another host, an etcd member lost,
# quorum lost and back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
. "$(dirname "$0")/snaplib.sh"

plan 80

etcd_cluster_start || exit 1
# attr_timeout=30: what a host's kernel cached goes stale for half a minute
# unless the other hosts' changes reach it as invalidations (every check
# that waits for a change on another host checks that too)
for h in a b c; do mount_host $h attr_timeout=30 || exit 1; done
A=$(host_mnt a) B=$(host_mnt b) C=$(host_mnt c)
T=tenants/acme

# poll_ms SECONDS CMD...: milliseconds until CMD succeeds, or "timeout".
poll_ms() {
	local limit=$1 t0 now
	shift
	t0=$(now_ms)
	while :; do
		if "$@" >/dev/null 2>&1; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		now=$(now_ms)
		if [ $((now - t0)) -gt $((limit * 1000)) ]; then
			echo timeout
			return 1
		fi
		sleep 0.01
	done
}
# under_1s DESC MS: a check that a measured delay is under one second.
under_1s() {
	if [ "$2" != timeout ] && [ "$2" -lt 1000 ]; then ok "$1 ($2 ms)"; else not_ok "$1 ($2 ms)"; fi
}
# tree_of MNT: every entry with its inode, type and mode, and the
# attributes of every object directory, as text to compare across hosts.
tree_of() {
	(cd "$1" && find tenants by-id -printf '%i %y %m %P\n' | sort -k4)
	(cd "$1" && find tenants -mindepth 1 -type d -printf '%P\n' | sort | while read -r p; do
		getfattr -d --absolute-names "$p" 2>/dev/null | grep -v '^# file'
	done)
}
has_value() { [ "$(xattr "$1" "$2")" = "$3" ]; }

# ---- one tree on every host ----
mkdir "$A/$T" "$A/$T/volumes/v" "$A/$T/consistencygroups/g"
setfattr -n user.description -v "made on a" "$A/$T/volumes/v"
setfattr -n user.meta.tier -v gold "$B/$T/volumes/v"
ln -s ../../../volumes/v "$C/$T/consistencygroups/g/volumes/v"
mkdir "$B/$T/volumes/v/snapshots/s0" "$A/$T/consistencygroups/g/cgsnapshots/c0"
setfattr -n user.status -v error "$C/$T/volumes/v/snapshots/s0"
sleep 0.3
ta=$(tree_of "$A") tb=$(tree_of "$B") tc=$(tree_of "$C")
check "the tree has volumes, snapshots, groups and group snapshots" \
	grep -q "consistencygroups/g/cgsnapshots/c0/v" <<<"$ta"
check_eq "host b: names, inodes, modes and attributes as on host a" "$ta" "$tb"
check_eq "host c: names, inodes, modes and attributes as on host a" "$ta" "$tc"
for f in volumes/v/info.json volumes/v/snapshots/s0/info.json consistencygroups/g/info.json \
	consistencygroups/g/cgsnapshots/c0/info.json; do
	check_eq "$f is the same on hosts a and c" "$(cat "$A/$T/$f")" "$(cat "$C/$T/$f")"
done
check "user.status set on c (error) is what a shows" has_value user.status "$A/$T/volumes/v/snapshots/s0" error
check "a group snapshot's member is named on b" test -L "$B/$T/consistencygroups/g/cgsnapshots/c0/v"

# ---- changes seen on the others within a second ----
setfattr -n user.meta.k -v v1 "$A/$T/volumes/v"
under_1s "metadata set on a is seen on b" "$(poll_ms 5 has_value user.meta.k "$B/$T/volumes/v" v1)"
mkdir "$C/$T/volumes/v/snapshots/s1"
under_1s "a snapshot made on c is seen on a" "$(poll_ms 5 test -d "$A/$T/volumes/v/snapshots/s1")"
mv "$B/$T/volumes/v/snapshots/s1" "$B/$T/volumes/v/snapshots/s1r"
under_1s "a rename on b is seen on c" "$(poll_ms 5 test -d "$C/$T/volumes/v/snapshots/s1r")"
check "the old name is gone on c" test ! -e "$C/$T/volumes/v/snapshots/s1"
setfattr -n user.status -v available "$A/$T/volumes/v/snapshots/s0"
rm "$A/$T/consistencygroups/g/volumes/v"
under_1s "a member removed on a is gone on b" \
	"$(poll_ms 5 test ! -L "$B/$T/consistencygroups/g/volumes/v")"

# ---- what b's kernel has just cached, dropped when a changes it ----
# b reads each path right before a's change; with attr_timeout=30 only the
# notice makes b fresh within the second.
mode_is() { [ "$(stat -c %a "$1")" = "$2" ]; }
mtime_not() { [ "$(stat -c %y "$1")" != "$2" ]; }
listed() { ls -l "$1" | grep -q " $2\$"; }
S=$T/volumes/v/snapshots
stat "$B/$S" "$B/$T/consistencygroups/g/cgsnapshots" >/dev/null
mode=$(stat -c %a "$A/$T")
chmod 0750 "$A/$T"
under_1s "chmod of the tenant on a: b's cached snapshots/ of its volume shows it" \
	"$(poll_ms 5 mode_is "$B/$S" 750)"
under_1s "and its groups' cgsnapshots/" \
	"$(poll_ms 5 mode_is "$B/$T/consistencygroups/g/cgsnapshots" 750)"
chmod "$mode" "$A/$T"
ls -l "$B/$S" >/dev/null
m0=$(stat -c %y "$B/$S")
mkdir "$A/$S/lsnew"
under_1s "a snapshot made on a is listed by ls -l on b" "$(poll_ms 5 listed "$B/$S" lsnew)"
under_1s "b's cached snapshots/ shows the new mtime" "$(poll_ms 5 mtime_not "$B/$S" "$m0")"
stat "$B/$S/lsnew" >/dev/null
rmdir "$A/$S/lsnew"
under_1s "deleted on a: b's cached snapshot is gone" "$(poll_ms 5 test ! -e "$B/$S/lsnew")"

# ---- no bytes of a snapshot another host merged ----
mkdir "$A/$T/volumes/w"
W=$T/volumes/w
hv "$A/$W" "write -P 0x11 0 1M"
mkdir "$A/$W/snapshots/s1"
hv "$A/$W" "write -P 0x22 0 1M"
mkdir "$A/$W/snapshots/s2"
exec 3<"$B/$W/snapshots/s1/disk.raw"
check_eq "b reads s1: 0x11" "11" "$(head -c 1 <&3 | od -An -tx1 | tr -d ' ')"
check_errno "rmdir of s1 on a while b reads it" EBUSY rmdir "$A/$W/snapshots/s1"
check_errno "force-delete of s1 on c while b reads it" EBUSY \
	setfattr -n user.force_delete -v 1 "$C/$W/snapshots/s1"
check_eq "b still reads s1: 0x11 at 512K" "11" \
	"$(dd if=/dev/fd/3 bs=1 skip=524288 count=1 status=none | od -An -tx1 | tr -d ' ')"
check "s1 is still available on every host" has_value user.status "$C/$W/snapshots/s1" available
exec 3<&-
check "after b closed it, rmdir of s1 on a works" rmdir_snap "$A/$W/snapshots/s1"
under_1s "s1 is gone on b" "$(poll_ms 5 test ! -e "$B/$W/snapshots/s1")"
check_errno "s1/disk.raw on b: ENOENT" ENOENT cat "$B/$W/snapshots/s1/disk.raw"
check_eq "s2 on b reads what qemu-img reads of its chain" "$(snap_expect "$A/$W" s2)" \
	"$(image_sum "$B/$W/snapshots/s2/disk.raw")"
check_eq "s2 on b: 0x22" "22" "$(head -c 1 "$B/$W/snapshots/s2/disk.raw" | od -An -tx1 | tr -d ' ')"

# ---- one operation per volume, from three hosts at once ----
mkdir "$A/$T/volumes/x"
X=$T/volumes/x
for i in 1 2; do hv "$A/$X" "write -P 0x3$i ${i}M 1M"; mkdir "$A/$X/snapshots/base$i"; done
race() { # HOST: snapshots made and deleted in a loop; prints the errors
	local m=$1 i
	for i in 1 2 3 4 5 6; do
		mkdir "$m/$X/snapshots/$2-$i" 2>&1
		rmdir "$m/$X/snapshots/base$((i % 2 + 1))" 2>&1
		[ $((i % 2)) -eq 0 ] && rmdir "$m/$X/snapshots/$2-$((i - 1))" 2>&1
	done
}
race "$A" a >"$WORK/race-a" & ra=$!
race "$B" b >"$WORK/race-b" & rb=$!
race "$C" c >"$WORK/race-c" & rc_=$!
wait $ra $rb $rc_
errors=$(cat "$WORK"/race-* | grep -v -e "Device or resource busy" -e "No such file or directory")
check_eq "concurrent mkdir/rmdir from three hosts: only EBUSY (or ENOENT of a name another took)" "" "$errors"
sleep 0.3
names=$(ls "$A/$X/snapshots" | tr '\n' ' ')
check "the volume is idle after the race" has_value user.status "$A/$X" available
vid=$(xattr user.id "$A/$X")
# shellcheck disable=SC2086
check_eq "after the race, .info agrees with the catalogue" \
	"$(info_expected "$A/$X" "$(xattr user.active_file "$A/$X")" $names)" "$(info_actual "$vid")"
check "after the race, qemu-img check passes on every file" qcow2_check "$vid"
bad=
for n in $names; do
	[ "$(snap_expect "$A/$X" "$n")" = "$(image_sum "$C/$X/snapshots/$n/disk.raw")" ] || bad+=" $n"
done
check_eq "after the race, every snapshot's disk.raw on c is what qemu-img reads" "" "$bad"
check_eq "the three hosts list the same snapshots" "$names|$names" \
	"$(ls "$B/$X/snapshots" | tr '\n' ' ')|$(ls "$C/$X/snapshots" | tr '\n' ' ')"

# ---- a host dies in the middle: another finishes or undoes ----
# crash_on_d STEP CMD...: host d runs CMD and is killed at STEP; then the
# lease runs out and a live host takes the operation over.
crash_on_d() {
	local step=$1
	shift
	SNAPFS_CRASH_AT=$step mount_host d || return 1
	"$@" >/dev/null 2>&1
	for _ in $(seq 1 30); do kill -0 "${HOST_PID[d]}" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "${HOST_PID[d]}" 2>/dev/null; then
		not_ok "$step: host d was killed there (it is alive)"
	else
		wait "${HOST_PID[d]}"
		check_eq "$step: host d was killed there" 137 "$?"
		HOST_PID[d]=
	fi
	kill_host d
}
idle() { has_value user.status "$1" available && mkdir "$1/snapshots/probe" && rmdir "$1/snapshots/probe"; }
D=$WORK/mnt-d
n=0
for step in snapshot-create-overlay snapshot-create-info; do
	n=$((n + 1))
	mkdir "$A/$T/volumes/k$n"
	hv "$A/$T/volumes/k$n" "write -P 0x4$n 0 1M"
	live=$(live_sum "$A/$T/volumes/k$n")
	crash_on_d "$step" mkdir "$D/$T/volumes/k$n/snapshots/new"
	ms=$(poll_ms $((ETCD_TTL + 8)) idle "$B/$T/volumes/k$n")
	check "$step: host b took the create over after the lease ($ms ms)" test "$ms" != timeout
	kid=$(xattr user.id "$B/$T/volumes/k$n")
	if [ -e "$B/$T/volumes/k$n/snapshots/new" ]; then names=new; else names=; fi
	[ "$step" = snapshot-create-info ] && want=new || want=
	check_eq "$step: the snapshot is $([ -n "$want" ] && echo finished || echo undone)" "$want" "$names"
	# shellcheck disable=SC2086
	check_eq "$step: .info agrees with the catalogue" \
		"$(info_expected "$B/$T/volumes/k$n" "$(xattr user.active_file "$B/$T/volumes/k$n")" $names)" \
		"$(info_actual "$kid")"
	# shellcheck disable=SC2086
	check_share_files "$step" "$B/$T/volumes/k$n" $names
	check_eq "$step: the live image is unchanged" "$live" "$(live_sum "$B/$T/volumes/k$n")"
	check "$step: qemu-img check" qcow2_check "$kid"
done
mkdir "$A/$T/volumes/k9"
hv "$A/$T/volumes/k9" "write -P 0x51 0 1M"
mkdir "$A/$T/volumes/k9/snapshots/s1"
hv "$A/$T/volumes/k9" "write -P 0x52 0 1M"
mkdir "$A/$T/volumes/k9/snapshots/s2"
live=$(live_sum "$A/$T/volumes/k9") want2=$(snap_expect "$A/$T/volumes/k9" s2)
crash_on_d snapshot-delete-commit rmdir "$D/$T/volumes/k9/snapshots/s1"
ms=$(poll_ms $((ETCD_TTL + 8)) test ! -e "$C/$T/volumes/k9/snapshots/s1")
check "snapshot-delete-commit: host a or c finished the delete after the lease ($ms ms)" test "$ms" != timeout
check "snapshot-delete-commit: the volume is idle again" idle "$C/$T/volumes/k9"
check_eq "snapshot-delete-commit: s2 reads as before" "$want2" "$(image_sum "$C/$T/volumes/k9/snapshots/s2/disk.raw")"
check_eq "snapshot-delete-commit: the live image is unchanged" "$live" "$(live_sum "$C/$T/volumes/k9")"
check_share_files "snapshot-delete-commit" "$C/$T/volumes/k9" s2
check "snapshot-delete-commit: qemu-img check" qcow2_check "$(xattr user.id "$C/$T/volumes/k9")"
mkdir "$A/$T/consistencygroups/h" "$A/$T/volumes/m1" "$A/$T/volumes/m2"
setfattr -n user.add_volumes -v m1,m2 "$A/$T/consistencygroups/h"
for step in cgsnapshot-create-overlays cgsnapshot-create-switching; do
	crash_on_d "$step" mkdir "$D/$T/consistencygroups/h/cgsnapshots/$step"
	ms=$(poll_ms $((ETCD_TTL + 8)) idle "$B/$T/volumes/m2")
	check "$step: host b settled the group snapshot after the lease ($ms ms)" test "$ms" != timeout
	if [ "$step" = cgsnapshot-create-overlays ]; then
		check "$step: undone (no group snapshot)" test ! -e "$B/$T/consistencygroups/h/cgsnapshots/$step"
	else
		check "$step: finished (available)" has_value user.status \
			"$B/$T/consistencygroups/h/cgsnapshots/$step" available
	fi
	for m in m1 m2; do
		# shellcheck disable=SC2046
		check_share_files "$step $m" "$B/$T/volumes/$m" $(ls "$B/$T/volumes/$m/snapshots")
	done
done

# ---- etcd: a member lost, then quorum lost and back ----
etcd_member_stop 1
check "one etcd member down: a snapshot is made on a" mkdir "$A/$W/snapshots/m1"
under_1s "one etcd member down: b sees it" "$(poll_ms 5 test -d "$B/$W/snapshots/m1")"
etcd_member_start 1 || exit 1
exec 3<"$C/$W/snapshots/s2/disk.raw"
etcd_member_stop 2
etcd_member_stop 3
t0=$(now_ms)
out=$(mkdir "$A/$W/snapshots/q1" 2>&1)
el=$(($(now_ms) - t0))
if grep -q -e "Input/output error" -e "Resource temporarily unavailable" <<<"$out"; then
	ok "quorum lost: mkdir fails with EIO or EAGAIN (${el} ms)"
else
	not_ok "quorum lost: mkdir fails with EIO or EAGAIN: $out"
fi
check "quorum lost: the snapshot was not made" test ! -e "$B/$W/snapshots/q1"
check_errno "quorum lost: setfattr fails" EIO setfattr -n user.meta.q -v 1 "$B/$W"
check "quorum lost: ls still works" ls "$C/$W/snapshots/s2"
check_eq "quorum lost: getfattr still works" available "$(xattr user.status "$B/$W")"
check_eq "quorum lost: an open disk.raw keeps reading (0x22)" "22" \
	"$(dd if=/dev/fd/3 bs=1 skip=4096 count=1 status=none | od -An -tx1 | tr -d ' ')"
exec 3<&-
etcd_member_start 2 || exit 1
etcd_member_start 3 || exit 1
ms=$(poll_ms 20 mkdir "$A/$W/snapshots/q2")
check "quorum back: changes work again without a remount ($ms ms)" test "$ms" != timeout
under_1s "quorum back: the new snapshot is seen on c" "$(poll_ms 5 test -d "$C/$W/snapshots/q2")"
check "the volume touched during the outage is idle" idle "$B/$W"

for h in a b c; do unmount_host $h; done
finish
