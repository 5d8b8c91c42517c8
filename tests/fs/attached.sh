#!/bin/bash
# Attached volumes, hypervisor-assisted snapshots (docs/snapfs.md section 10) against a
# real qemu-storage-daemon: setfattr user.attach SOCKET#NODE attaches a
# volume (in-use) and its refusals (EINVAL, EBUSY, EIO); while attached,
# mkdir of a snapshot switches QEMU onto a new overlay over QMP
# (blockdev-snapshot) while the guest keeps its disk, and the snapshot's
# disk.raw is, byte for byte, the guest's disk at mkdir (taken while the
# guest writes: a prefix of its writes, each block whole); rmdir of a
# middle snapshot merges with block-commit, of the newest too, under a
# fresh overlay that snapfs puts on top first (also into the raw base, again
# and again); user.progress during the merges. After each step the share is
# what Cinder expects (.info, relative backing names, qemu-img check -U),
# QEMU holds no deleted file, and the files alone hold the guest's disk
# (QEMU flushed what it merged: a crash of QEMU would lose nothing). A group
# snapshot of members in one daemon is one QMP transaction ("consistency":
# "transaction", else "sequential" or "offline"). Under a writable FUSE
# export (where QEMU 7.2 refuses any job into the active node) both the
# middle and the newest snapshot are deleted. A killed daemon gives EIO at once, a
# stopped one EIO after qmp_timeout, the mount staying usable. Detach; an
# offline snapshot is EBUSY while QEMU still holds the file; after QEMU
# quits: qemu-img check, qemu-img convert equals the guest's last disk,
# offline snapshots and deletes again.
#
# Volumes are 1 GiB and sparse; the guest (qemu-io on an NBD export of the
# daemon, see qsdlib.sh) writes only in the first 8 MiB and the last MiB.
# Whole images are compared (qemu-img compare, or cmp where marked) when a
# snapshot is taken and for the guest's disk after a merge; re-checks
# compare the written regions.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
. "$(dirname "$0")/qsdlib.sh"
export LC_ALL=C
plan 334

bail() { echo "Bail out! $*"; exit 1; }
REC=$WORK/rec # the guest's disk at each instant: $REC/<volume>@<name>.raw
mkdir -p "$REC"
declare -A EXPORT_OF # volume name -> its export (the guest's disk)

# record VOLUME NAME: keep the guest's disk (or, detached, the volume's
# content) now as $REC/VOLUME@NAME.raw.
record() {
	local e=${EXPORT_OF[$1]-}
	if [ -n "$e" ] && [ "$(xattr user.attach "$V/$1")" != "" ]; then
		guest_copy "$e" "$REC/$1@$2.raw"
	else
		uraw "$(xattr user.active_file "$V/$1")" "$REC/$1@$2.raw"
	fi
}
# guest_is VOLUME NAME: the guest's whole disk is $REC/VOLUME@NAME.raw.
guest_is() { same_image "$REC/$1@$2.raw" "$(guest_url "${EXPORT_OF[$1]}")"; }
# on_disk_is_guest VOLUME: the active chain as the files on the share hold
# it (qemu-img convert -U: what a crash of QEMU would leave, since the guest
# flushed) is the guest's disk as QEMU serves it.
on_disk_is_guest() {
	uraw "$(xattr user.active_file "$V/$1")" "$WORK/active.raw" || { echo "cannot convert"; return 1; }
	same_image "$WORK/active.raw" "$(guest_url "${EXPORT_OF[$1]}")"
}
# active_is VOLUME NAME: qemu-img's conversion of the active chain is it.
active_is() {
	uraw "$(xattr user.active_file "$V/$1")" "$WORK/active.raw" || { echo "cannot convert"; return 1; }
	same_image "$REC/$1@$2.raw" "$WORK/active.raw"
}
attach_node() { local a; a=$(xattr user.attach "$1"); [ -n "$a" ] && echo "${a##*#}"; } # VOLDIR
info_of() { info_actual "$1"; } # VID: .info (or what its absence means), compact
# vol_state VID: the volume's files on the share and its .info.
vol_state() { (cd "$SHARE" && ls -A1 | grep -F "volume-$1" | sort && cat "volume-$1.info" 2>/dev/null); }
# logged_since LINES WORD...: a line the daemon logged after its first LINES
# lines holds one of the WORDs.
logged_since() {
	local n=$1 w args=()
	shift
	for w; do args+=(-e "$w"); done
	tail -n +"$((n + 1))" "$LOG" | grep -qF "${args[@]}"
}

