#!/bin/bash
# What snapfs's attached volumes (docs/snapfs.md section 10) rely on in QEMU, checked
# against the qemu-storage-daemon of this machine with qsdlib.sh and qmp.py
# alone (no snapfs): the QMP calls that a snapshot and a merge make, in
# Cinder's layout, and what each leaves in the headers, the block graph,
# the exports and the files. A check marked "(QEMU 7.2)" describes a
# limitation that a later QEMU may lift; it is skipped on other versions.
#
#   overlay:  qemu-img create -f qcow2 -b <basename> -F <fmt> FILE SIZE
#             blockdev-add {driver: qcow2, node-name, file: {driver: file,
#               filename, node-name}, backing: null}
#             blockdev-snapshot {node: <active>, overlay: <new>}
#   commit:   block-commit {job-id, device: <active>, top-node, base-node,
#               backing-file: <basename>, auto-dismiss: false}
#   stream:   block-stream {job-id, device: <active>, base-node,
#               backing-file: <basename>, auto-dismiss: false}
#   then:     query-jobs until "concluded", job-dismiss, blockdev-reopen of
#             the node that received data (a flush), blockdev-del of the
#             nodes of files that left the chain.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
. "$(dirname "$0")/qsdlib.sh"
export LC_ALL=C
plan 49

