#!/bin/bash
# Where log lines go (log=) and which (log_level=): a file takes every line,
# stamped, with -f and as a daemon; stderr as a daemon keeps the stderr it
# was started with; syslog with nothing listening on /dev/log warns at start
# and logs to stderr instead, so that no line is lost; a file that cannot be
# opened, an unknown destination or level refuse the mount with a message
# naming the option.
. "$(dirname "$0")/lib.sh"
export LC_ALL=C
plan 22

T=$MNT/tenants
STAMP='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z snapfs\[[0-9]+\]: '

# wait_unmounted: after fusermount3 -u of a daemon (no -f), until its last
# line is written: the daemon logs "unmounted" last.
wait_gone() { # FILE
	local i
	for i in $(seq 1 100); do
		grep -q "info: unmounted" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- log=FILE with -f ----
FILE=$WORK/snapfs-file.log
n=$(wc -l <"$LOG")
mount_snapfs "log=$FILE" || exit 1
mkdir "$T/acme"
setfattr -n user.meta.a/b -v 1 "$T/acme" 2>/dev/null
unmount_snapfs
check "log=FILE: the mount, the change and the unmount are in FILE" \
	sh -c "grep -q 'info: mounted' '$FILE' && grep -q 'info: created tenant acme' '$FILE' && grep -q 'info: unmounted' '$FILE'"
check "log=FILE: the refusal is in FILE, naming EINVAL and the tenant" grep -q "info: setxattr user.meta.a/b tenants/acme: EINVAL: " "$FILE"
check_eq "log=FILE: every line starts with its UTC time and the pid" "" "$(grep -Ev "$STAMP" "$FILE")"
check_eq "log=FILE: nothing on stderr" "" "$(tail -n +"$((n + 1))" "$LOG")"
check_eq "log=FILE: the file is created 0640" "640" "$(stat -c %a "$FILE")"
lines=$(wc -l <"$FILE")
mount_snapfs "log=$FILE" || exit 1
unmount_snapfs
check "log=FILE: a second mount appends" test "$(wc -l <"$FILE")" -gt "$lines" -a "$(head -1 "$FILE" | grep -c 'info: mounted')" = 1

# ---- refused at mount ----
refused_mount() { # DESC OPTIONS MESSAGE
	local out rc=0
	out=$("$SNAPFS" -f -o "catalog=$CAT,$2" "$SHARE" "$MNT" 2>&1) || rc=$?
	if [ "$rc" != 0 ] && grep -qF -- "$3" <<<"$out" && ! mountpoint -q "$MNT"; then
		ok "$1"
	else
		not_ok "$1 (exit $rc)"
		echo "$out" | sed 's/^/#   /'
		mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	fi
}
refused_mount "log= a file in a missing directory: refused, naming the option" \
	"log=$WORK/none/snapfs.log" "log=$WORK/none/snapfs.log: cannot open the log file: No such file or directory"
refused_mount "log= a relative path: refused" "log=snapfs.log" "log=snapfs.log: must be syslog, stderr or an absolute file path"
refused_mount "log_level= unknown: refused" "log_level=loud" "log_level=loud: must be error, warning, info or debug"
check "without -f too: a log file that cannot be opened fails the command" \
	sh -c "! '$SNAPFS' -o 'catalog=$CAT,log=$WORK/none/x.log' '$SHARE' '$MNT' 2>/dev/null && ! mountpoint -q '$MNT'"

# ---- as a daemon (no -f) ----
# daemon NAME OPTIONS: mount without -f, stderr into $WORK/NAME.err, make one
# refused change, unmount, and wait for the daemon's last line. When a
# syslog daemon listens on /dev/log, all of it runs in a mount namespace of
# its own where /dev/log is /dev/null (nothing listens).
daemon() {
	local name=$1 opts=$2 script
	script='"$1" -o "$2" "$3" "$4" 2>"$5" || exit 1
		setfattr -n user.meta.a/b -v 1 "$4/tenants/acme" 2>/dev/null
		fusermount3 -u "$4"'
	if [ -S /dev/log ]; then
		unshare -m --propagation private bash -c "mount --bind /dev/null /dev/log && $script" \
			daemon "$SNAPFS" "catalog=$CAT,allow_other${opts:+,$opts}" "$SHARE" "$MNT" "$WORK/$name.err"
	else
		bash -c "$script" daemon "$SNAPFS" "catalog=$CAT,allow_other${opts:+,$opts}" "$SHARE" \
			"$MNT" "$WORK/$name.err"
	fi
}

daemon syslog ""
wait_gone "$CAT/snapfs.log"
check "no /dev/log listener: a warning at start says so, on the caller's stderr" \
	grep -q "warning: log=syslog: nothing listens on /dev/log; logging to $CAT/snapfs.log instead" "$WORK/syslog.err"
check "and the daemon's lines are not lost: the refusal is in the catalogue's snapfs.log" \
	grep -q "info: setxattr user.meta.a/b tenants/acme: EINVAL: " "$CAT/snapfs.log"
check "as is its unmount" grep -q "info: unmounted" "$CAT/snapfs.log"
n=$(grep -c "info: unmounted" "$CAT/snapfs.log")
check "the daemon keeps no caller's stderr: a caller reading it to the end is not held" \
	timeout 20 bash -c 'out=$("$1" -o "$2" "$3" "$4" 2>&1) || exit 1; fusermount3 -u "$4"' \
	x "$SNAPFS" "catalog=$CAT,log=syslog" "$SHARE" "$MNT"
for i in $(seq 1 100); do
	[ "$(grep -c "info: unmounted" "$CAT/snapfs.log")" -gt "$n" ] && break
	sleep 0.1
done

daemon stderr "log=stderr"
wait_gone "$WORK/stderr.err"
check "log=stderr as a daemon: no warning" sh -c "! grep -q warning '$WORK/stderr.err'"
check "log=stderr as a daemon: the refusal after the mount is on stderr" \
	grep -q "info: setxattr user.meta.a/b tenants/acme: EINVAL: " "$WORK/stderr.err"

FILE2=$WORK/daemon.log
daemon file "log=$FILE2"
wait_gone "$FILE2"
check "log=FILE as a daemon: every line in FILE" \
	sh -c "grep -q 'info: mounted' '$FILE2' && grep -q 'info: setxattr user.meta.a/b tenants/acme: EINVAL: ' '$FILE2' && grep -q 'info: unmounted' '$FILE2'"
check_eq "log=FILE as a daemon: nothing on stderr" "" "$(cat "$WORK/file.err")"

# log_level=warning: no info line at all, the warnings stay.
daemon quiet "log_level=warning"
sleep 1
check "log_level=warning: the start-up warning is written" grep -q "warning: log=syslog" "$WORK/quiet.err"
check_eq "log_level=warning: no info line" "" "$(grep 'info:' "$WORK/quiet.err")"
finish
