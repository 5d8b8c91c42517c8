# lib.sh - shared by the mount tests: a scratch share, a mount that is always
# unmounted (trap), TAP output, errno checks with real tools.
#
# Usage in a test:  . "$(dirname "$0")/lib.sh"; plan N; mount_snapfs; ...
# Environment: top_builddir (the build tree; default: two levels up);
# SNAPFS_TEST_ETCD=1 runs the test with the catalogue in etcd
# (docs/snapfs.md section 11): the first mount_snapfs starts a 3-member cluster for the script
# (etcdlib.sh) and every mount adds etcd=, etcd_prefix=, etcd_ttl= and one
# host_id for the whole script, so that a mount after a crash is the same
# host coming back; $CAT is then only the host's local cache.
# SNAPFS_WRAPPER: a command line put in front of every daemon the tests
# mount (mount_snapfs, etcdlib's mount_host), split into words, e.g.
#   SNAPFS_WRAPPER="valgrind --error-exitcode=99 --leak-check=full
#     --errors-for-leak-kinds=definite --track-fds=no -q --log-file=/tmp/vg.%p"
# A memcheck error or definite leak then makes the daemon exit 99, which
# unmount_snapfs's exit-status check reports. With a wrapper, a mount is
# waited for up to SNAPFS_MOUNT_WAIT seconds (default 60; 10 without).

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
SNAPFS="$top_builddir/snapfs"
read -r -a SNAPFS_WRAP <<<"${SNAPFS_WRAPPER:-}"
if [ -n "${SNAPFS_WRAPPER:-}" ]; then
	SNAPFS_MOUNT_WAIT=${SNAPFS_MOUNT_WAIT:-60}
else
	SNAPFS_MOUNT_WAIT=${SNAPFS_MOUNT_WAIT:-10}
fi
TEST_NAME=$(basename "$0" .sh)
[ "${SNAPFS_TEST_ETCD:-}" = 1 ] && TEST_NAME+=-etcd
T_COUNT=0
T_FAILED=0
SNAPFS_PID=
# Functions that cleanup runs, in order, after lib.sh's own mount is gone and
# before $WORK is removed (a helper library adds its own: CLEANUP_HOOKS+=" f").
CLEANUP_HOOKS=

# Unprivileged test users (no passwd entry needed for setpriv).
ALICE=61001   # member of TEAM
BOB=61002     # member of nothing
CAROL=61003   # member of ADMINS
TEAM=62001
ADMINS=62002

if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "1..0 # SKIP no /dev/fuse or fusermount3"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP mount tests run as root (they switch to test users with setpriv)"
	exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/snapfs-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
SHARE=$WORK/share
MNT=$WORK/mnt
CAT=$WORK/catalog
LOG=$WORK/snapfs.log
mkdir -p "$SHARE" "$MNT" "$CAT"
chmod 755 "$MNT"

cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	if [ -n "$SNAPFS_PID" ] && kill -0 "$SNAPFS_PID" 2>/dev/null; then
		kill "$SNAPFS_PID" 2>/dev/null
		wait "$SNAPFS_PID" 2>/dev/null
	fi
	local hook
	for hook in $CLEANUP_HOOKS; do
		"$hook"
	done
	if [ "$T_FAILED" -gt 0 ] && [ -f "$LOG" ]; then
		echo "# daemon log:"
		sed 's/^/#   /' "$LOG"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

plan() { echo "1..$1"; }
# need_fault_injection: the whole script is skipped (TAP "1..0 # SKIP")
# unless snapfs was built with --enable-fault-injection
need_fault_injection() {
	"$SNAPFS" --version | grep -q fault-injection && return
	echo "1..0 # SKIP snapfs built without --enable-fault-injection"
	exit 0
}

ok() {
	T_COUNT=$((T_COUNT + 1))
	echo "ok $T_COUNT - $1"
}

not_ok() {
	T_COUNT=$((T_COUNT + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_COUNT - $1"
}

# check DESC CMD...: passes when CMD exits 0.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		echo "$out" | sed 's/^/#   /'
	fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "#   expected: $2"
		echo "#   actual:   $3"
	fi
}

strerror_of() {
	case $1 in
	EPERM) echo "Operation not permitted" ;;
	ENOENT) echo "No such file or directory" ;;
	EACCES) echo "Permission denied" ;;
	EEXIST) echo "File exists" ;;
	ENOTDIR) echo "Not a directory" ;;
	EISDIR) echo "Is a directory" ;;
	EINVAL) echo "Invalid argument" ;;
	ENOSPC) echo "No space left on device" ;;
	EROFS) echo "Read-only file system" ;;
	EBUSY) echo "Device or resource busy" ;;
	ENOTEMPTY) echo "Directory not empty" ;;
	E2BIG) echo "Argument list too long" ;;
	ENAMETOOLONG) echo "File name too long" ;;
	ENOTSUP) echo "Operation not supported" ;;
	ENODATA) echo "No data available\|No such attribute" ;;
	EIO) echo "Input/output error" ;;
	EAGAIN) echo "Resource temporarily unavailable" ;;
	EDQUOT) echo "Disk quota exceeded" ;;
	ENOMEM) echo "Cannot allocate memory" ;;
	*) echo "unknown errno name $1" >&2; return 1 ;;
	esac
}

