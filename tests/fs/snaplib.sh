# snaplib.sh - shared by the snapshot mount tests (sourced after lib.sh):
# the hypervisor's view of the share and what each disk.raw must show.
# Images are 1 GiB; tests write only into the first 8 MiB and the last MiB.

GIB=1073741824
MIB=1048576
END=$((GIB - MIB))

fmt_of() { qemu-img info --output=json "$SHARE/$1" 2>/dev/null | jq -r '.format // empty'; }
backing_of() { qemu-img info --output=json "$SHARE/$1" 2>/dev/null | jq -r '.["backing-filename"] // empty'; }
# region_sum FILE: sha256 of the first 8 MiB and the last MiB of a 1 GiB image.
region_sum() {
	{
		dd if="$1" bs=1M count=8 status=none
		dd if="$1" bs=1M skip=1023 count=1 status=none
	} 2>/dev/null | sha256sum | cut -d' ' -f1
}
# image_sum FILE: "size:region_sum" ("missing" when FILE cannot be read).
image_sum() {
	if [ -f "$1" ] && [ -r "$1" ]; then
		echo "$(stat -c %s "$1"):$(region_sum "$1")"
	else
		echo "missing"
	fi
}
# to_raw SHAREFILE OUT: qemu-img's raw conversion of a file and its chain.
to_raw() {
	rm -f "$2"
	[ -n "$1" ] && [ -f "$SHARE/$1" ] &&
		qemu-img convert -f "$(fmt_of "$1")" -O raw "$SHARE/$1" "$2" 2>/dev/null
}
# file_sum SHAREFILE: image_sum of its conversion ("no image FILE" on failure).
file_sum() { # (a file of its own per process: callers may run in parallel)
	local raw=$WORK/conv.$BASHPID.raw
	if to_raw "$1" "$raw"; then
		image_sum "$raw"
	else
		echo "no image '$1'"
	fi
	rm -f "$raw"
}
live_sum() { file_sum "$(xattr user.active_file "$1")"; }
# snap_expect VOLDIR SNAPNAME: the content of the backing of the snapshot's
# overlay, as qemu-img reads it (what disk.raw must show).
snap_expect() {
	local vid sid
	vid=$(xattr user.id "$1")
	sid=$(xattr user.id "$1/snapshots/$2")
	file_sum "$(backing_of "volume-$vid.$sid")"
}
# hv VOLDIR QEMU-IO-COMMAND...: the hypervisor writes to the active file.
hv() {
	local d=$1 f c args=()
	shift
	f=$(xattr user.active_file "$d")
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f "$(fmt_of "$f")" "${args[@]}" "$SHARE/$f" >/dev/null
}
# retry_busy CMD...: CMD, retried for up to 2 s while it fails with EBUSY only:
# the kernel sends RELEASE of a just-closed disk.raw asynchronously, so a
# reader that has exited may count as open for a moment.
retry_busy() {
	local i out
	for i in $(seq 1 20); do
		out=$("$@" 2>&1) && return 0
		grep -q "busy" <<<"$out" || break
		sleep 0.1
	done
	echo "$out"
	return 1
}
rmdir_snap() { retry_busy rmdir "$1"; }

qcow2_check() { # VID: qemu-img check of each qcow2 file of the volume
	local f rc=0
	for f in $(share_files | grep -F "volume-$1"); do
		[ "$(fmt_of "$f")" = qcow2 ] || continue
		qemu-img check -q "$SHARE/$f" || { echo "$f fails qemu-img check"; rc=1; }
	done
	return $rc
}

