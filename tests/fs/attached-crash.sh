#!/bin/bash
# Crash safety of attached volumes: snapfs is killed (SIGKILL, fault
# injection) at every step of a snapshot create, a snapshot delete and a
# group snapshot while a qemu-storage-daemon runs the volumes; the next
# mount asks QEMU (query-named-block-nodes, query-jobs) and finishes or
# undoes each operation: an overlay QEMU switched to is kept, one it only
# opened is closed and removed, a merge is started, followed or recorded.
# Afterwards every snapshot's disk.raw is the guest's disk at its mkdir, the
# guest's disk is what it wrote last, the chain is what Cinder expects, and
# QEMU holds no deleted file. Also: QEMU killed while snapfs was down, after
# it had switched: the overlay is kept (files only).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
. "$(dirname "$0")/qsdlib.sh"
export LC_ALL=C

need_fault_injection
plan 154

V=$MNT/tenants/acme/volumes
G=$MNT/tenants/acme/consistencygroups
OPTS=qmp_timeout=5000
REC=$WORK/rec
mkdir -p "$REC"

# the steps, and what the next mount must do
CREATE_STEPS="snapshot-create-overlay:undo snapshot-create-qmp-added:undo
	snapshot-create-qmp-switched:finish snapshot-create-info:finish"
DELETE_CASES="snapshot-delete-recorded:s1 snapshot-delete-recorded:s2
	snapshot-delete-job:s1 snapshot-delete-job:s2
	snapshot-delete-info:s1 snapshot-delete-info:s2
	snapshot-delete-unlink:s1 snapshot-delete-unlink:s2"

snapfs_nodes() { # DAEMON: the nodes snapfs opened in it
	qmp "$1" query-named-block-nodes '{"flat": true}' |
		jq -r '.[] | .["node-name"] | select(startswith("snapfs-"))' | sort
}
node_of() { local a; a=$(xattr user.attach "$V/$1"); echo "${a##*#}"; } # VOLUME
rec() { guest_copy "$1" "$REC/$1@$2.raw"; } # VOLUME NAME (volume = its export)