# check_vol DESC VOLDIR attached|detached NAME...: the volume and its
# snapshots NAME... (oldest first) as Cinder and the user see them; 12
# checks attached, 10 detached. A snapshot's expected bytes are
# $REC/<volume>@<NAME>.raw.
check_vol() {
	local desc=$1 d=$2 mode=$3 vol vid active info want got n sid ov chain bottom f out msg
	shift 3
	vol=$(basename "$d")
	vid=$(xattr user.id "$d")
	active=$(xattr user.active_file "$d")
	info=$(info_of "$vid")
	check_eq "$desc: snapshots/ lists ${*:-nothing}" \
		"$(printf '%s\n' "$@" | sed '/^$/d' | sort)" "$(ls "$d/snapshots" 2>&1 | sort)"
	want=$([ "$mode" = attached ] && echo in-use || echo available)
	got=$(xattr user.status "$d")
	for n; do
		want+=" $n:available:100%"
		got+=" $n:$(xattr user.status "$d/snapshots/$n"):$(xattr user.progress "$d/snapshots/$n")"
	done
	check_eq "$desc: the volume is ${want%% *}, its snapshots available" "$want" "$got"
	want="$active|$(for n; do xattr user.id "$d/snapshots/$n"; echo; done | sed '/^$/d' | sort | tr '\n' ' ')"
	got="$(jq -r .active <<<"$info" 2>&1)|$(jq -r 'del(.active) | keys[]' <<<"$info" 2>&1 | sort | tr '\n' ' ')"
	check_eq "$desc: .info: active is user.active_file, one key per snapshot id" "$want" "$got"
	check "$desc: the chain from $active is Cinder's (relative basenames of the volume, formats, ends in a file with no backing)" \
		chain_is_cinder "$vid" "$active"
	chain=$(vol_chain "$active" | awk '{print $1}')
	bottom=$(tail -n 1 <<<"$chain")
	msg=''
	for n; do
		sid=$(xattr user.id "$d/snapshots/$n")
		ov=$(jq -r --arg s "$sid" '.[$s] // empty' <<<"$info")
		if ! grep -qxF -- "$ov" <<<"$chain" || [ "$ov" = "$bottom" ] || [ "$(ufmt "$ov")" != qcow2 ]; then
			msg+="$n: overlay '$ov' is not a qcow2 file of the chain above its bottom; "
		fi
	done
	check_eq "$desc: each snapshot's overlay (.info) is a qcow2 file of the chain, above its bottom" "" "$msg"
	got=$(cd "$SHARE" && ls -A1 | grep -F "volume-$vid" | grep -vxF "volume-$vid.info" | sort)
	got+="|$(cd "$SHARE" && ls -A1 | grep '^\.' | tr '\n' ' ')"
	check_eq "$desc: the share holds the chain's files and .info, no other file of the volume, no dot file" \
		"$(sort <<<"$chain")|" "$got"
	msg=''
	for f in $chain; do
		[ "$(ufmt "$f")" = qcow2 ] || continue
		out=$(qemu-img check -U "$SHARE/$f" 2>&1) || msg+="$f: $out; "
	done
	check_eq "$desc: qemu-img check -U passes on every qcow2 file of the chain" "" "$msg"
	msg=''
	for n; do
		out=$(same_regions "$REC/$vol@$n.raw" "$d/snapshots/$n/disk.raw") || msg+="$n: $out; "
	done
	check_eq "$desc: every snapshot's disk.raw is what the guest had at its mkdir" "" "$msg"
	msg=''
	for n; do
		sid=$(xattr user.id "$d/snapshots/$n")
		ov=$(jq -r --arg s "$sid" '.[$s] // empty' <<<"$info")
		if uraw "$(ubacking "$ov")" "$WORK/data.raw"; then
			out=$(same_regions "$REC/$vol@$n.raw" "$WORK/data.raw") || msg+="$n: $out; "
		else
			msg+="$n: no backing of '$ov' to read; "
		fi
	done
	rm -f "$WORK/data.raw"
	check_eq "$desc: Cinder's view agrees: each snapshot's data (its overlay's backing, read by qemu-img) is the same" "" "$msg"
	if [ "$mode" = attached ]; then
		local e=${EXPORT_OF[$vol]} q node
		q=${QSD_OF[$e]}
		node=$(export_node "$e")
		check_eq "$desc: user.attach is SOCKET#<the node the guest's disk uses>, whose file is user.active_file" \
			"$(qsd_sock "$q")#$node $active" "$(xattr user.attach "$d") $(node_file "$q" "$node")"
		check "$desc: QEMU holds no file that is gone from the share" qsd_holds_only_share_files "$q"
		check "$desc: the share alone holds the guest's disk (qemu-img convert -U of the chain; QEMU flushed what it merged)" \
			on_disk_is_guest "$vol"
	else
		check_errno "$desc: user.attach is gone (ENODATA)" ENODATA getfattr --absolute-names -n user.attach "$d"
	fi
}

