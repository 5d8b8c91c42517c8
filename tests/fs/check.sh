#!/bin/bash
# snapfs-check compares a share with its catalogue beside a mounted snapfs
# and changes neither: a clean share reports nothing (exit 0); each
# disagreement made by hand on the share is reported (exit 1) and goes
# when it is undone: a missing overlay, a missing base, a file of an
# unknown volume (import would take it, or would not and why), an overlay
# of a known volume outside its chain, .info with another active file, a
# missing or an unknown snapshot key, an overlay rebased onto another
# file, an operation left by a crash (an operation a live snapfs runs is
# only a note). Share and catalogue checksums are the same after every
# check; a bad catalogue is exit 2. With SNAPFS_TEST_ETCD=1
# (etcd-check.sh) the catalogue is read from etcd's prefix.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
ETCD=${SNAPFS_TEST_ETCD:-0}
plan 42
CHECK=$top_builddir/snapfs-check
OUT=$WORK/check.out

# catalogue_state: every key of the catalogue with its value and revision
# (etcd; but the writer lock c/L, which a mount lets go of LINGER_MS after
# its last change), or the LMDB file's checksum
catalogue_state() {
	if [ "$ETCD" = 1 ]; then
		etcd_ctl get --prefix "$ETCD_PREFIX/c/" -w json |
			jq -c --arg lock "$ETCD_PREFIX/c/L" \
				'.kvs[]? | select((.key | @base64d) != $lock) | [(.key | @base64d), .value, .mod_revision]'
	else
		sha256sum "$CAT/data.mdb" | cut -d' ' -f1
	fi
}
# share_state: every file's name, size, mode, inode, mtime and ctime (any
# write changes ctime) and the checksum of the small ones (overlays, .info)
share_state() {
	(cd "$SHARE" && find . -printf '%p %s %m %i %T@ %C@\n' | sort &&
		find . -type f -size -16M -print0 | sort -z | xargs -0r sha256sum)
}
# run_check: snapfs-check over the share, output in $OUT; prints its exit status.
run_check() {
	local opts
	if [ "$ETCD" = 1 ]; then
		opts="etcd=$ETCD_ENDPOINTS,etcd_prefix=$ETCD_PREFIX"
	else
		opts="catalog=$CAT"
	fi
	"$CHECK" -o "$opts" "$SHARE" >"$OUT" 2>"$OUT.err"
	echo $?
}
# findings: the report's lines but the summary, "category: subject" only.
findings() { grep -v '^snapfs-check:' "$OUT" | sed 's/^\([a-z]*\): \([^:]*\): .*/\1: \2/' | sort | paste -sd'|'; }
# expect DESC STATUS FINDINGS [PATTERN]: a check run (share and catalogue
# unchanged by it) with that status and those findings (and PATTERN in
# the report): one TAP check for the run, one for what it found.
expect() {
	local st
	share_state >"$WORK/share.before"
	catalogue_state >"$WORK/catalogue.before"
	st=$(run_check)
	share_state >"$WORK/share.after"
	catalogue_state >"$WORK/catalogue.after"
	if [ "$st" = "$2" ] && cmp -s "$WORK/share.before" "$WORK/share.after" &&
		cmp -s "$WORK/catalogue.before" "$WORK/catalogue.after"; then
		ok "$1: exit $2, share and catalogue unchanged"
	else
		not_ok "$1: exit $2, share and catalogue unchanged (exit $st)"
		sed 's/^/#   /' "$OUT" "$OUT.err"
		diff "$WORK/share.before" "$WORK/share.after" | sed 's/^/#   share: /'
		diff "$WORK/catalogue.before" "$WORK/catalogue.after" | sed 's/^/#   catalogue: /'
	fi
	check_eq "$1: reported" "$3" "$(findings)"
	if [ -n "${4-}" ]; then
		grep -q -- "$4" "$OUT" || { echo "#   no line matches: $4"; sed 's/^/#   /' "$OUT"; }
	fi
}

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes
mkdir "$V/db" "$V/logs"
D=$V/db
vid=$(xattr user.id "$D")
hv "$D" "write -P 0xa1 0 1M"
mkdir "$D/snapshots/s1"
hv "$D" "write -P 0xa2 1M 1M"
mkdir "$D/snapshots/s2"
sid1=$(xattr user.id "$D/snapshots/s1")
sid2=$(xattr user.id "$D/snapshots/s2")
ov1=volume-$vid.$sid1
ov2=volume-$vid.$sid2
base=volume-$vid
lid=$(xattr user.id "$V/logs")
S1=tenants/acme/volumes/db/snapshots/s1
DB=tenants/acme/volumes/db

expect "a clean share, mounted" 0 ""
check "the summary says 0 disagreements" grep -q "^snapfs-check: .*: 0 disagreements$" "$OUT"

# Missing files.
mv "$SHARE/$ov1" "$WORK/ov1"
expect "s1's overlay gone (and s2's data with it)" 1 \
	"missing: $S1|missing: tenants/acme/volumes/db/snapshots/s2" "overlay $ov1 is not on the share"