# check_errno DESC ERRNO CMD...: passes when CMD fails with that errno's
# message (tools print strerror).
check_errno() {
	local desc=$1 msg out
	msg=$(strerror_of "$2")
	shift 2
	if out=$("$@" 2>&1); then
		not_ok "$desc (succeeded, expected $msg)"
	elif printf "%s" "$out" | grep -q "$msg"; then
		ok "$desc"
	else
		not_ok "$desc (expected $msg)"
		echo "$out" | sed 's/^/#   /'
	fi
}

# as USER [GROUPS] -- CMD...: run CMD as uid USER (gid USER) with the given
# supplementary groups (comma separated, may be empty).
as() {
	local uid=$1 groups=$2
	shift 3
	if [ -n "$groups" ]; then
		setpriv --reuid="$uid" --regid="$uid" --groups="$groups" -- "$@"
	else
		setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
	fi
}

# mount_snapfs [OPTIONS]: mount SHARE on MNT with the catalogue in CAT.
mount_snapfs() {
	local opts="catalog=$CAT,allow_other${1:+,$1}" i
	if [ "${SNAPFS_TEST_ETCD:-}" = 1 ]; then
		if [ -z "$ETCD_ENDPOINTS" ]; then
			etcd_cluster_start || return 1
		fi
		opts+=",$(host_opts "$TEST_NAME")"
	fi
	"${SNAPFS_WRAP[@]}" "$SNAPFS" -f -o "$opts" "$SHARE" "$MNT" >>"$LOG" 2>&1 &
	SNAPFS_PID=$!
	for i in $(seq 1 $((SNAPFS_MOUNT_WAIT * 10))); do
		if mountpoint -q "$MNT"; then
			return 0
		fi
		if ! kill -0 "$SNAPFS_PID" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "# snapfs did not mount (options $opts):"
	sed 's/^/#   /' "$LOG"
	return 1
}

# unmount_snapfs: unmount and check that the daemon exits 0 (under ASan, or
# valgrind as SNAPFS_WRAPPER, a leak or error would make it exit non-zero).
unmount_snapfs() {
	local rc
	fusermount3 -u "$MNT"
	wait "$SNAPFS_PID"
	rc=$?
	SNAPFS_PID=
	check_eq "daemon exits 0 at unmount" 0 "$rc"
}

# kill_snapfs: what a crash leaves: SIGKILL, then the kernel's stale mount.
kill_snapfs() {
	if [ -n "$SNAPFS_PID" ]; then
		kill -9 "$SNAPFS_PID" 2>/dev/null
		wait "$SNAPFS_PID" 2>/dev/null
	fi
	SNAPFS_PID=
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
}

# Volume files on the share (sorted).
share_files() { (cd "$SHARE" && ls -1 | sort); }

# xattr NAME PATH: the value of an attribute (empty when absent).
xattr() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null; }

finish() {
	[ "$T_FAILED" -eq 0 ]
	exit $?
}

# crash_during STEP CMD...: mount with the crash point STEP armed, run CMD
# (the daemon must die under it: one check), clean up the dead mount, and
# mount again (which runs recovery).
crash_during() {
	local step=$1 i rc
	shift
	SNAPFS_CRASH_AT=$step mount_snapfs || return 1
	timeout -s KILL 120 "$@" >/dev/null 2>&1
	for i in $(seq 1 20); do
		kill -0 "$SNAPFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SNAPFS_PID" 2>/dev/null; then
		rc="alive after the operation"
		kill -9 "$SNAPFS_PID" 2>/dev/null
		wait "$SNAPFS_PID" 2>/dev/null
	else
		wait "$SNAPFS_PID" 2>/dev/null
		rc=$?
	fi
	SNAPFS_PID=
	check_eq "$step: the daemon was killed there" 137 "$rc"
	kill_snapfs
	mount_snapfs
}

if [ "${SNAPFS_TEST_ETCD:-}" = 1 ]; then
	. "$(dirname "${BASH_SOURCE[0]}")/etcdlib.sh"
fi
