#!/bin/bash
# multihost.sh - several hosts over one share and one etcd cluster behave as
# one system: the same tree everywhere, changes seen within a second, one
# operation per volume (also while another host merges), no bytes of a
# snapshot another host merged, a dead host's open snapshot released with its
# lease; a host killed at every fault point of snapshot create and delete and
# group snapshot create, its operation finished or undone by another host
# after the lease with the outcomes of snapshot-crash.sh and group-crash.sh,
# or at once by the same host_id coming back; an etcd member (the leader)
# lost; quorum lost (changes fail, nothing half done or applied later, reads
# go on) and back, an operation cut by the quorum loss finished by its own
# host once etcd is back; every file any host made on the share (also in a
# dead host's operation another host finished) has the share's file policy.
# Needs a --enable-fault-injection build.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcdlib.sh"
. "$(dirname "$0")/snaplib.sh"

need_fault_injection
plan 391

# Host c's qemu-img waits while $WORK/slow exists (20 s at most): a merge on
# c then lasts until the test has met it from the other hosts.
cat >"$WORK/slow-qemu-img" <<EOF
#!/bin/sh
i=0
while [ -e "$WORK/slow" ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i + 1)); done
exec qemu-img "\$@"
EOF
chmod 755 "$WORK/slow-qemu-img"

etcd_cluster_start || exit 1
# The share belongs to Cinder (ALICE) and the hypervisor's group (TEAM); the
# daemons' umask would strip every group bit (docs/snapfs.md section 12).
chown "$ALICE:$TEAM" "$SHARE"
chmod 0770 "$SHARE"
umask 077
# attr_timeout=30: what a host's kernel cached goes stale for half a minute
# unless the other hosts' changes reach it as invalidations (every check
# that waits for a change on another host checks that too)
mount_host a attr_timeout=30 || exit 1
mount_host b attr_timeout=30 || exit 1
mount_host c "qemu_img=$WORK/slow-qemu-img,attr_timeout=30" || exit 1
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
idle() { has_value user.status "$1" available && mkdir "$1/snapshots/probe" && rmdir "$1/snapshots/probe"; }
# host_exit NAME: sets HOST_RC to the exit status of host NAME's daemon,
# which is to kill itself (a fault point: 137) within 30 s ("alive" if not:
# then it is killed); clears its stale mount.
host_exit() {
	local pid=${HOST_PID[$1]}
	timeout 30 tail --pid="$pid" -f /dev/null
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		HOST_RC=alive
	else
		wait "$pid"
		HOST_RC=$?
	fi
	HOST_PID[$1]=
	kill_host "$1"
}

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
check_eq "a host that mounted registered once: no host saw another leave" "" \
	"$(grep -h "is gone" "$WORK"/snapfs-[abc].log)"

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

# ---- the writer lock: kept by a writing host, not by an idle one ----
# A host keeps the lock after a write and lets it go after 100 ms without
# one, or at once when another host asks (P/w/<host>).
setfattr -n user.meta.lk -v 1 "$A/$X"
sleep 0.5
check_eq "the writer lock is let go by a host that stopped writing" "" \
	"$(etcd_ctl get --print-value-only "$ETCD_PREFIX/c/L")"
busy_writer() { # MNT SECONDS: setfattr without pause
	local end=$(($(now_ms) + $2 * 1000)) i=0
	while [ "$(now_ms)" -lt "$end" ]; do
		setfattr -n user.meta.busy -v $((i++)) "$1/$X" || return 1
	done
}
busy_writer "$A" 3 & bw=$!
sleep 0.5
worst=0
for i in 1 2 3 4 5; do
	t0=$(now_ms)
	setfattr -n user.meta.from_b -v "$i" "$B/$X" || worst=failed
	el=$(($(now_ms) - t0))
	[ "$worst" != failed ] && [ "$el" -gt "$worst" ] && worst=$el
done
wait $bw
bw_rc=$?
check "a host writing without pause keeps writing" test "$bw_rc" -eq 0
under_1s "another host's write meanwhile gets the lock (slowest of 5)" "$worst"
check "its last value is there" has_value user.meta.from_b "$A/$X" 5