# rmdir_watch SNAPDIR: rmdir_snap it while sampling its user.progress into
# $WORK/progress (a sample that takes over 5 s is "HUNG"); rmdir's status.
rmdir_watch() {
	local s=$1 pid rc v
	: >"$WORK/progress"
	rmdir_snap "$s" >"$WORK/rmdir.out" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		v=$(timeout 5 getfattr --absolute-names --only-values -n user.progress "$s" 2>/dev/null)
		[ $? = 124 ] && v=HUNG
		[ -n "$v" ] && echo "$v" >>"$WORK/progress"
		sleep 0.02
	done
	wait "$pid"
	rc=$?
	[ $rc = 0 ] || cat "$WORK/rmdir.out"
	return $rc
}
# progress_ok: every sample is a percentage (0% to 100%).
progress_ok() { ! grep -Evx '([0-9]|[1-9][0-9]|100)%' "$WORK/progress"; }
progress_seen() { sort -u "$WORK/progress" | tr '\n' ' '; }

# ---- setup: one daemon with three volumes ----

mount_snapfs "qmp_timeout=2000" || bail "mount failed"
T=$MNT/tenants/acme
mkdir "$T" || bail "mkdir tenant"
V=$T/volumes
CG=$T/consistencygroups
mkdir "$V/db" "$V/st" "$V/other" || bail "mkdir volumes"
D=$V/db
S=$D/snapshots
vid=$(xattr user.id "$D")
base=volume-$vid
qsd_start h1 "$D:db0" "$V/st:st0" "$V/other:other0" || bail "qemu-storage-daemon h1"
EXPORT_OF[db]=db0 EXPORT_OF[st]=st0
SOCK1=$(qsd_sock h1)
check_eq "setup: daemon h1's node db0 is db's active file, the raw base" "$base raw" \
	"$(node_file h1 db0) $(ufmt "$base")"
check "the guest writes to its disk (NBD export of db0)" guest db0 \
	"write -P 0xa1 0 4M" "write -P 0xa2 $END 64k" "write -P 0xa3 $((GIB - 4096)) 4096"

# ---- attach: refusals, then attach ----

check_errno "user.attach with no '#': EINVAL" EINVAL setfattr -n user.attach -v "$SOCK1" "$D"
check_errno "user.attach with a relative socket path: EINVAL" EINVAL \
	setfattr -n user.attach -v "h1.qmp#db0" "$D"
check_errno "user.attach with an empty node: EINVAL" EINVAL setfattr -n user.attach -v "$SOCK1#" "$D"
check_errno "user.attach naming a node QEMU does not have: EINVAL" EINVAL \
	setfattr -n user.attach -v "$SOCK1#nope" "$D"
check_errno "user.attach naming the node of another volume's file: EINVAL" EINVAL \
	setfattr -n user.attach -v "$SOCK1#other0" "$D"
check_eq "the refusals leave db available and not attached" "available|" \
	"$(xattr user.status "$D")|$(xattr user.attach "$D")"
check_errno "no user.attach yet: ENODATA" ENODATA getfattr --absolute-names -n user.attach "$D"
setfattr -n user.status -v error "$V/other"
check_errno "attaching a volume in error (to its own node): EBUSY" EBUSY \
	setfattr -n user.attach -v "$SOCK1#other0" "$V/other"
setfattr -n user.status -v available "$V/other"
check_errno "the volume in error was not attached" ENODATA getfattr --absolute-names -n user.attach "$V/other"
check "setfattr user.attach SOCKET#db0 attaches db" setfattr -n user.attach -v "$SOCK1#db0" "$D"
check_eq "status in-use; user.attach returns the value; info.json says in-use" "in-use|$SOCK1#db0|in-use" \
	"$(xattr user.status "$D")|$(xattr user.attach "$D")|$(jq -r .volume.status "$D/info.json" 2>&1)"
check_errno "attaching it again: EBUSY" EBUSY setfattr -n user.attach -v "$SOCK1#db0" "$D"
check_errno "rmdir of an attached volume: EBUSY" EBUSY rmdir "$D"
check_eq "still attached to db0" "$SOCK1#db0" "$(xattr user.attach "$D")"

# ---- snapshots while attached ----

record db s1
check "mkdir snapshots/s1 of the attached volume" mkdir "$S/s1"
sid1=$(xattr user.id "$S/s1")
ov1=volume-$vid.$sid1
node1=$(attach_node "$D")
check_eq "s1 is available, 100%; user.active_file is its overlay volume-<vid>.<sid>" "available 100% $ov1" \
	"$(xattr user.status "$S/s1") $(xattr user.progress "$S/s1") $(xattr user.active_file "$D")"
