# qsdlib.sh - the hypervisor side of the attached-volume tests (sourced
# after lib.sh and snaplib.sh): qemu-storage-daemons started by the test,
# each with a QMP socket, the volumes' active files as block nodes and a
# writable NBD export of each node as the guest's disk; QMP through qmp.py;
# the guest's writes and reads; a check that a volume's files on the share
# are what Cinder expects, whatever QEMU holds open.
#
# Every daemon is started with --daemonize and --pidfile: its pid is
# recorded and the EXIT trap kills it (SIGCONT first, in case the test
# stopped it), before lib.sh's cleanup unmounts snapfs.
#
# Why NBD and not a FUSE export for the guest: a writable FUSE export takes
# the RESIZE permission on its node (QEMU >= 6.0), and the jobs that merge
# into the active layer (block-stream into it, an active block-commit) do
# not share RESIZE, so QEMU 7.2 refuses them ("Permission conflict on node
# ...: permissions 'resize' are both required by an unnamed block device
# ... and unshared by ..."). A VM's virtio-blk device does not take RESIZE,
# and neither does an NBD export. attached.sh shows the FUSE case too.

QMP_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/qmp.py
# Debian's python3 first: a pyenv shim on PATH costs over a second a start.
QMP_PYTHON=$(command -v /usr/bin/python3 || command -v python3)
if ! command -v qemu-storage-daemon >/dev/null 2>&1 || [ -z "$QMP_PYTHON" ]; then
	echo "1..0 # SKIP no qemu-storage-daemon or python3"
	exit 0
fi

declare -A QSD_PID  # daemon name -> pid
declare -A QSD_OF   # export (= first node name of a volume) -> daemon name
declare -A QSD_FUSE # export -> its FUSE mountpoint (FUSE exports only)

qsd_cleanup() {
	local n p m
	for p in "${QSD_PID[@]}"; do
		[ -n "$p" ] || continue
		# only a process that is still the daemon we started
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = qemu-storage-da ] || continue
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done
	for m in "${QSD_FUSE[@]}"; do # a dead daemon's export is a stale mount
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
	done
	for n in "${!QSD_PID[@]}"; do
		p=${QSD_PID[$n]}
		[ -n "$p" ] || continue
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
}
trap 'qsd_cleanup; cleanup' EXIT

# uinfo / ufmt / ubacking: qemu-img info with -U (force-share): a
# file that QEMU holds with its write lock cannot be opened otherwise.
uinfo() { qemu-img info -U --output=json "$SHARE/$1" 2>/dev/null; }
ufmt() { uinfo "$1" | jq -r '.format // empty'; }
ubacking() { uinfo "$1" | jq -r '.["backing-filename"] // empty'; }
# uraw SHAREFILE OUT: qemu-img's raw conversion of a file and its chain.
uraw() {
	rm -f "$2"
	[ -n "$1" ] && [ -f "$SHARE/$1" ] &&
		qemu-img convert -U -f "$(ufmt "$1")" -O raw "$SHARE/$1" "$2" 2>/dev/null
}