# ---- one operation per volume: a merge in progress on c ----
mkdir "$A/$T/volumes/sv"
SV=$T/volumes/sv
hv "$A/$SV" "write -P 0x61 0 1M"
mkdir "$A/$SV/snapshots/first"
hv "$A/$SV" "write -P 0x62 0 1M"
mkdir "$A/$SV/snapshots/second"
touch "$WORK/slow"
rmdir "$C/$SV/snapshots/first" 2>"$WORK/slow-rmdir.err" &
slow=$!
under_1s "a sees the snapshot c is deleting in status deleting" \
	"$(poll_ms 5 has_value user.status "$A/$SV/snapshots/first" deleting)"
check_errno "b: mkdir of a snapshot of the volume c merges: EBUSY" EBUSY mkdir "$B/$SV/snapshots/while"
check_errno "a: rmdir of another snapshot of that volume: EBUSY" EBUSY rmdir "$A/$SV/snapshots/second"
check "b: another volume is not held (mkdir of a snapshot of x)" mkdir "$B/$X/snapshots/other"
rm -f "$WORK/slow"
wait "$slow"
check_eq "c's delete succeeds once its qemu-img goes on" "0 " "$? $(cat "$WORK/slow-rmdir.err")"
check "b: the volume takes a snapshot again" mkdir "$B/$SV/snapshots/while"

# ---- a host killed at every fault point: another host settles it ----
# Every fault point of snapshot create, snapshot delete and group snapshot
# create on volumes without QEMU, with the scenarios and outcomes of
# snapshot-crash.sh and group-crash.sh (the *-qmp-*, snapshot-delete-pushed
# and -job points need the dead host's QEMU: attached-crash.sh). One volume
# (a tenant of three volumes in group G for a group snapshot) per scenario,
# made through host a; then one host per scenario, k0 k1 ..., mounts with
# SNAPFS_CRASH_AT=<step>, starts the operation and is killed there, all at
# once, and host r, which holds a snapshot open, is killed with them: one
# lease expiry for all. Hosts a, b, c stay up and settle everything.
CREATE_CASES="snapshot-create-recorded:undone snapshot-create-overlay:undone snapshot-create-info:kept"
# step:snapshot deleted (s1 oldest, merged into the raw base; s2 middle; s3
# newest); :force is an admin's force-delete of s2 in status creating.
DELETE_CASES="snapshot-delete-recorded:s2 snapshot-delete-recorded:s3
	snapshot-delete-commit:s2 snapshot-delete-commit:s3 snapshot-delete-commit:s1
	snapshot-delete-rebase:s2 snapshot-delete-rebase:s1
	snapshot-delete-info:s2 snapshot-delete-info:s3
	snapshot-delete-unlink:s2 snapshot-delete-unlink:s3 snapshot-delete-commit:s2:force"
CG_CASES="cgsnapshot-create-recorded:undone cgsnapshot-create-overlays:undone
	cgsnapshot-create-switching:kept cgsnapshot-create-info-1:kept cgsnapshot-create-info:kept"
K=tenants/crash/volumes
declare -A EXP SID LIVE
EXP_BY_VOLUME=1 # check_volume reads EXP[<volume name>/<snapshot name>]
mkdir "$A/tenants/crash"
exp_c1='' live_c='' live_d=''