mv "$WORK/ov1" "$SHARE/$ov1"
mv "$SHARE/volume-$lid" "$WORK/logs"
expect "the base of volume logs gone" 1 "missing: tenants/acme/volumes/logs"
mv "$WORK/logs" "$SHARE/volume-$lid"
expect "put back: clean" 0 ""

# Files the catalogue does not know.
uvid=$(cat /proc/sys/kernel/random/uuid)
usid=$(cat /proc/sys/kernel/random/uuid)
qemu-img create -q -f raw "$SHARE/volume-$uvid" 1M
expect "a base of an unknown volume" 1 "unknown: volume-$uvid" "import=TENANT would add it"
qemu-img create -q -f qcow2 -b "volume-$uvid" -F raw "$SHARE/volume-$uvid.$usid"
printf '{"active": "volume-%s.%s", "%s": "volume-%s.%s", "%s": "volume-%s.nothere"}' \
	"$uvid" "$usid" "$usid" "$uvid" "$usid" "$(cat /proc/sys/kernel/random/uuid)" "$uvid" \
	>"$SHARE/volume-$uvid.info"
expect "an unknown volume whose .info names a file that is not there" 1 "unknown: volume-$uvid" \
	"import would skip it"
rm -f "$SHARE/volume-$uvid"*
xsid=$(cat /proc/sys/kernel/random/uuid)
qemu-img create -q -f qcow2 -b "$ov2" -F qcow2 "$SHARE/volume-$vid.$xsid"
expect "an overlay of volume db outside its chain" 1 "unknown: volume-$vid.$xsid" "manageable/ lists it"
rm -f "$SHARE/volume-$vid.$xsid"

# .info that disagrees.
cp -p "$SHARE/$base.info" "$WORK/info"
jq -c --arg a "$ov1" '.active = $a' "$WORK/info" >"$SHARE/$base.info"
expect ".info with another active file" 1 "info: $DB" "says active $ov1, the catalogue $ov2"
jq -c --arg s "$sid1" 'del(.[$s])' "$WORK/info" >"$SHARE/$base.info"
expect ".info without s1's key" 1 "info: $S1" "has no key for snapshot $sid1"
jq -c --arg s "$sid1" --arg o "$ov2" '.[$s] = $o' "$WORK/info" >"$SHARE/$base.info"
expect ".info mapping s1 to another overlay" 1 "info: $S1" "maps snapshot $sid1 to $ov2"
ksid=$(cat /proc/sys/kernel/random/uuid)
jq -c --arg s "$ksid" --arg o "$ov2" '.[$s] = $o' "$WORK/info" >"$SHARE/$base.info"
expect ".info with a key the catalogue does not know" 1 "info: $DB" "names snapshot $ksid"
rm "$SHARE/$base.info"
expect "no .info although db has snapshots" 1 "info: $DB" "is missing"
cp -p "$WORK/info" "$SHARE/$base.info"

# Backing chains.
qemu-img rebase -q -u -b "volume-$lid" -F raw "$SHARE/$ov2"
expect "s2's overlay rebased onto another volume's file" 1 \
	"backing: tenants/acme/volumes/db/snapshots/s2" "has backing file volume-$lid, the catalogue $ov1"
qemu-img rebase -q -u -b "$ov1" -F qcow2 "$SHARE/$ov2"
expect "rebased back: clean" 0 ""

# A check beside a mount takes no lock the mount needs.
check "the mount still changes the catalogue after the checks" mkdir "$V/after"
rmdir "$V/after"

# Operations: one under way in the mounted snapfs is a note; one left by a crash is reported.
unmount_snapfs
SNAPFS_STALL_AT=snapshot-create-recorded SNAPFS_STALL_MS=3000 mount_snapfs || exit 1
mkdir "$D/snapshots/s3" &
mk=$!
sleep 1
st=$(run_check)
check_eq "an operation under way in the mounted snapfs: a note, exit 0" "0 2" \
	"$st $(grep -c '^note: .* under way since' "$OUT")"
wait $mk
unmount_snapfs
SNAPFS_CRASH_AT=snapshot-create-overlay mount_snapfs || exit 1
mkdir "$D/snapshots/s4" 2>/dev/null
kill_snapfs
[ "$ETCD" = 1 ] && sleep $((ETCD_TTL + 2)) # its lease expires: the host is gone
# (killed once its overlay exists: .info has no key for it yet)
expect "an operation left by a crash" 1 \
	"info: tenants/acme/volumes/db/snapshots/s4|operation: $DB|operation: tenants/acme/volumes/db/snapshots/s4" \
	"left by"
mount_snapfs || exit 1
expect "the next mount finished or undid it: clean" 0 ""

# Errors: exit 2.
"$CHECK" -o catalog=$WORK/nothere "$SHARE" >"$OUT" 2>&1
check_eq "a directory with no catalogue: exit 2" 2 $?
check "and it is not created" test ! -e "$WORK/nothere"
"$CHECK" -o bogus=1 "$SHARE" >"$OUT" 2>&1
check_eq "an unknown option: exit 2" 2 $?
"$CHECK" -o catalog=$CAT "$WORK/noshare" >"$OUT" 2>&1
check_eq "no share: exit 2" 2 $?
unmount_snapfs
finish