check_eq "the overlay is qcow2, backed by the base by relative name, format raw, 1 GiB" \
	"qcow2 $base raw $GIB" \
	"$(uinfo "$ov1" | jq -r '"\(.format) \(.["backing-filename"]) \(.["backing-filename-format"]) \(.["virtual-size"])"')"
check "user.attach now names another node, on the same socket ($node1)" \
	test "${node1:-db0}" != db0 -a "$(xattr user.attach "$D")" = "$SOCK1#$node1"
check_eq "QEMU switched the guest onto it: the export uses that node, whose file is the overlay" \
	"$node1 $ov1" "$(export_node db0) $(node_file h1 "$(export_node db0)")"
check "s1/disk.raw is, whole and byte for byte (cmp), the guest's disk at mkdir" \
	same_bytes "$REC/db@s1.raw" "$S/s1/disk.raw"
check "the guest's disk is unchanged by the snapshot" guest_is db s1
check "the guest writes on (data, zeroes, a discard, the last MiB)" guest db0 \
	"write -P 0xb1 1M 1M" "write -z 512k 128k" "discard 3M 64k" "write -P 0xb2 $((END + 8192)) 4096"
map_depth() { # FILE OFFSET: depth of the data at OFFSET in qemu-img map -U of FILE
	qemu-img map -U --output=json "$SHARE/$1" 2>/dev/null |
		jq -r --argjson o "$2" '.[] | select(.start <= $o and $o < .start + .length) | if .data then .depth else "none" end'
}
check_eq "its write went into the overlay (qemu-img map: data at 1 MiB at depth 0 of the active file)" 0 \
	"$(map_depth "$ov1" "$MIB")"
check "s1/disk.raw is unchanged by the guest's writes" same_regions "$REC/db@s1.raw" "$S/s1/disk.raw"

record db s2
check "mkdir snapshots/s2" mkdir "$S/s2"
sid2=$(xattr user.id "$S/s2")
ov2=volume-$vid.$sid2
node2=$(attach_node "$D")
check_eq "s2's overlay is active, backed by s1's overlay (qcow2); the guest's export uses user.attach's new node" \
	"$ov2 $ov1 qcow2 $node2 $ov2 yes" \
	"$(xattr user.active_file "$D") $(ubacking "$ov2") $(uinfo "$ov2" | jq -r '.["backing-filename-format"]') $(export_node db0) $(node_file h1 "$node2") $([ "$node2" != "$node1" ] && echo yes)"
check "s2/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/db@s2.raw" "$S/s2/disk.raw"
check "the guest writes (what the merge of s2 will move)" guest db0 \
	"write -P 0xc1 2M 2M" "write -P 0xc2 $((5 * MIB + 512)) 1000" "write -z 1M 64k"
record db s3
check "mkdir snapshots/s3" mkdir "$S/s3"
sid3=$(xattr user.id "$S/s3")
ov3=volume-$vid.$sid3
check "s3/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/db@s3.raw" "$S/s3/disk.raw"
check "the guest writes" guest db0 "write -P 0xd1 0 128k" "write -P 0xd2 $((6 * MIB + 100)) 200" \
	"write -P 0xd3 $((GIB - 8192)) 4096"
record db live
check_eq "s1 and s2 are unchanged by later snapshots and writes" "" \
	"$(same_regions "$REC/db@s1.raw" "$S/s1/disk.raw")$(same_regions "$REC/db@s2.raw" "$S/s2/disk.raw")"
check_vol "three snapshots, attached" "$D" attached s1 s2 s3

# ---- rmdir of the middle snapshot while attached: block-commit ----

active_before=$(xattr user.active_file "$D") node_before=$(export_node db0)
check "rmdir of the middle snapshot s2 while attached (block-commit)" rmdir_watch "$S/s2"
check "user.progress during the merge reads as a percentage ($(progress_seen))" progress_ok
check_eq "s2 is gone, and its overlay file" "gone gone" \
	"$([ -e "$S/s2" ] && echo present || echo gone) $([ -e "$SHARE/$ov2" ] && echo present || echo gone)"
check_eq "the active file and QEMU's active node are unchanged" "$active_before $node_before" \
	"$(xattr user.active_file "$D") $(export_node db0)"
check_eq "s3's overlay is now backed by s1's overlay (relative name, qcow2)" "$ov1 qcow2" \
	"$(ubacking "$ov3") $(uinfo "$ov3" | jq -r '.["backing-filename-format"]')"
check_vol "after deleting the middle snapshot" "$D" attached s1 s3
check "the guest's disk is unchanged by the merge (whole image)" guest_is db live
check "s3/disk.raw is still, whole, the guest's disk at its mkdir" same_image "$REC/db@s3.raw" "$S/s3/disk.raw"