case_volume() { local v=${1#snapshot-}; echo "${v//:/-}"; } # step:target[:force] -> volume name
cg_tenant() { echo "cg-${1#cgsnapshot-create-}"; }
# par N FN ARG...: FN ARG for every ARG, in N lanes at once (ARG i in lane
# i % N, each lane in order); FN's output for ARG i in $WORK/par.i.
par() {
	local n=$1 fn=$2 lane pids=()
	shift 2
	local args=("$@")
	rm -f "$WORK"/par.*
	for ((lane = 0; lane < n; lane++)); do
		(
			for ((i = lane; i < ${#args[@]}; i += n)); do
				"$fn" "${args[$i]}" >"$WORK/par.$i" 2>&1
			done
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
}
# par_checks N FN ARG...: par, then the TAP lines of every ARG in order,
# numbered on.
par_checks() {
	local f line i
	par "$@"
	for ((i = 0; i < $# - 2; i++)); do
		f=$WORK/par.$i
		[ -f "$f" ] || { not_ok "no output from $2 ${*:$((i + 3)):1}"; continue; }
		while IFS= read -r line; do
			case $line in
			"ok "*) ok "${line#ok * - }" ;;
			"not ok "*) not_ok "${line#not ok * - }" ;;
			*) echo "$line" ;;
			esac
		done <"$f"
	done
}
# The volumes of a kind get the same writes, as in snapshot-crash.sh and
# group-crash.sh; the first is made alone and gives the expected bytes.
make_create_volume() { # CASE
	local d=$A/$K/$(case_volume "${1%:*}")
	mkdir "$d"
	hv "$d" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
	mkdir "$d/snapshots/s1"
	hv "$d" "write -P 0xb1 1M 1M" "write -c -P 0xb2 4M 64k" "write -z 0 64k"
}
make_delete_volume() { # CASE
	local d=$A/$K/$(case_volume "$1")
	mkdir "$d"
	hv "$d" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
	mkdir "$d/snapshots/s1"
	hv "$d" "write -P 0xb1 1M 1M" "write -c -P 0xb2 4M 64k" "write -z 0 64k" "write -P 0xb3 $((END + 4096)) 4k"
	mkdir "$d/snapshots/s2"
	hv "$d" "write -P 0xc1 2M 64k" "discard 1M 64k" "write -P 0xc2 $((5 * MIB + 100)) 300"
	mkdir "$d/snapshots/s3"
	hv "$d" "write -P 0xd1 3M 128k" "write -z 2M 64k"
	case $1 in *:force) setfattr -n user.status -v creating "$d/snapshots/s2" ;; esac
}
make_cg_tenant() { # CASE
	local t=$A/tenants/$(cg_tenant "${1%:*}")
	mkdir "$t" "$t/volumes/a" "$t/volumes/b" "$t/volumes/c"
	hv "$t/volumes/a" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
	hv "$t/volumes/b" "write -P 0xb1 1M 2M" "write -z 1536k 256k" "write -P 0xb2 $((GIB - 4096)) 4096"
	hv "$t/volumes/c" "write -P 0xc1 512k 512k" "write -P 0xc2 $((END + 65536)) 128k" "write -P 0xc3 7M 1M"
	mkdir "$t/volumes/a/snapshots/s1"
	hv "$t/volumes/a" "write -c -P 0xa3 4M 64k" "write -z 0 64k"
	mkdir "$t/consistencygroups/G"
	setfattr -n user.add_volumes -v a,b,c "$t/consistencygroups/G"
}
set -- $CREATE_CASES
make_create_volume "$1"
d=$A/$K/$(case_volume "${1%:*}")
exp_c1=$(snap_expect "$d" s1) live_c=$(live_sum "$d")
shift
par 3 make_create_volume "$@"
set -- $DELETE_CASES
make_delete_volume "$1"
d=$A/$K/$(case_volume "$1")
for n in s1 s2 s3; do EXP[tmpl/$n]=$(snap_expect "$d" $n); done
live_d=$(live_sum "$d")
shift
par 3 make_delete_volume "$@"
set -- $CG_CASES
make_cg_tenant "$1"
t=$A/tenants/$(cg_tenant "${1%:*}")
EXP[a/s1]=$(snap_expect "$t/volumes/a" s1)
for v in a b c; do LIVE[$v]=$(live_sum "$t/volumes/$v") EXP[$v/C]=$(live_sum "$t/volumes/$v"); done
shift
par 3 make_cg_tenant "$@"
set --
for c in $CREATE_CASES; do
	vol=$(case_volume "${c%:*}")
	EXP[$vol/s1]=$exp_c1 EXP[$vol/new]=$live_c
done
for c in $DELETE_CASES; do
	vol=$(case_volume "$c")
	for n in s1 s2 s3; do
		EXP[$vol/$n]=${EXP[tmpl/$n]}
		SID[$vol/$n]=$(xattr user.id "$A/$K/$vol/snapshots/$n")
	done
done
# The snapshot that host r reads when it dies.
mkdir "$A/$K/held"
hv "$A/$K/held" "write -P 0x71 0 1M"
mkdir "$A/$K/held/snapshots/s1"
hv "$A/$K/held" "write -P 0x72 0 1M"

# The crashing hosts: k<i> runs CMD[i] with SNAPFS_CRASH_AT=STEP[i].
STEP=() CMD=()
for c in $CREATE_CASES; do STEP+=("${c%:*}") CMD+=("mkdir $K/$(case_volume "${c%:*}")/snapshots/new"); done
for c in $DELETE_CASES; do
	s=${c#*:}
	STEP+=("${c%%:*}")
	case $c in
	*:force) CMD+=("setfattr -n user.force_delete -v 1 $K/$(case_volume "$c")/snapshots/${s%:*}") ;;
	*) CMD+=("rmdir $K/$(case_volume "$c")/snapshots/$s") ;;
	esac
done
for c in $CG_CASES; do STEP+=("${c%:*}") CMD+=("mkdir tenants/$(cg_tenant "${c%:*}")/consistencygroups/G/cgsnapshots/C"); done
t0=$(now_ms)
for i in "${!STEP[@]}"; do SNAPFS_CRASH_AT=${STEP[$i]} mount_host_start "k$i"; done
mount_host_start r
for i in "${!STEP[@]}"; do mount_host_wait "k$i" || exit 1; done
mount_host_wait r || exit 1
echo "# ${#STEP[@]} crashing hosts and r mounted in $(($(now_ms) - t0)) ms"
R=$(host_mnt r)
exec 4<"$R/$K/held/snapshots/s1/disk.raw"
check_eq "r reads held's s1 (0x71)" "71" "$(head -c 1 <&4 | od -An -tx1 | tr -d ' ')"
check_errno "r holds held's s1 open: a's rmdir of it: EBUSY" EBUSY rmdir "$A/$K/held/snapshots/s1"
ops=()
for i in "${!STEP[@]}"; do
	# shellcheck disable=SC2086
	(cd "$(host_mnt "k$i")" && timeout -s KILL 60 ${CMD[$i]}) >/dev/null 2>&1 &
	ops+=($!)
done
kill_host r
exec 4<&-
# Each host kills itself at its step (exit status 137), within 30 s.
died=
for i in "${!STEP[@]}"; do
	host_exit "k$i"
	[ "$HOST_RC" = 137 ] || died+=" k$i(${STEP[$i]}):$HOST_RC"
done
wait "${ops[@]}"
check_eq "every crashing host was killed at its fault point (exit 137)" "" "$died"
t_dead=$(now_ms)

# settled: no scenario is left midway, as host b sees them.
settled() {
	local c t s
	for c in $CREATE_CASES; do
		s=$B/$K/$(case_volume "${c%:*}")
		[ -e "$s/snapshots/new" ] && ! has_value user.status "$s/snapshots/new" available && return 1
		has_value user.status "$s" available || return 1
	done
	for c in $DELETE_CASES; do
		s=${c#*:}
		[ -e "$B/$K/$(case_volume "$c")/snapshots/${s%:*}" ] && return 1
	done
	for c in $CG_CASES; do
		t=$B/tenants/$(cg_tenant "${c%:*}")
		[ -e "$t/consistencygroups/G/cgsnapshots/C" ] &&
			! has_value user.status "$t/consistencygroups/G/cgsnapshots/C" available && return 1
		has_value user.status "$t/volumes/b" available || return 1
	done
	return 0
}
ms=$(poll_ms $((ETCD_TTL + 8)) settled)
check "every dead host's operation is settled by a live host after the leases ($ms ms after the last died, ttl $ETCD_TTL s)" \
	test "$ms" != timeout
check "r's lease is gone: a's rmdir of the snapshot r held works" rmdir_snap "$A/$K/held/snapshots/s1"

# Creates: undone before .info names the overlay, finished after it.
outcome_ok() { # MOUNT VOLDIR: the snapshot "new" is whole (id, by-id link) or gone (no link)
	local m=$1 d=$2 sid
	if [ -e "$d/snapshots/new" ]; then
		sid=$(xattr user.id "$d/snapshots/new")
		[ -n "$sid" ] && [ "$(readlink "$m/by-id/$sid")" = "../${d#"$m"/}/snapshots/new" ]
	else
		! ls -l "$m/by-id" | grep -q "volumes/$(basename "$d")/snapshots/new"
	fi
}
create_checks() { # CASE
	local c=$1 step=${1%:*} want=${1#*:} vol d got names
	vol=$(case_volume "$step") d=$A/$K/$(case_volume "$step")
	got=undone names=s1
	[ -e "$d/snapshots/new" ] && got=kept names="s1 new"
	check_eq "$step: the snapshot is $want" "$want" "$got"
	check "$step: the snapshot is whole or gone on a and on c, by-id too" \
		eval "outcome_ok '$A' '$d' && outcome_ok '$C' '$C/$K/$vol'"
	# shellcheck disable=SC2086
	check_volume "$step" "$d" "$live_c" $names
	check "$step: b takes a new snapshot of the volume" mkdir "$B/$K/$vol/snapshots/after"
}
# Deletes: always finished.
delete_checks() { # CASE
	local c=$1 vol target=${1#*:} d names='' n
	vol=$(case_volume "$c") d=$A/$K/$(case_volume "$c")
	target=${target%:*}
	for n in s1 s2 s3; do [ $n = "$target" ] || names+=" $n"; done
	check "$vol: the delete of $target is finished (gone on a and c, by-id too)" eval \
		"[ ! -e '$d/snapshots/$target' ] && [ ! -e '$C/$K/$vol/snapshots/$target' ] && [ ! -L '$A/by-id/${SID[$vol/$target]-x}' ]"
	check "$vol: the overlay of $target is gone" test ! -e "$SHARE/volume-$(xattr user.id "$d").${SID[$vol/$target]-unknown}"
	# shellcheck disable=SC2086
	check_volume "$vol" "$d" "$live_d" $names
	check "$vol: c takes a new snapshot of the volume" mkdir "$C/$K/$vol/snapshots/after"
}
# Group snapshots: all or nothing (group-crash.sh).
cg_checks() { # CASE
	local c=$1 step=${1%:*} want=${1#*:} tn t names state got v
	tn=$(cg_tenant "$step") t=$A/tenants/$(cg_tenant "$step")
	if [ "$want" = undone ]; then
		names='' state="cgsnapshots=[] id= status= entries=[] members=[a: b: c:]"
	else
		names=C state="cgsnapshots=[C] id=uuid status=available entries=[a b c changes changes.json info.json] members=[a:C's id b:C's id c:C's id]"
	fi
	got=undone
	[ -e "$t/consistencygroups/G/cgsnapshots/C" ] && got=kept
	check_eq "$step: the group snapshot is $want" "$want" "$got"
	check_eq "$step: the group snapshot and its member snapshots are all there or none (on a and c)" \
		"$state|$state" "$(cg_state "$t/consistencygroups/G")|$(cg_state "$C/tenants/$tn/consistencygroups/G")"
	# shellcheck disable=SC2086
	check_volume "$step: a" "$t/volumes/a" "${LIVE[a]}" s1 $names
	for v in b c; do
		# shellcheck disable=SC2086
		check_volume "$step: $v" "$t/volumes/$v" "${LIVE[$v]}" $names
	done
	check "$step: b takes a group snapshot after" mkdir "$B/tenants/$tn/consistencygroups/G/cgsnapshots/after"
}
# shellcheck disable=SC2086
par_checks 3 create_checks $CREATE_CASES
# shellcheck disable=SC2086
par_checks 3 delete_checks $DELETE_CASES
# shellcheck disable=SC2086
par_checks 3 cg_checks $CG_CASES
tc=$(tree_of "$C") ta=$(tree_of "$A")
check_eq "after the takeovers, c shows the tree a shows" "$ta" "$tc"

# A host that comes back with its host_id finishes its own operation at once;
# while its lease (30 s) lives, no other host touches it.
d=$A/$K/again
mkdir "$d"
hv "$d" "write -P 0xa1 0 4M"
mkdir "$d/snapshots/s1"
hv "$d" "write -P 0xb1 1M 1M"
mkdir "$d/snapshots/s2"
hv "$d" "write -P 0xc1 2M 64k"
EXP[again/s2]=$(snap_expect "$d" s2) LIVE[again]=$(live_sum "$d")
sid1=$(xattr user.id "$d/snapshots/s1")
ETCD_TTL=30 SNAPFS_CRASH_AT=snapshot-delete-rebase mount_host y || exit 1
(timeout -s KILL 60 rmdir "$(host_mnt y)/$K/again/snapshots/s1") >/dev/null 2>&1
host_exit y
check_eq "host y was killed at snapshot-delete-rebase" 137 "$HOST_RC"
check_errno "y's lease (30 s) lives on: b's mkdir of a snapshot of the volume: EBUSY" EBUSY mkdir "$B/$K/again/snapshots/new"
sleep $((ETCD_TTL + 1))
check "ttl+1 s later no other host has taken y's delete over (s1 there, status deleting)" \
	has_value user.status "$A/$K/again/snapshots/s1" deleting
ETCD_TTL=30 mount_host y || exit 1
ms=$(poll_ms 3 test ! -e "$A/$K/again/snapshots/s1")
check "y mounted again with its host_id: its delete of s1 is finished within 3 s ($ms ms)" test "$ms" != timeout
check "s1's overlay is gone" test ! -e "$SHARE/volume-$(xattr user.id "$d").$sid1"
check_volume "again" "$d" "${LIVE[again]}" s2
unmount_host y

# ---- etcd: a member lost, then quorum lost and back ----
# Member 1 is every host's first endpoint: it is made the leader, then killed.
etcd_make_leader 1 || echo "# could not move the leadership to member 1 (leader: $(etcd_leader))"
etcd_member_stop 1
check "one etcd member (the leader, first endpoint) down: a snapshot is made on a" mkdir "$A/$W/snapshots/m1"
under_1s "one etcd member down: b sees it" "$(poll_ms 5 test -d "$B/$W/snapshots/m1")"
etcd_member_start 1 || exit 1
exec 3<"$C/$W/snapshots/s2/disk.raw"
files_before=$(share_files)
etcd_member_stop 2
etcd_member_stop 3
# Four changes at once (each waits for etcd's timeouts): a snapshot create, a
# snapshot delete, a metadata update, a volume create.
nq() { # NAME CMD...: CMD's output, then "rc=N", in $WORK/nq-NAME.out
	local name=$1
	shift
	timeout 60 "$@" >"$WORK/nq-$name.out" 2>&1
	echo "rc=$?" >>"$WORK/nq-$name.out"
}
t0=$(now_ms)
nq mkdir mkdir "$A/$W/snapshots/q1" &
nq1=$!
nq rmdir rmdir "$B/$K/again/snapshots/s2" &
nq2=$!
nq setfattr setfattr -n user.meta.q -v 1 "$B/$W" &
nq3=$!
nq volume mkdir "$C/$T/volumes/nq" &
nq4=$!
sleep 0.3
check "quorum lost: ls still works" ls "$C/$W/snapshots/s2"
check_eq "quorum lost: getfattr still works" available "$(xattr user.status "$B/$W/snapshots/s2")"
check_eq "quorum lost: an open disk.raw keeps reading (0x22)" "22" \
	"$(dd if=/dev/fd/3 bs=1 skip=4096 count=1 status=none | od -An -tx1 | tr -d ' ')"
wait $nq1 $nq2 $nq3 $nq4
el=$(($(now_ms) - t0))
for f in mkdir rmdir setfattr volume; do
	if grep -q -e "Input/output error" -e "Resource temporarily unavailable" "$WORK/nq-$f.out" &&
		! grep -qx rc=0 "$WORK/nq-$f.out"; then
		ok "quorum lost: $f fails with EIO or EAGAIN (all four within $el ms)"
	else
		not_ok "quorum lost: $f fails with EIO or EAGAIN: $(tr '\n' ' ' <"$WORK/nq-$f.out")"
	fi
done
exec 3<&-
check_eq "quorum lost: nothing half done on the share (files added or removed)" "" \
	"$(diff <(echo "$files_before") <(share_files) | grep '^[<>]')"
etcd_member_start 2 || exit 1
etcd_member_start 3 || exit 1
ms=$(poll_ms 20 mkdir "$A/$W/snapshots/q2")
check "quorum back: changes work again without a remount ($ms ms)" test "$ms" != timeout
under_1s "quorum back: the new snapshot is seen on c" "$(poll_ms 5 test -d "$C/$W/snapshots/q2")"
# etcd may still apply a write it timed out once quorum is back
# (etcd-facts.sh), before the new one that c has seen: a change that failed
# must not show up later.
check_eq "the changes that failed did not happen later (no q1, no volume nq, again's s2 available, no user.meta.q)" \
	"no no available " \
	"$([ -e "$C/$W/snapshots/q1" ] && echo yes || echo no) $([ -e "$C/$T/volumes/nq" ] && echo yes || echo no) $(xattr user.status "$C/$K/again/snapshots/s2") $(xattr user.meta.q "$C/$W")"
check "the volumes touched during the outage are idle" eval "idle '$B/$W' && idle '$B/$K/again'"

# ---- quorum lost in the middle of an operation: finished once etcd is back ----
# Host e stalls after .info (the point of no return) and cannot record the
# end; it finishes the create itself when etcd answers, without a remount.
SNAPFS_STALL_AT=snapshot-create-info SNAPFS_STALL_MS=2000 mount_host e || exit 1
E=$(host_mnt e)
mkdir "$E/$T/volumes/y"
Y=$T/volumes/y
hv "$E/$Y" "write -P 0x44 0 1M"
mkdir "$E/$Y/snapshots/half" 2>"$WORK/half.err" & mk=$!
poll_ms 10 grep -q "stalling at snapshot-create-info" "$WORK/snapfs-e.log" >/dev/null
etcd_member_stop 2
etcd_member_stop 3
wait $mk
mk_rc=$?
check "quorum lost after .info: mkdir fails" test "$mk_rc" -ne 0
etcd_member_start 2 || exit 1
etcd_member_start 3 || exit 1
ms=$(poll_ms 20 has_value user.status "$A/$Y/snapshots/half" available)
check "quorum back: host e finished its own create without a remount ($ms ms)" test "$ms" != timeout
check "the volume is idle again" idle "$A/$Y"
yid=$(xattr user.id "$A/$Y")
check_eq "its .info agrees with the catalogue" \
	"$(info_expected "$A/$Y" "$(xattr user.active_file "$A/$Y")" half)" "$(info_actual "$yid")"
check "qemu-img check passes on its files" qcow2_check "$yid"
check_eq "the snapshot reads what qemu-img reads of its chain" "$(snap_expect "$A/$Y" half)" \
	"$(image_sum "$B/$Y/snapshots/half/disk.raw")"
unmount_host e

# ---- files on the share: the policy, whichever host made them ----
nfiles=$(cd "$SHARE" && ls -A | wc -l)
others=$(cd "$SHARE" && stat -c '%u %g %a %n' -- * .[!.]* 2>/dev/null |
	grep -v "^$ALICE $TEAM 660 volume-")
check_eq "all $nfiles files the hosts made on the share: the top directory's owner and group, 0660" \
	"" "$others"

for h in a b c; do unmount_host $h; done
finish