# check_share_files DESC VOLDIR NAME...: the share holds the volume's base,
# the overlays of the snapshots NAME... and .info, nothing else of it.
check_share_files() {
	local desc=$1 d=$2 vid n want got
	shift 2
	vid=$(xattr user.id "$d")
	want=$({
		echo "volume-$vid"
		for n; do echo "volume-$vid.$(xattr user.id "$d/snapshots/$n")"; done
		[ $# -gt 0 ] && echo "volume-$vid.info"
	} | sort)
	got=$(cd "$SHARE" && ls -A1 | grep -F "volume-$vid" | sort)
	# With no snapshot left, .info may stay if it only names the base.
	if [ $# -eq 0 ] && [ "$(jq -c . "$SHARE/volume-$vid.info" 2>/dev/null)" = "{\"active\":\"volume-$vid\"}" ]; then
		got=$(grep -vxF "volume-$vid.info" <<<"$got")
	fi
	check_eq "$desc: the share holds only the chain's files and .info" "$want" "$got"
}

# check_volume DESC VOLDIR LIVE NAME... (oldest first): 8 checks of a volume
# and its snapshots against EXP[NAME] (EXP[<volume name>/NAME] when
# EXP_BY_VOLUME is set) and LIVE; the caller declares EXP (declare -A EXP).
info_expected() { # VOLDIR ACTIVE NAME...
	local d=$1 active=$2 vid n sid
	vid=$(xattr user.id "$d")
	shift 2
	for n; do sid=$(xattr user.id "$d/snapshots/$n"); echo "${sid:-no id for $n}"; done |
		jq -R -s -S -c --arg a "$active" --arg p "volume-$vid." \
			'[split("\n")[] | select(length > 0) | {(.): ($p + .)}] | add + {active: $a}'
}

info_actual() { # VID: .info, or what its absence means
	if [ -e "$SHARE/volume-$1.info" ]; then
		jq -S -c . "$SHARE/volume-$1.info" 2>&1
	else
		jq -n -S -c --arg a "volume-$1" '{active: $a}'
	fi
}

chain_actual() { # FILE: each file of its chain: name format backing backing-format
	qemu-img info --backing-chain --output=json "$SHARE/$1" 2>&1 |
		jq -r '.[] | "\(.filename | split("/") | last) \(.format) \(.["backing-filename"] // "-") \(.["backing-filename-format"] // "-")"' 2>&1
}

check_volume() {
	local desc=$1 d=$2 live=$3 vid base bfmt active n sid want got prev
	shift 3
	vid=$(xattr user.id "$d")
	base=volume-$vid
	bfmt=$(fmt_of "$base")
	active=$(xattr user.active_file "$d")
	check_eq "$desc: snapshots/ lists ${*:-nothing}" \
		"$(printf '%s\n' "$@" | sed '/^$/d' | sort)" "$(ls "$d/snapshots" 2>&1 | sort)"
	want=available got=$(xattr user.status "$d")
	for n; do
		want+=" $n:available:100%"
		got+=" $n:$(xattr user.status "$d/snapshots/$n"):$(xattr user.progress "$d/snapshots/$n")"
	done
	check_eq "$desc: the volume and its snapshots are available" "$want" "$got"
	want='' got=''
	for n; do
		want+="$n=${EXP[${EXP_BY_VOLUME:+$(basename "$d")/}$n]-unrecorded} "
		got+="$n=$(image_sum "$d/snapshots/$n/disk.raw") "
	done
	check_eq "$desc: every snapshot's disk.raw is unchanged" "$want" "$got"
	check_eq "$desc: the live image is unchanged" "$live" "$(live_sum "$d")"
	check_eq "$desc: volume-<id>.info is {active: user.active_file, <snapshot id>: its overlay}" \
		"$(info_expected "$d" "$active" "$@")" "$(info_actual "$vid")"
	# Newest overlay first, each backed by the next (relative name, format).
	want='' prev=''
	for n; do
		sid=$(xattr user.id "$d/snapshots/$n")
		want="volume-$vid.$sid qcow2 ${prev:-$base} $([ -n "$prev" ] && echo qcow2 || echo "$bfmt")
$want"
		prev=volume-$vid.$sid
	done
	want+="$base $bfmt - -"
	check_eq "$desc: the chain from user.active_file is the overlays, newest first, then the base" \
		"$want" "$(chain_actual "$active")"
	check_share_files "$desc" "$d" "$@"
	check "$desc: qemu-img check passes on every qcow2 file" qcow2_check "$vid"
}

is_uuid() { grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' <<<"$1"; }
lsw() { ls "$@" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; } # ls on one line, errors dropped

# cg_state G: group G's group snapshot C and the member snapshots C of its
# volumes a, b and c (G in TENANT/consistencygroups/), as one line.
cg_state() {
	local g=$1 t cid v out
	t=$(dirname "$(dirname "$g")")
	cid=$(xattr user.id "$g/cgsnapshots/C")
	out="cgsnapshots=[$(lsw "$g/cgsnapshots")] id=$(is_uuid "$cid" && echo uuid) status=$(xattr user.status "$g/cgsnapshots/C")"
	out+=" entries=[$(lsw "$g/cgsnapshots/C")] members=["
	for v in a b c; do
		out+="$v:$(xattr user.cgsnapshot_id "$t/volumes/$v/snapshots/C" | { if [ -n "$cid" ]; then sed "s/^$cid\$/C's id/"; else cat; fi; }) "
	done
	echo "${out% }]"
}

# hold_write_lock SHARE-FILE: a qemu-io keeps the file open, with the write
# lock a running QEMU holds, until release_write_lock (returns once the lock
# shows in /proc/locks, or after 5 s)
hold_write_lock() {
	local ino
	rm -f "$WORK/qemu-in"
	mkfifo "$WORK/qemu-in"
	qemu-io -f "$(fmt_of "$1")" "$SHARE/$1" <"$WORK/qemu-in" >/dev/null 2>&1 &
	QPID=$!
	exec 7>"$WORK/qemu-in" # keeps qemu-io's stdin open, so it keeps the image
	ino=$(stat -c %i "$SHARE/$1")
	for _ in $(seq 1 50); do
		awk -v i="$ino" '{ for (f = 1; f <= NF; f++) if ($f ~ ":" i "$") found = 1 } END { exit !found }' \
			/proc/locks && return
		sleep 0.1
	done
}
release_write_lock() {
	exec 7>&-
	wait "$QPID"
}

# io FILE FMT CMD...: write into a share file as the hypervisor would.
io() {
	local f=$1 fmt=$2 c args=()
	shift 2
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f "$fmt" "${args[@]}" "$SHARE/$f" >/dev/null
}

# snap_file VID SID BACKING BACKING_FMT [OPTS]: what Cinder's _create_snapshot
# does: an overlay of $SIZE on the absolute path, then rebase -u to the
# basename.
snap_file() {
	local o="backing_file=$SHARE/$3,backing_fmt=$4${5:+,$5}"
	qemu-img create -q -f qcow2 -o "$o" "$SHARE/volume-$1.$2" "$SIZE" &&
		(cd "$SHARE" && qemu-img rebase -q -u -b "$3" -F "$4" "volume-$1.$2")
}