# ---- rmdir of the newest snapshot while attached: a fresh overlay on top,
# then block-commit of s3's overlay (no longer the active file) ----

check "rmdir of the newest snapshot s3 while attached (fresh overlay, block-commit)" rmdir_watch "$S/s3"
check "user.progress during the commit reads as a percentage ($(progress_seen))" progress_ok
check_eq "the active file is a fresh overlay on s1's overlay; s3's overlay was committed into it and is gone" \
	"$ov1 gone" \
	"$(ubacking "$(xattr user.active_file "$D")") $([ -e "$SHARE/$ov3" ] && echo present || echo gone)"
check_eq "QEMU's active node is the one user.attach names" "$(attach_node "$D")" "$(export_node db0)"
check_vol "after deleting the newest snapshot" "$D" attached s1
check "the guest's disk is unchanged by the merge (whole image)" guest_is db live
check "s1/disk.raw is still, whole, the guest's disk at its mkdir" same_image "$REC/db@s1.raw" "$S/s1/disk.raw"

check "the guest writes after the merges" guest db0 "write -P 0xe1 3M 64k" "write -P 0xe2 $END 4096"
record db s4
check "mkdir snapshots/s4 after the merges" mkdir "$S/s4"
check "s4/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/db@s4.raw" "$S/s4/disk.raw"
check "the guest writes" guest db0 "write -P 0xf1 4M 4096" "write -z 0 64k"
record db live
check_vol "s1 and s4, attached" "$D" attached s1 s4

# ---- the newest snapshot deleted again and again: its overlay committed
# into the raw base under a fresh overlay, then into that overlay ----

ST=$V/st
stvid=$(xattr user.id "$ST")
check "attach st (node st0 of the same daemon)" setfattr -n user.attach -v "$SOCK1#st0" "$ST"
guest st0 "write -P 0x10 0 1M" "write -P 0x11 $END 64k"

# A snapshot while the guest writes: 80 blocks of 64 KiB at 1 MiB + k * 64
# KiB, one after another (each acknowledged, flushed), pattern k + 1. The
# snapshot must hold a prefix of them, each block whole: an instant.
writer() { local k; for k in $(seq 0 79); do guest st0 "write -P $((k + 1)) $((MIB + k * 65536)) 64k" || return 1; done; }
blocks_state() { # FILE: one letter per block: n (written), o (old: zeroes), t (torn)
	"$QMP_PYTHON" -I -S -c '
import sys
f = open(sys.argv[1], "rb"); f.seek(1 << 20); out = ""
for k in range(80):
    b = f.read(65536)
    out += "n" if b == bytes([k + 1]) * 65536 else "o" if b == bytes(65536) else "t"
print(out)' "$1" 2>&1
}
writer &
wpid=$!
sleep 0.5
check "mkdir snapshots/live while the guest writes" mkdir "$ST/snapshots/live"
wait "$wpid"
live_blocks=$(blocks_state "$ST/snapshots/live/disk.raw")
check "live/disk.raw holds a prefix of the guest's writes, every block whole ($(tr -d o <<<"$live_blocks" | wc -c | awk '{print $1 - 1}') of 80 written)" \
	grep -Eqx 'n*o*' <<<"$live_blocks"
guest_copy st0 "$WORK/st.raw"
check_eq "the guest's disk has all 80 blocks: the writes after the switch went on" "$(printf 'n%.0s' $(seq 1 80))" \
	"$(blocks_state "$WORK/st.raw")"
act=$(xattr user.active_file "$ST")
record st live
check "rmdir of live, the only snapshot, over the raw base" rmdir_snap "$ST/snapshots/live"
nact=$(xattr user.active_file "$ST")
check_eq "a fresh active file on the raw base; live's overlay is gone; .info says so" \
	"volume-$stvid gone $(jq -n -c --arg a "$nact" '{active: $a}')" \
	"$(ubacking "$nact") $([ -e "$SHARE/$act" ] && echo present || echo gone) $(info_of "$stvid")"
check_vol "st after the merge into the base" "$ST" attached
check "the guest's disk is unchanged by it (whole image)" guest_is st live
for i in 1 2 3; do
	record st t$i
	mkdir "$ST/snapshots/t$i"
	check "round $i: t$i/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/st@t$i.raw" "$ST/snapshots/t$i/disk.raw"
	act=$(xattr user.active_file "$ST")
	below=$(ubacking "$act")
	guest st0 "write -P 0x$i$i $((i * MIB)) 64k" "write -P 0x2$i $((END + i * 4096)) 4096"
	record st live
	check "round $i: rmdir of t$i, the only snapshot, over $below" rmdir_snap "$ST/snapshots/t$i"
	nact=$(xattr user.active_file "$ST")
	check_eq "round $i: a fresh active file on $below; t$i's overlay $act is gone" \
		"$below gone" \
		"$(ubacking "$nact") $([ -e "$SHARE/$act" ] && echo present || echo gone)"
	check_vol "round $i" "$ST" attached
	check "round $i: the guest's disk is unchanged (whole image)" guest_is st live