QEMU72=$(qemu-storage-daemon --version | grep -q 'version 7\.2\.' && echo 1)
# check72 DESC CMD...: check, on QEMU 7.2 only.
check72() {
	if [ -n "$QEMU72" ]; then
		check "(QEMU 7.2) $1" "${@:2}"
	else
		ok "# SKIP not QEMU 7.2: $1"
	fi
}
bail() { echo "Bail out! $*"; exit 1; }
# waitjob DAEMON ID: until the job is concluded (10 s at most); dismiss it.
waitjob() {
	local st
	for _ in $(seq 1 100); do
		st=$(qmp "$1" query-jobs | jq -r --arg i "$2" '.[] | select(.id == $i) | .status')
		if [ "$st" = concluded ]; then
			qmp "$1" job-dismiss "{\"id\": \"$2\"}" >/dev/null
			return 0
		fi
		sleep 0.1
	done
	echo "job $2: $st"
	return 1
}
# overlay DAEMON FILE BACKING BACKING-FMT NODE: qemu-img create, blockdev-add.
overlay() {
	(cd "$SHARE" && qemu-img create -q -f qcow2 -b "$3" -F "$4" "$2" "$GIB") || return 1
	qmp "$1" blockdev-add "$(jq -n -c --arg f "$SHARE/$2" --arg n "$5" \
		'{driver: "qcow2", "node-name": $n, file: {driver: "file", filename: $f, "node-name": ($n + "-file")}, backing: null}')" >/dev/null
}
header() { uinfo "$1" | jq -r '"\(.["backing-filename"] // "-") \(.["backing-filename-format"] // "-")"'; } # FILE
locks_of() { # FILE: the byte ranges of the OFD locks on it ("100-101 203-203"...)
	local ino
	ino=$(stat -c %i "$SHARE/$1")
	awk -v i=":$ino\$" '$0 ~ "OFDLCK" { for (f = 1; f <= NF; f++) if ($f ~ i) print $(f + 1) "-" $(f + 2) }' /proc/locks | sort -u | tr '\n' ' ' | sed 's/ $//'
}
fds_of() { # DAEMON FILE: how many descriptors of the daemon are open on the share file
	local f n=0
	for f in /proc/"${QSD_PID[$1]}"/fd/*; do
		[ "$(readlink "$f")" = "$SHARE/$2" ] && n=$((n + 1))
	done
	echo $n
}
del_nodes() { # DAEMON NODE...: blockdev-del each, in order
	local q=$1 n
	shift
	for n; do qmp "$q" blockdev-del "{\"node-name\": \"$n\"}" >/dev/null || return 1; done
}
same_as() { same_image "$REC/$2.raw" "$(guest_url "$1")"; } # EXPORT NAME
on_disk() { # FILE NAME: the chain from FILE as on the share equals the recorded NAME
	uraw "$1" "$WORK/disk.raw" || { echo "cannot convert $1"; return 1; }
	same_image "$REC/$2.raw" "$WORK/disk.raw"
}
REC=$WORK/rec
mkdir -p "$REC"
rec() { guest_copy "$1" "$REC/$2.raw"; } # EXPORT NAME

A=11111111-1111-4111-8111-111111111111
B=22222222-2222-4222-8222-222222222222
sid() { printf '5a000000-0000-4000-8000-%012d' "$1"; }
truncate -s "$GIB" "$SHARE/volume-$A" "$SHARE/volume-$B"
qsd_start_files q "volume-$A:a0" "volume-$B:b0" || bail "qemu-storage-daemon"

# ---- the daemon, its exports, its locks ----

check_eq "node a0 is volume-A, raw; the export a0 uses it" "volume-$A raw a0" \
	"$(node_file q a0) $(qmp q query-named-block-nodes '{"flat": true}' | jq -r '.[] | select(.["node-name"] == "a0") | .drv') $(export_node a0)"
check_eq "QEMU's OFD locks on volume-A: bytes 100-101 held (read, write: what snapfs's busy check sees), 203 (no resize by others)" \
	"100-101 203-203" "$(locks_of "volume-$A")"
guest a0 "write -P 0xa1 0 2M" "write -P 0xa2 $END 64k"
rec a0 a@1

# ---- an external snapshot ----

(cd "$SHARE" && qemu-img create -q -f qcow2 -b "volume-$A" -F raw "volume-$A.$(sid 1)" "$GIB")
fails_with() { # TEXT CMD...: CMD fails and says TEXT (an extended regexp)
	local re=$1 out
	shift
	out=$("$@" 2>&1) && { echo "succeeded: $out"; return 1; }
	grep -Eq "$re" <<<"$out" || { echo "$out"; return 1; }
}
rm -f "$SHARE/volume-$A.$(sid 1)"
check "qemu-img create -b <basename> -F raw, blockdev-add with backing null" overlay q "volume-$A.$(sid 1)" "volume-$A" raw a1
check "blockdev-snapshot {node: a0, overlay: a1}" qmp q blockdev-snapshot '{"node": "a0", "overlay": "a1"}'
check_eq "the export follows the new active node" a1 "$(export_node a0)"
check_eq "the overlay's header is untouched: the relative basename, raw" "volume-$A raw" "$(header "volume-$A.$(sid 1)")"
check_eq "the overlay node's filename is \"json:{...}\" (its backing was attached at run time); its file node's is the path" \
	"json:|volume-$A.$(sid 1)" \
	"$(qmp q query-named-block-nodes '{"flat": true}' | jq -r '.[] | select(.["node-name"] == "a1") | .image.filename[0:5]')|$(node_file q a1-file)"
check_eq "the guest's disk is unchanged by the snapshot" "" "$(same_as a0 a@1)"
guest a0 "write -P 0xb1 1M 64k"
check_eq "the guest's write after the snapshot is in the overlay (map: depth 0); the base is unchanged" "0|" \
	"$(qemu-img map -U --output=json "$SHARE/volume-$A.$(sid 1)" | jq -r --argjson o "$MIB" '.[] | select(.start <= $o and $o < .start + .length) | .depth')|$(on_disk "volume-$A" a@1)"
check_eq "locks: the base is now only read (100); the overlay is read, written, resized (100-101 103) and not shared (201 203)" \
	"100-100|100-101 103-103 201-201 203-203" "$(locks_of "volume-$A")|$(locks_of "volume-$A.$(sid 1)")"
qemu-img create -q -f qcow2 -b "$SHARE/volume-$A.$(sid 1)" -F qcow2 "$WORK/x.qcow2" "$GIB"
check "blockdev-add of an overlay without \"backing\": null fails: QEMU opens the backing chain again, and QEMU holds it" \
	fails_with 'lock' qmp q blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"x\", \"file\": {\"driver\": \"file\", \"filename\": \"$WORK/x.qcow2\"}}"
rec a0 a@2
(cd "$SHARE" && qemu-img create -q -f qcow2 -b "volume-$A.$(sid 1)" -F qcow2 "volume-$A.$(sid 2)" "$GIB")
check "a second overlay: blockdev-snapshot-sync {node-name: a1, snapshot-file, snapshot-node-name: a2, format: qcow2, mode: existing}" \
	qmp q blockdev-snapshot-sync "{\"node-name\": \"a1\", \"snapshot-file\": \"$SHARE/volume-$A.$(sid 2)\", \"snapshot-node-name\": \"a2\", \"format\": \"qcow2\", \"mode\": \"existing\"}"
check_eq "its header is untouched too; the export follows" "volume-$A.$(sid 1) qcow2 a2" \
	"$(header "volume-$A.$(sid 2)") $(export_node a0)"
qmp q blockdev-snapshot-sync "{\"node-name\": \"b0\", \"snapshot-file\": \"$WORK/abs.qcow2\", \"snapshot-node-name\": \"babs\", \"format\": \"qcow2\"}" >/dev/null
(cd "$WORK" && qemu-img create -q -f qcow2 -b abs.qcow2 -F qcow2 bov.qcow2 "$GIB")
qmp q blockdev-add "{\"driver\": \"qcow2\", \"node-name\": \"bov\", \"file\": {\"driver\": \"file\", \"filename\": \"$WORK/bov.qcow2\"}, \"backing\": null}" \
	blockdev-snapshot '{"node": "babs", "overlay": "bov"}' >/dev/null
qmp q blockdev-snapshot-sync "{\"node-name\": \"bov\", \"snapshot-file\": \"$WORK/abs2.qcow2\", \"snapshot-node-name\": \"babs2\", \"format\": \"qcow2\"}" >/dev/null
check_eq "blockdev-snapshot-sync mode absolute-paths (QEMU creates the file) writes an absolute backing name, or \"json:{...}\" over a node added with backing null: never Cinder's" \
	"$SHARE/volume-$B json:{" \
	"$(qemu-img info -U --output=json "$WORK/abs.qcow2" | jq -r '.["backing-filename"]') $(qemu-img info -U --output=json "$WORK/abs2.qcow2" | jq -r '.["backing-filename"][0:6]')"
guest a0 "write -P 0xc1 2M 1M" "write -P 0xc2 $((END + 65536)) 4096"
overlay q "volume-$A.$(sid 3)" "volume-$A.$(sid 2)" qcow2 a3
qmp q blockdev-snapshot '{"node": "a2", "overlay": "a3"}' >/dev/null
rec a0 a@3
guest a0 "write -P 0xd1 0 64k"
rec a0 a@live

# ---- block-commit of a middle overlay ----

check "block-commit {device: a3, top-node: a2, base-node: a1, backing-file, auto-dismiss: false}" \
	qmp q block-commit "{\"job-id\": \"c2\", \"device\": \"a3\", \"top-node\": \"a2\", \"base-node\": \"a1\", \"backing-file\": \"volume-$A.$(sid 1)\", \"auto-dismiss\": false}"
check "the job (type commit) concludes; job-dismiss" waitjob q c2
check_eq "the overlay above top names backing-file (relative), format qcow2" "volume-$A.$(sid 1) qcow2" \
	"$(header "volume-$A.$(sid 3)")"
check_eq "the top node a2 (made by blockdev-snapshot-sync) left the graph with the chain: its file is closed" "|0" \
	"$(qmp q query-named-block-nodes '{"flat": true}' | jq -r '.[] | select(.["node-name"] == "a2") | .["node-name"]')|$(fds_of q "volume-$A.$(sid 2)")"
rm -f "$SHARE/volume-$A.$(sid 2)"
check_eq "the guest's disk is unchanged; so is the chain on disk (commit reopens its base read-only: a flush)" "|" \
	"$(same_as a0 a@live)|$(on_disk "volume-$A.$(sid 3)" a@live)"
check_eq "the data of the deleted snapshot's successor (a3's backing, a1) is a@3" "" "$(on_disk "volume-$A.$(sid 1)" a@3)"

# ---- block-stream into the active node ----

check "block-stream {device: a3, base-node: a0, backing-file: volume-A, auto-dismiss: false}" \
	qmp q block-stream "{\"job-id\": \"s3\", \"device\": \"a3\", \"base-node\": \"a0\", \"backing-file\": \"volume-$A\", \"auto-dismiss\": false}"
check "the job (type stream) concludes" waitjob q s3
check_eq "the active file names backing-file (relative) with the base node's format, raw" "volume-$A raw" \
	"$(header "volume-$A.$(sid 3)")"
check_eq "the pulled node a1 (made by blockdev-add: the monitor holds it) stays, with its file open, until blockdev-del" \
	"a1 a1-file|100-100 201-201 203-203|1" \
	"$(qmp q query-named-block-nodes '{"flat": true}' | jq -r '.[] | .["node-name"] | select(. == "a1" or . == "a1-file")' | sort | tr '\n' ' ' | sed 's/ $//')|$(locks_of "volume-$A.$(sid 1)")|$(fds_of q "volume-$A.$(sid 1)")"
check "blockdev-del a1 (its file child, given inline, goes with it)" qmp q blockdev-del '{"node-name": "a1"}'
check_eq "a1's file is closed: it can go" "|0" \
	"$(qmp q query-named-block-nodes '{"flat": true}' | jq -r '.[] | .["node-name"] | select(. == "a1-file")')|$(fds_of q "volume-$A.$(sid 1)")"
rm -f "$SHARE/volume-$A.$(sid 1)"
check_eq "the guest's disk is unchanged by the stream" "" "$(same_as a0 a@live)"

# ---- block-stream with no base: a standalone active file ----

check "block-stream {device: a3} with no base" qmp q block-stream '{"job-id": "s0", "device": "a3", "auto-dismiss": false}'
check "it concludes" waitjob q s0
check_eq "the active file has no backing; it stays sparse (under 16 MiB allocated)" "- - yes" \
	"$(header "volume-$A.$(sid 3)") $([ "$(du -k "$SHARE/volume-$A.$(sid 3)" | cut -f1)" -lt 16384 ] && echo yes)"
not_on_disk() { ! on_disk "$@" >/dev/null; }
check72 "the file on disk lacks the streamed clusters' L2 entries until QEMU flushes (a crash now loses the base's data)" \
	not_on_disk "volume-$A.$(sid 3)" a@live
check "blockdev-reopen of the node with its options (file: its file node's name, backing: null) flushes it" \
	qmp q blockdev-reopen '{"options": [{"driver": "qcow2", "node-name": "a3", "file": "a3-file", "backing": null}]}'
check_eq "now the file on disk is the guest's disk" "" "$(on_disk "volume-$A.$(sid 3)" a@live)"
check_eq "the user's base nodes a0 and a0-file (--blockdev: the monitor holds them) stay, volume-A open but no lock on it" \
	"a0 a0-file|1|" \
	"$(qmp q query-named-block-nodes '{"flat": true}' | jq -r '.[] | .["node-name"] | select(. == "a0" or . == "a0-file")' | sort | tr '\n' ' ' | sed 's/ $//')|$(fds_of q "volume-$A")|$(locks_of "volume-$A")"
check "blockdev-del a0, then a0-file (a node of its own)" del_nodes q a0 a0-file
check_eq "volume-A is closed: it can go" 0 "$(fds_of q "volume-$A")"

# ---- a transaction of two snapshots ----

truncate -s "$GIB" "$SHARE/volume-$B.x"
(cd "$SHARE" && qemu-img create -q -f qcow2 -b "volume-$B" -F raw "volume-$B.$(sid 9)" "$GIB")
qmp q blockdev-add "$(jq -n -c --arg f "$SHARE/volume-$B.$(sid 9)" '{driver: "qcow2", "node-name": "b9", file: {driver: "file", filename: $f}, backing: null}')" >/dev/null
overlay q "volume-$A.$(sid 4)" "volume-$A.$(sid 3)" qcow2 a4
check "a transaction with a failing action (an unknown node) fails" fails_with "nope" qmp q transaction \
	'{"actions": [{"type": "blockdev-snapshot", "data": {"node": "a3", "overlay": "a4"}},
	              {"type": "blockdev-snapshot", "data": {"node": "nope", "overlay": "b9"}}]}'
check_eq "and changes nothing: the export still uses a3" a3 "$(export_node a0)"
rm -f "$SHARE/volume-$B.x"

# ---- one QMP client at a time; a stopped and a killed daemon ----

"$QMP_PYTHON" -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(4096); time.sleep(3)" "$WORK/q.qmp" &
holder=$!
sleep 0.5
qmp_rc() { "$QMP_PYTHON" "$QMP_PY" -t "$1" "$WORK/$2.qmp" query-jobs >/dev/null 2>&1; echo "rc=$?"; } # SECONDS DAEMON
check_eq "while another client is connected, qmp.py -t 1 gets no greeting (the monitor serves one client at a time)" \
	rc=2 "$(qmp_rc 1 q)"
wait "$holder"
kill -STOP "${QSD_PID[q]}"
t0=$(date +%s%N)
"$QMP_PYTHON" "$QMP_PY" -t 2 "$WORK/q.qmp" query-jobs >/dev/null 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "${QSD_PID[q]}"
check "a stopped daemon: connect succeeds, no greeting: qmp.py -t 2 gives up after about 2 s ($ms ms, rc $rc)" \
	test "$rc" = 2 -a "$ms" -ge 1900 -a "$ms" -lt 5000
check "it answers again after SIGCONT" qmp q query-jobs
qsd_kill q
t0=$(date +%s%N)
"$QMP_PYTHON" "$QMP_PY" -t 5 "$WORK/q.qmp" query-jobs >/dev/null 2>"$WORK/err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "a killed daemon: the socket file stays, connect is refused at once" "socket 2 refused fast" \
	"$(stat -c %F "$WORK/q.qmp") $rc $(grep -o refused "$WORK/err") $([ "$ms" -lt 1500 ] && echo fast || echo "$ms ms")"

# ---- a writable FUSE export ----

C=33333333-3333-4333-8333-333333333333
truncate -s "$GIB" "$SHARE/volume-$C"
qsd_start_files f fuse "volume-$C:c0" || bail "qemu-storage-daemon with a FUSE export"
check_eq "a writable FUSE export holds RESIZE on its node: lock byte 103 (with 100-101)" "100-101 103-103" \
	"$(locks_of "volume-$C")"
overlay f "volume-$C.$(sid 1)" "volume-$C" raw c1
qmp f blockdev-snapshot '{"node": "c0", "overlay": "c1"}' >/dev/null
guest c0 "write -P 0xe1 0 64k"
overlay f "volume-$C.$(sid 2)" "volume-$C.$(sid 1)" qcow2 c2
qmp f blockdev-snapshot '{"node": "c1", "overlay": "c2"}' >/dev/null
check_eq "blockdev-snapshot works under it; the FUSE export follows" c2 "$(export_node c0)"
check "block-commit of the middle overlay into the raw base works under it" \
	qmp f block-commit "{\"job-id\": \"c\", \"device\": \"c2\", \"top-node\": \"c1\", \"base-node\": \"c0\", \"backing-file\": \"volume-$C\", \"auto-dismiss\": false}"
waitjob f c >/dev/null
check72 "block-stream into the active node is refused: the job does not share RESIZE" \
	fails_with "Permission conflict.*'resize'" qmp f block-stream '{"job-id": "s", "device": "c2", "base-node": "c0", "auto-dismiss": false}'
check72 "so is an active block-commit (a mirror job)" \
	fails_with "Permission conflict.*'resize'" qmp f block-commit '{"job-id": "m", "device": "c2", "top-node": "c2", "base-node": "c0", "auto-dismiss": false}'
unmounted() { for _ in $(seq 1 50); do mountpoint -q "$1" || return 0; sleep 0.1; done; return 1; }
check "daemon f quits over QMP" qsd_quit f
check "its FUSE export is unmounted" unmounted "$WORK/c0.disk"
finish