# info_ok VOLUME NAME...: .info has "active" = user.active_file and one key
# per snapshot NAME (its id), each naming a file that exists.
info_ok() {
	local d=$V/$1 vid active n sid f want=1
	vid=$(xattr user.id "$d")
	active=$(xattr user.active_file "$d")
	shift
	[ $# = 0 ] && [ ! -e "$SHARE/volume-$vid.info" ] && [ "$active" = "volume-$vid" ] && return 0
	[ "$(jq -r .active "$SHARE/volume-$vid.info" 2>/dev/null)" = "$active" ] ||
		{ echo ".info active is not $active"; return 1; }
	for n; do
		sid=$(xattr user.id "$d/snapshots/$n")
		f=$(jq -r --arg k "$sid" '.[$k] // empty' "$SHARE/volume-$vid.info")
		[ -n "$f" ] && [ -f "$SHARE/$f" ] || { echo ".info: $n ($sid) -> '$f'"; return 1; }
		want=$((want + 1))
	done
	[ "$(jq 'length' "$SHARE/volume-$vid.info")" = "$want" ] || { echo ".info has extra keys"; return 1; }
}

# chain_ok VOLUME NAME...: its chain is Cinder's and .info agrees.
chain_ok() {
	chain_is_cinder "$(xattr user.id "$V/$1")" "$(xattr user.active_file "$V/$1")" && info_ok "$@"
}

# check_after DESC VOLUME LIVE NAME...: 6 checks of an attached volume
# after recovery: its snapshots are NAME... with the recorded bytes, QEMU's
# export sits on the node user.attach names, the guest's disk is LIVE, the
# chain and .info are Cinder's, QEMU holds no deleted file.
check_after() {
	local desc=$1 vol=$2 live=$3 n out=''
	shift 3
	check_eq "$desc: snapshots/ lists ${*:-nothing}" "$*" "$(ls "$V/$vol/snapshots" | tr '\n' ' ' | sed 's/ $//')"
	for n; do
		[ "$(xattr user.status "$V/$vol/snapshots/$n")" = available ] || out+="$n is not available; "
		cmp -s "$REC/$vol@$n.raw" "$V/$vol/snapshots/$n/disk.raw" || out+="$n: disk.raw differs; "
	done
	check_eq "$desc: each snapshot is available with the guest's disk at its mkdir" "" "$out"
	check_eq "$desc: the guest's disk is the export of the node user.attach names" \
		"$(node_of "$vol")" "$(export_node "$vol")"
	guest_copy "$vol" "$WORK/g.raw"
	check "$desc: the guest's disk is what it wrote last" cmp -s "$REC/$vol@$live.raw" "$WORK/g.raw"
	check "$desc: the chain is Cinder's and .info agrees" chain_ok "$vol" "$@"
	check "$desc: QEMU holds no deleted file" qsd_holds_only_share_files h
}

# ---- setup ----
mount_snapfs "$OPTS" || exit 1
mkdir "$MNT/tenants/acme"
vols=()
i=0
for s in $CREATE_STEPS; do i=$((i + 1)); vols+=("c$i"); done
i=0
for c in $DELETE_CASES; do i=$((i + 1)); vols+=("d$i"); done
vols+=(g1 g2 g3 g4)
for v in "${vols[@]}"; do mkdir "$V/$v" || exit 1; done
specs=()
for v in "${vols[@]}"; do specs+=("$V/$v:$v"); done
qsd_start h "${specs[@]}" || exit 1
mkdir "$V/q1"
qsd_start hq "$V/q1:q1" || exit 1
for v in "${vols[@]}" q1; do
	d=h
	[ "$v" = q1 ] && d=hq
	setfattr -n user.attach -v "$(qsd_sock $d)#$v" "$V/$v" || exit 1
done
# delete volumes: s1, s2 taken attached, the guest writing before each
i=0
for c in $DELETE_CASES; do
	i=$((i + 1))
	v=d$i
	guest $v "write -P 0x11 0 1M" "write -P 0x12 1023M 512k"
	rec $v s1
	mkdir "$V/$v/snapshots/s1" || exit 1
	guest $v "write -P 0x21 512k 1M"
	rec $v s2
	mkdir "$V/$v/snapshots/s2" || exit 1
	guest $v "write -P 0x31 1M 2M" "write -z 0 64k"
	rec $v live
done
for v in g1 g2 g3 g4; do
	guest $v "write -P 0x41 0 2M"
	rec $v C
done
mkdir "$G/ga" "$G/gb"
ln -s ../../../volumes/g1 "$G/ga/volumes/g1" && ln -s ../../../volumes/g2 "$G/ga/volumes/g2" &&
	ln -s ../../../volumes/g3 "$G/gb/volumes/g3" && ln -s ../../../volumes/g4 "$G/gb/volumes/g4" || exit 1
unmount_snapfs

# ---- snapshot create ----
i=0
for s in $CREATE_STEPS; do
	i=$((i + 1))
	step=${s%:*} want=${s#*:} v=c$i
	guest $v "write -P 0x51 0 1M"
	rec $v s
	crash_during "$step" mkdir "$V/$v/snapshots/s"
	if [ "$want" = finish ]; then
		check_eq "$step: QEMU keeps the overlay it switched to" \
			"snapfs-$(xattr user.id "$V/$v/snapshots/s" | tr -d - | cut -c1-24)" "$(node_of $v)"
		guest $v "write -P 0x52 512k 1M"
		rec $v live
		check_after "$step" $v live s
	else
		check_eq "$step: QEMU has no node of snapfs's on the volume any more" 0 \
			"$(for n in $(snapfs_nodes h); do node_file h "$n"; done | grep -c "volume-$(xattr user.id "$V/$v")\.")"
		check_eq "$step: no overlay is left on the share" "volume-$(xattr user.id "$V/$v")" \
			"$(cd "$SHARE" && ls -1 | grep -F "volume-$(xattr user.id "$V/$v")" | grep -v '\.info$')"
		guest $v "write -P 0x52 512k 1M"
		rec $v live
		check_after "$step" $v live
		check "$step: a new snapshot works" mkdir "$V/$v/snapshots/again"
	fi
	unmount_snapfs
done

# ---- snapshot delete ----
i=0
for c in $DELETE_CASES; do
	i=$((i + 1))
	step=${c%:*} gone=${c#*:} v=d$i
	keep=s1
	[ "$gone" = s1 ] && keep=s2
	crash_during "$step" rmdir "$V/$v/snapshots/$gone"
	check_eq "$step ($gone): no merge job is left in QEMU" "[]" "$(qmp h query-jobs | jq -c .)"
	check_after "$step ($gone)" $v live $keep
	unmount_snapfs
done

# ---- group snapshot ----
crash_during cgsnapshot-create-qmp-added mkdir "$G/ga/cgsnapshots/C"
check_eq "cgsnapshot-create-qmp-added: no group snapshot" "" "$(ls "$G/ga/cgsnapshots")"
check_after "cgsnapshot-create-qmp-added: g1" g1 C
check_after "cgsnapshot-create-qmp-added: g2" g2 C
unmount_snapfs
crash_during cgsnapshot-create-qmp-switched mkdir "$G/gb/cgsnapshots/C"
check_eq "cgsnapshot-create-qmp-switched: the group snapshot is available" available \
	"$(xattr user.status "$G/gb/cgsnapshots/C")"
check_eq "cgsnapshot-create-qmp-switched: taken as one transaction" transaction \
	"$(xattr user.json "$G/gb/cgsnapshots/C" | jq -r .cgsnapshot.consistency)"
check_after "cgsnapshot-create-qmp-switched: g3" g3 C C
check_after "cgsnapshot-create-qmp-switched: g4" g4 C C
unmount_snapfs

# ---- QEMU gone while snapfs was down ----
guest q1 "write -P 0x61 0 1M"
rec q1 s
crash_during snapshot-create-qmp-switched mkdir "$V/q1/snapshots/s" || true
kill_snapfs
qsd_kill hq
mount_snapfs "$OPTS"
check_eq "QEMU killed after the switch: the snapshot is finished" available \
	"$(xattr user.status "$V/q1/snapshots/s")"
check "QEMU killed after the switch: disk.raw is the guest's disk at mkdir" \
	cmp -s "$REC/q1@s.raw" "$V/q1/snapshots/s/disk.raw"
check "QEMU killed after the switch: the overlay is the active file, the chain Cinder's" \
	chain_ok q1 s
check "QEMU killed after the switch: qemu-img check passes on the overlay" \
	qemu-img check -q "$SHARE/$(xattr user.active_file "$V/q1")"
check_errno "QEMU killed: a snapshot is EIO" EIO timeout 20 mkdir "$V/q1/snapshots/t"
check "QEMU killed: nothing is left of it" test ! -e "$V/q1/snapshots/t"
check "QEMU killed: detach works" setfattr -x user.attach "$V/q1"
check "QEMU killed: an offline snapshot works once detached" mkdir "$V/q1/snapshots/t"
unmount_snapfs
finish