# qsd_start_files NAME [fuse] FILE:NODE...: a daemon NAME with a QMP socket
# $WORK/NAME.qmp and, for each share file FILE, nodes NODE-file (driver
# file) and NODE (its format) and an export named NODE of NODE, writable:
# over NBD on $WORK/NAME.nbd, or with "fuse" a FUSE export on the regular
# file $WORK/NODE.disk (libvirt's layout: protocol and format nodes apart).
qsd_start_files() {
	local name=$1 fuse='' spec f node args=()
	shift
	[ "$1" = fuse ] && { fuse=1; shift; }
	for spec; do
		f=${spec%:*} node=${spec##*:}
		args+=(--blockdev "driver=file,node-name=$node-file,filename=$SHARE/$f"
			--blockdev "driver=$(ufmt "$f"),node-name=$node,file=$node-file")
		if [ -n "$fuse" ]; then
			: >"$WORK/$node.disk"
			args+=(--export "type=fuse,id=$node,node-name=$node,mountpoint=$WORK/$node.disk,writable=on")
			QSD_FUSE[$node]=$WORK/$node.disk
		else
			args+=(--export "type=nbd,id=$node,node-name=$node,name=$node,writable=on")
		fi
		QSD_OF[$node]=$name
	done
	[ -n "$fuse" ] || args=(--nbd-server "addr.type=unix,addr.path=$WORK/$name.nbd" "${args[@]}")
	rm -f "$WORK/$name.pid"
	if ! qemu-storage-daemon "${args[@]}" \
		--chardev "socket,id=m0,path=$WORK/$name.qmp,server=on,wait=off" --monitor chardev=m0 \
		--pidfile "$WORK/$name.pid" --daemonize >>"$WORK/$name.log" 2>&1; then
		echo "# qemu-storage-daemon $name did not start:"
		sed 's/^/#   /' "$WORK/$name.log"
		return 1
	fi
	QSD_PID[$name]=$(cat "$WORK/$name.pid")
}

# qsd_start NAME [fuse] VOLDIR:NODE...: the same, of volumes' active files.
qsd_start() {
	local name=$1 spec f specs=()
	shift
	[ "$1" = fuse ] && { specs=(fuse); shift; }
	for spec; do
		f=$(xattr user.active_file "${spec%:*}")
		[ -n "$f" ] || { echo "# qsd_start: ${spec%:*} has no user.active_file"; return 1; }
		specs+=("$f:${spec##*:}")
	done
	qsd_start_files "$name" "${specs[@]}"
}

qsd_sock() { echo "$WORK/$1.qmp"; } # NAME

# qmp NAME COMMAND [ARGS-JSON]...: one QMP session (see qmp.py).
qmp() {
	local name=$1
	shift
	"$QMP_PYTHON" -I -S "$QMP_PY" -t 10 "$WORK/$name.qmp" "$@"
}

# qsd_quit NAME: quit over QMP and wait until the process is gone.
qsd_quit() {
	local p=${QSD_PID[$1]}
	qmp "$1" quit >/dev/null || return 1
	for _ in $(seq 1 100); do
		kill -0 "$p" 2>/dev/null || { QSD_PID[$1]=; return 0; }
		sleep 0.1
	done
	echo "# qemu-storage-daemon $1 ($p) did not exit"
	return 1
}

# qsd_kill NAME: SIGKILL (what a crash of the hypervisor leaves: the socket
# file stays, nobody listens).
qsd_kill() {
	local p=${QSD_PID[$1]}
	kill -9 "$p"
	for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	QSD_PID[$1]=
}

# ---- the guest ----

# guest_url EXPORT: the guest's disk: nbd+unix://... or the FUSE export's file.
guest_url() {
	if [ -n "${QSD_FUSE[$1]-}" ]; then
		echo "${QSD_FUSE[$1]}"
	else
		echo "nbd+unix:///$1?socket=$WORK/${QSD_OF[$1]}.nbd"
	fi
}
# guest EXPORT QEMU-IO-COMMAND...: the guest writes (each qemu-io run ends
# with a flush, so its writes are in the image when it returns).
guest() {
	local e=$1 c args=()
	shift
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f raw "${args[@]}" "$(guest_url "$e")" >/dev/null
}
# guest_copy EXPORT OUT: the guest's whole disk, now, as a sparse raw file
# (qemu-img skips holes: NBD block status, SEEK_DATA on a FUSE export).
guest_copy() {
	rm -f "$2"
	qemu-img convert -U -f raw -O raw "$(guest_url "$1")" "$2"
}

# same_image A B: the same content, whole images (files or the guest's
# URL): qemu-img compare reads all data and skips only what both sides
# report as holes (SEEK_DATA of a file, NBD block status); prints the first
# mismatch. same_bytes A B: cmp, which reads every byte (slow: a 1 GiB
# sparse file takes seconds here).
same_image() {
	local out
	if [ -f "$1" ] && [ -f "$2" ] && [ "$(stat -c %s "$1")" != "$(stat -c %s "$2")" ]; then
		echo "sizes differ: $1 $(stat -c %s "$1"), $2 $(stat -c %s "$2")"
		return 1
	fi
	out=$(qemu-img compare -U -f raw -F raw "$1" "$2" 2>&1) || { echo "$out"; return 1; }
}
same_bytes() { cmp "$1" "$2" 2>&1; }
# same_regions A B: equal in the first 8 MiB and the last MiB (where the
# guest writes).
regions_of() {
	{
		dd if="$1" bs=1M count=8 status=none
		dd if="$1" bs=1M skip=1023 count=1 status=none
	} 2>/dev/null
}
same_regions() {
	[ "$(stat -c %s "$1" 2>&1)" = "$(stat -c %s "$2" 2>&1)" ] || { echo "sizes differ: $1 $2"; return 1; }
	cmp <(regions_of "$1") <(regions_of "$2") 2>&1
}

# ---- QEMU's view ----

# export_node EXPORT: the node the export (the guest's disk) uses now.
export_node() {
	qmp "${QSD_OF[$1]}" query-block-exports | jq -r --arg e "$1" '.[] | select(.id == $e) | .["node-name"]'
}
# node_file DAEMON NODE: the basename of the image file of a node. QEMU
# names a qcow2 node added with "backing": null (as an overlay for
# blockdev-snapshot is) "json:{...}" once a backing is attached: its
# file.filename is the image file.
node_file() {
	qmp "$1" query-named-block-nodes '{"flat": true}' | jq -r --arg n "$2" '
		.[] | select(.["node-name"] == $n) | .image.filename |
		if startswith("json:") then (.[5:] | fromjson | .file.filename) else . end |
		split("/") | last'
}
# qsd_files DAEMON: the files of the daemon's protocol (driver file) nodes.
qsd_files() {
	qmp "$1" query-named-block-nodes '{"flat": true}' | jq -r '.[] | select(.drv == "file") | .image.filename'
}
# qsd_holds_only_share_files DAEMON: every file the daemon has open still
# exists (a file deleted under QEMU would leave .nfsXXXX on an NFS share).
qsd_holds_only_share_files() {
	local f out rc=0
	out=$(qsd_files "$1") || { echo "query-named-block-nodes failed"; return 1; }
	while read -r f; do
		[ -n "$f" ] || continue
		[ -e "$f" ] || { echo "$1 still has a node on $f, which is gone"; rc=1; }
	done <<<"$out"
	return $rc
}

# ---- the share, as Cinder reads it ----

# vol_chain ACTIVE: "file format backing backing-format" for each file of the
# chain from ACTIVE down (qemu-img info -U --backing-chain).
vol_chain() {
	qemu-img info -U --backing-chain --output=json "$SHARE/$1" 2>&1 |
		jq -r '.[] | "\(.filename | split("/") | last) \(.format) \(.["backing-filename"] // "-") \(.["backing-filename-format"] // "-")"' 2>&1
}

# chain_is_cinder VID ACTIVE: the chain from ACTIVE names every backing file
# by a relative basename of the volume (volume-<vid> or volume-<vid>.<uuid>)
# with its format, each file exists, and it ends in a file with no backing.
chain_is_cinder() {
	local vid=$1 active=$2 out f fmt b bf n=0 last='' re
	re="^volume-$vid(\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?\$"
	out=$(vol_chain "$active") || { echo "qemu-img info --backing-chain fails: $out"; return 1; }
	while read -r f fmt b bf; do
		n=$((n + 1))
		[[ $f =~ $re ]] || { echo "chain file '$f' is not a file of volume $vid"; return 1; }
		[ "$n" -gt 1 ] && [ "$f" != "$last" ] && { echo "'$f' follows, not '$last'"; return 1; }
		case $fmt in raw | qcow2) ;; *) echo "$f: format $fmt"; return 1 ;; esac
		if [ "$b" = - ]; then
			last=
			break
		fi
		[[ $b =~ $re ]] || { echo "$f: backing '$b' is not a relative basename of the volume"; return 1; }
		case $bf in raw | qcow2) ;; *) echo "$f: backing format '$bf'"; return 1 ;; esac
		[ -f "$SHARE/$b" ] || { echo "$f: backing $b is missing"; return 1; }
		last=$b
	done <<<"$out"
	[ "$n" -gt 0 ] && [ -z "$last" ] || { echo "the chain does not end in a file with no backing: $out"; return 1; }
}