done
check_eq ".info names the active file, nothing else" \
	"$(jq -n -c --arg a "$(xattr user.active_file "$ST")" '{active: $a}')" "$(info_of "$stvid")"

# ---- group snapshots ----

for v in ga gb gc gd ge gf gg gh; do mkdir "$V/$v" || bail "mkdir $v"; done
for g in G1 G2 G3 G4; do mkdir "$CG/$g" || bail "mkdir group $g"; done
members() { local g=$1 v; shift; for v; do ln -s "../../../volumes/$v" "$CG/$g/volumes/$v" || bail "ln $v $g"; done; }
members G1 ga gb # both in daemon h2: one transaction
members G2 gc gd # gc in h3, gd in h2: sequential
members G3 ge gf # ge in h3, gf detached: sequential
members G4 gg gh # both detached: offline
qsd_start h2 "$V/ga:ga0" "$V/gb:gb0" "$V/gd:gd0" || bail "qemu-storage-daemon h2"
qsd_start h3 "$V/gc:gc0" "$V/ge:ge0" || bail "qemu-storage-daemon h3"
for v in ga gb gd; do EXPORT_OF[$v]=${v}0; done
for v in gc ge; do EXPORT_OF[$v]=${v}0; done
for v in ga gb gd; do setfattr -n user.attach -v "$(qsd_sock h2)#${v}0" "$V/$v"; done
for v in gc ge; do setfattr -n user.attach -v "$(qsd_sock h3)#${v}0" "$V/$v"; done
check_eq "five members attached" "in-use in-use in-use in-use in-use" \
	"$(for v in ga gb gc gd ge; do xattr user.status "$V/$v"; echo; done | tr '\n' ' ' | sed 's/ $//')"
n=0
for v in ga gb gc gd ge; do
	n=$((n + 1))
	guest "${v}0" "write -P 0x$n$n 0 2M" "write -P 0x3$n $END 64k"
done
hv "$V/gf" "write -P 0x66 1M 1M"
hv "$V/gg" "write -P 0x77 0 64k"
hv "$V/gh" "write -P 0x88 $END 4096"
consistency() { xattr user.json "$1" | jq -r '.cgsnapshot.consistency // .consistency // "none"' 2>&1; }

record ga C1
record gb C1
check "mkdir cgsnapshots/C1 of G1 (ga, gb attached to the same daemon)" mkdir "$CG/G1/cgsnapshots/C1"
check_eq "C1's user.json: \"consistency\": \"transaction\"" transaction "$(consistency "$CG/G1/cgsnapshots/C1")"
for v in ga gb; do
	check "$v's C1/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/$v@C1.raw" "$V/$v/snapshots/C1/disk.raw"
done
check_eq "both guests' exports moved to the nodes user.attach names" "$(attach_node "$V/ga") $(attach_node "$V/gb")" \
	"$(export_node ga0) $(export_node gb0)"
guest ga0 "write -P 0x91 0 1M"
guest gb0 "write -P 0x92 $END 4096"
record ga live
record gb live
check_vol "ga after the group snapshot" "$V/ga" attached C1
check_vol "gb after the group snapshot" "$V/gb" attached C1

record gc C2
record gd C2
check "mkdir cgsnapshots/C2 of G2 (gc and gd in two daemons)" mkdir "$CG/G2/cgsnapshots/C2"
check_eq "C2's consistency is sequential" sequential "$(consistency "$CG/G2/cgsnapshots/C2")"
check_eq "gc's and gd's C2 are the guests' disks at mkdir" "" \
	"$(same_regions "$REC/gc@C2.raw" "$V/gc/snapshots/C2/disk.raw")$(same_regions "$REC/gd@C2.raw" "$V/gd/snapshots/C2/disk.raw")"
record ge C3
record gf C3
check "mkdir cgsnapshots/C3 of G3 (ge attached, gf detached)" mkdir "$CG/G3/cgsnapshots/C3"
check_eq "C3's consistency is sequential" sequential "$(consistency "$CG/G3/cgsnapshots/C3")"
check_eq "ge's and gf's C3 are their content at mkdir" "" \
	"$(same_regions "$REC/ge@C3.raw" "$V/ge/snapshots/C3/disk.raw")$(same_regions "$REC/gf@C3.raw" "$V/gf/snapshots/C3/disk.raw")"
