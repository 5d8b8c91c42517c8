#!/bin/bash
# soak.sh - a soak of one mount (LMDB catalogue): 16 clients (soak.py) for
# SOAK_SECONDS seconds (default 30; SOAK_SECONDS=600 for the long run) over
# four volumes in two consistency groups, each client looping over random
# operations: snapshot mkdir and rmdir, reads of disk.raw checked by sha256
# against the bytes the hypervisor (qemu-io on the share, under an exclusive
# hold of the volume) wrote before the snapshot, with qemu-img convert of the
# share's chains as second oracle, setfattr/getfattr of metadata, ls,
# group snapshots and their deletion. Checks: no error but the errnos the
# contract gives for races (EBUSY, EEXIST, ENOENT, ENODATA; tallied by
# operation), no wrong byte, no operation hung, the daemon's RSS flat after
# warm-up (the last quarter's max at most 16 MiB over the first quarter's;
# not checked under the sanitizers), at the end every snapshot reads right,
# snapfs-check finds nothing, the daemon exits 0 at unmount, every qcow2
# file passes qemu-img check, and the log has no warning, error or
# unexpected refusal. Prints the figures (operations by kind, expected
# errnos, latencies, RSS samples) as TAP comments.
# etcd-soak.sh runs the same with two hosts over one etcd cluster
# (SOAK_HOSTS=2).
# Environment: SOAK_SECONDS (30), SOAK_CLIENTS (16), SOAK_SEED (random),
# SOAK_FULL_READS (0.01: the share of reads that read every byte).
. "$(dirname "$0")/lib.sh"
HOSTS=${SOAK_HOSTS:-1}
[ "$HOSTS" = 2 ] && . "$(dirname "$0")/etcdlib.sh"
for tool in qemu-img qemu-io python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP no $tool"
		exit 0
	fi
done
DRIVER=$(cd "$(dirname "$0")" && pwd)/soak.py
CHECKER=$top_builddir/snapfs-check
# python checks: setup, kinds, errors, wrong bytes, hang, final, one RSS per
# daemon (+ with two hosts: seen across, same listings); then snapfs-check,
# one unmount per daemon, qemu-img check, logs
if [ "$HOSTS" = 2 ]; then plan 15; else plan 11; fi

# replay FILE: soak.py's results as TAP checks.
replay() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }" ;;
		"not ok "*) not_ok "${line#not ok }" ;;
		*) echo "$line" ;;
		esac
	done <"$1"
}

RSS_OPT=
if ldd "$SNAPFS" 2>/dev/null | grep -q libasan; then
	RSS_OPT=--no-rss-check
fi

ARGS=()
if [ "$HOSTS" = 2 ]; then
	etcd_cluster_start || exit 1
	mount_host a || exit 1
	mount_host b || exit 1
	ARGS=(--mount "$(host_mnt a)" --pid "${HOST_PID[a]}" --mount "$(host_mnt b)" --pid "${HOST_PID[b]}")
	LOGS=("$WORK/snapfs-a.log" "$WORK/snapfs-b.log")
	CHECK_OPTS="etcd=$ETCD_ENDPOINTS,etcd_prefix=$ETCD_PREFIX"
else
	mount_snapfs || exit 1
	ARGS=(--mount "$MNT" --pid "$SNAPFS_PID")
	LOGS=("$LOG")
	CHECK_OPTS="catalog=$CAT"
fi

echo "# soak: SOAK_SECONDS=${SOAK_SECONDS:-30}, $HOSTS host(s), snapfs $("$SNAPFS" --version 2>&1 | head -1)"
python3 "$DRIVER" run "${ARGS[@]}" --share "$SHARE" --work "$WORK" \
	--seconds "${SOAK_SECONDS:-30}" --clients "${SOAK_CLIENTS:-16}" \
	--full-reads "${SOAK_FULL_READS:-0.01}" ${SOAK_SEED:+--seed "$SOAK_SEED"} $RSS_OPT \
	--checks "$WORK/checks" 2>"$WORK/driver.err"
rc=$?
if [ "$rc" != 0 ] || [ -s "$WORK/driver.err" ]; then
	echo "# soak.py exited $rc:"
	sed 's/^/#   /' "$WORK/driver.err"
fi
[ -f "$WORK/checks" ] && replay "$WORK/checks"

if out=$("$CHECKER" -o "$CHECK_OPTS" "$SHARE" 2>&1); then
	ok "snapfs-check: the share and the catalogue agree"
else
	not_ok "snapfs-check: the share and the catalogue agree"
	echo "$out" | sed 's/^/#   /'
fi

if [ "$HOSTS" = 2 ]; then
	unmount_host a
	unmount_host b
else
	unmount_snapfs
fi

bad=''
n=0
for f in "$SHARE"/volume-*; do
	case $f in *.info) continue ;; esac
	[ "$(qemu-img info --output=json "$f" 2>/dev/null | jq -r .format)" = qcow2 ] || continue
	n=$((n + 1))
	qemu-img check -q "$f" >/dev/null 2>&1 || bad+=" $(basename "$f")"
done
check_eq "qemu-img check passes on every qcow2 file of the share ($n)" "" "$bad"

python3 "$DRIVER" logs --checks "$WORK/logchecks" "${LOGS[@]}"
replay "$WORK/logchecks"
finish