check_eq "gf stays available; its snapshot is an offline overlay (active file)" \
	"available volume-$(xattr user.id "$V/gf").$(xattr user.id "$V/gf/snapshots/C3")" \
	"$(xattr user.status "$V/gf") $(xattr user.active_file "$V/gf")"
record gg C4
record gh C4
check "mkdir cgsnapshots/C4 of G4 (gg, gh detached)" mkdir "$CG/G4/cgsnapshots/C4"
check_eq "C4's consistency is offline" offline "$(consistency "$CG/G4/cgsnapshots/C4")"
check_eq "gg's and gh's C4 are their content at mkdir" "" \
	"$(same_regions "$REC/gg@C4.raw" "$V/gg/snapshots/C4/disk.raw")$(same_regions "$REC/gh@C4.raw" "$V/gh/snapshots/C4/disk.raw")"

check "rmdir of group snapshot C1 while its members are attached (a commit in each)" \
	retry_busy rmdir "$CG/G1/cgsnapshots/C1"
check_vol "ga after deleting C1" "$V/ga" attached
check_vol "gb after deleting C1" "$V/gb" attached
check_eq "the guests' disks are unchanged by the merges (whole images)" "" \
	"$(guest_is ga live)$(guest_is gb live)"

# ---- a writable FUSE export: QEMU refuses block-stream and active commit
# into the active node (the export holds RESIZE); snapfs needs neither ----

mkdir "$V/fu" || bail "mkdir fu"
qsd_start hf fuse "$V/fu:fu0" || bail "qemu-storage-daemon hf (FUSE export)"
EXPORT_OF[fu]=fu0
check "attach fu (its guest disk is a writable FUSE export)" setfattr -n user.attach -v "$(qsd_sock hf)#fu0" "$V/fu"
head -c 1M /dev/urandom >"$WORK/pattern"
check "the guest writes through the FUSE export (dd conv=notrunc,fsync)" \
	dd if="$WORK/pattern" of="$WORK/fu0.disk" bs=64k seek=16 conv=notrunc,fsync status=none
record fu f1
check "mkdir snapshots/f1" mkdir "$V/fu/snapshots/f1"
check "f1/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/fu@f1.raw" "$V/fu/snapshots/f1/disk.raw"
check_eq "the FUSE export follows the new node" "$(attach_node "$V/fu")" "$(export_node fu0)"
guest fu0 "write -P 0x5a 0 64k"
record fu f2
mkdir "$V/fu/snapshots/f2"
guest fu0 "write -P 0x5b $END 64k"
record fu live
check "rmdir of f1 (middle: block-commit into the raw base) works under a FUSE export" rmdir_snap "$V/fu/snapshots/f1"
check_vol "fu after the commit" "$V/fu" attached f2
check "rmdir of f2, the newest, under a writable FUSE export" \
	rmdir_snap "$V/fu/snapshots/f2"
check_vol "fu after deleting f2" "$V/fu" attached
check "the guest's disk is unchanged (whole image)" guest_is fu live
check "the guest still writes through the FUSE export" guest fu0 "write -P 0x5c 0 4k"
check "detach fu" setfattr -x user.attach "$V/fu"
check "daemon hf quits (and unmounts its export)" qsd_quit hf

# ---- a killed daemon: EIO at once ----

mkdir "$V/k" "$V/k2" || bail "mkdir k"
qsd_start hk "$V/k:k0" || bail "qemu-storage-daemon hk"
EXPORT_OF[k]=k0
setfattr -n user.attach -v "$(qsd_sock hk)#k0" "$V/k"
guest k0 "write -P 0x4b 0 1M"
record k k1
check "mkdir k1 of a volume attached to daemon hk" mkdir "$V/k/snapshots/k1"
guest k0 "write -P 0x4c 1M 1M"
record k live
kvid=$(xattr user.id "$V/k")
state=$(vol_state "$kvid")
qsd_kill hk
lines=$(wc -l <"$LOG")
t0=$(date +%s%N)
check_errno "after kill -9 of the daemon, mkdir of a snapshot: EIO" EIO timeout 20 mkdir "$V/k/snapshots/k2"
ms=$((($(date +%s%N) - t0) / 1000000))
check "promptly: in ${ms} ms (no listener: no wait for qmp_timeout)" test "$ms" -lt 5000
check "a log line names the volume or the socket" logged_since "$lines" "$kvid" "$(qsd_sock hk)"
check_eq "nothing changed: k1 alone, the share, still attached" "k1|$state|in-use" \
	"$(ls "$V/k/snapshots" 2>&1)|$(vol_state "$kvid")|$(xattr user.status "$V/k")"
check "the mount is usable: ls -R of the tenant" ls -R "$T"
check_errno "attaching another volume to the dead daemon's socket: EIO" EIO \
	setfattr -n user.attach -v "$(qsd_sock hk)#k0" "$V/k2"
check "detach k with its daemon gone" setfattr -x user.attach "$V/k"
check "an offline snapshot of k works (no QEMU holds its file)" mkdir "$V/k/snapshots/k3"
check_eq "k3 is the guest's last disk (written before the kill)" "" \
	"$(same_image "$REC/k@live.raw" "$V/k/snapshots/k3/disk.raw")"
record k k3
check_vol "k, detached" "$V/k" detached k1 k3

# ---- a stopped daemon: EIO after qmp_timeout ----

mkdir "$V/p" || bail "mkdir p"
qsd_start hs "$V/p:p0" || bail "qemu-storage-daemon hs"
EXPORT_OF[p]=p0
setfattr -n user.attach -v "$(qsd_sock hs)#p0" "$V/p"
attached_p=$(xattr user.attach "$V/p")
guest p0 "write -P 0x50 0 1M"
pvid=$(xattr user.id "$V/p")
state=$(vol_state "$pvid")
lines=$(wc -l <"$LOG")
kill -STOP "${QSD_PID[hs]}"
t0=$(date +%s%N)
(timeout 20 mkdir "$V/p/snapshots/y1" 2>&1; echo "rc=$?") >"$WORK/mkdir.out" &
mpid=$!
sleep 0.5
check_errno "detach while a snapshot of it waits for QEMU: EBUSY" EBUSY setfattr -x user.attach "$V/p"
wait "$mpid"
ms=$((($(date +%s%N) - t0) / 1000000))
check "with the daemon stopped (SIGSTOP), mkdir of a snapshot: EIO" grep -q "Input/output error" "$WORK/mkdir.out"
check "after about qmp_timeout=2000: ${ms} ms" test "$ms" -ge 1500 -a "$ms" -lt 15000
check "a log line names the volume or the socket" logged_since "$lines" "$pvid" "$(qsd_sock hs)"
check "the mount stayed usable: ls of the volume" ls "$V/p"
kill -CONT "${QSD_PID[hs]}"
[ "$(xattr user.attach "$V/p")" = "$attached_p" ] || setfattr -n user.attach -v "$attached_p" "$V/p"
check_eq "nothing changed: no y1, the share, still attached to p0" "|$state|$attached_p" \
	"$(ls "$V/p/snapshots" 2>&1)|$(vol_state "$pvid")|$(xattr user.attach "$V/p")"
record p y2
check "once the daemon runs again (SIGCONT), mkdir y2 works" mkdir "$V/p/snapshots/y2"
check "y2/disk.raw is, whole, the guest's disk at mkdir" same_image "$REC/p@y2.raw" "$V/p/snapshots/y2/disk.raw"
check_vol "p after the stop" "$V/p" attached y2

# ---- detach db, offline again ----

check "detach db: setfattr -x user.attach" setfattr -x user.attach "$D"
check_eq "status available, user.attach gone" "available|" "$(xattr user.status "$D")|$(xattr user.attach "$D")"
state=$(vol_state "$vid")
check_errno "an offline snapshot while daemon h1 still writes db's file: EBUSY" EBUSY mkdir "$S/off"
check_eq "nothing changed: s1 s4, the share" "s1 s4|$state" \
	"$(ls "$S" 2>&1 | tr '\n' ' ' | sed 's/ $//')|$(vol_state "$vid")"
check "detach st" setfattr -x user.attach "$ST"
check "daemon h1 quits over QMP" qsd_quit h1
check "qemu-img check (no -U: nothing holds the files now) passes on every qcow2 file of db" qcow2_check "$vid"
check "qemu-img convert -O raw of db's active chain is the guest's last disk (whole image)" active_is db live
check_vol "db, detached" "$D" detached s1 s4
check "an offline snapshot of db works again" mkdir "$S/off"
check "off/disk.raw is, whole and byte for byte (cmp), the guest's last disk" same_bytes "$REC/db@live.raw" "$S/off/disk.raw"
record db off
rm_all() { local s; for s; do rmdir_snap "$S/$s" || return 1; done; }
check "offline rmdir of s1, s4 and off" rm_all s1 s4 off
check "active_is: db's content is still the guest's last disk" active_is db live
check "db is deleted once it has no snapshots" rmdir "$D"
check "st, whose base file went away, is deleted too" rmdir "$ST"
check_eq "no file of db or st is left on the share" "" \
	"$(cd "$SHARE" && ls -A1 | grep -F -e "$vid" -e "$stvid")"
unmount_snapfs
finish
