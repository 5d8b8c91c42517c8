#!/bin/bash
# A hot backup of the catalogue with mdb_copy -c while snapfs is mounted,
# once while it is idle and once under a stream of changes, and a restore
# into a new catalogue directory: the restored mount shows the same tree
# (names, inode numbers, owners, modes, sizes, every user.* attribute,
# info.json) and snapfs-check finds it in agreement with the share; the
# copy taken under changes is one consistent moment (a prefix of the
# changes), and snapfs-check names exactly the volumes created after it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
command -v mdb_copy >/dev/null || { echo "1..0 # SKIP no mdb_copy (lmdb-utils)"; exit 0; }
plan 16
CHECK=$top_builddir/snapfs-check

# tree_dump DIR: the whole tree as a reader sees it (status.json left out: it
# tells the time).
tree_dump() {
	(cd "$1" && find . -path ./status.json -prune -o -printf '%P %y %m %U %G %i %s %l\n' | sort
	 getfattr -R -h -d -m '^user\.' --absolute-names . 2>/dev/null | sed "s|^# file: |# |"
	 find . -name info.json -print0 | sort -z | xargs -0r cat)
}

mount_snapfs "admin_group=$ADMINS" || exit 1
mkdir "$MNT/tenants/acme" "$MNT/tenants/beta"
chgrp $TEAM "$MNT/tenants/beta" && chmod 2770 "$MNT/tenants/beta"
V=$MNT/tenants/acme/volumes
mkdir "$V/db" "$V/logs"
hv "$V/db" "write -P 0xa1 0 1M"
mkdir "$V/db/snapshots/s1"
hv "$V/db" "write -P 0xa2 1M 1M"
mkdir "$V/db/snapshots/s2"
setfattr -n user.description -v "orders" "$V/db"
setfattr -n user.meta.tier -v gold "$V/db/snapshots/s1"
mkdir "$MNT/tenants/acme/consistencygroups/app"
ln -s ../../../volumes/logs "$MNT/tenants/acme/consistencygroups/app/volumes/logs"
mkdir "$MNT/tenants/acme/consistencygroups/app/cgsnapshots/c1"

# Under changes: a volume created, then a metadata value set, 40 times.
(for i in $(seq 1 40); do
	mkdir "$V/w$i" && setfattr -n user.meta.n -v "$i" "$V/db" || exit 1
done) &
writer=$!
for i in $(seq 1 100); do [ -d "$V/w3" ] && break; sleep 0.05; done # changes under way
mkdir "$WORK/bk-busy" "$WORK/bk" # mdb_copy writes into an existing directory
check "mdb_copy -c while snapfs is mounted and changing" mdb_copy -c "$CAT" "$WORK/bk-busy"
wait $writer
check_eq "the changes all succeeded" 0 $?

check "mdb_copy -c while mounted, idle" mdb_copy -c "$CAT" "$WORK/bk"
check_eq "a backup is one file, data.mdb" "data.mdb" "$(ls "$WORK/bk")"
tree_dump "$MNT" >"$WORK/live.txt"
check "the live tree has the 40 volumes" grep -q '^tenants/acme/volumes/w40 d' "$WORK/live.txt"
unmount_snapfs

# Restore: a new catalogue directory holding the copy.
mkdir -m 700 "$WORK/restored"
cp "$WORK/bk/data.mdb" "$WORK/restored/"
CAT=$WORK/restored
mount_snapfs "admin_group=$ADMINS" || exit 1
tree_dump "$MNT" >"$WORK/restored.txt"
check "the restored catalogue shows the same tree" cmp "$WORK/live.txt" "$WORK/restored.txt"
diff "$WORK/live.txt" "$WORK/restored.txt" | head -5 | sed 's/^/#   /'
check "and agrees with the share" "$CHECK" -q -o catalog="$CAT" "$SHARE"
check_eq "snapshots still read as qemu-img reads them" "$(snap_expect "$V/db" s2)" \
	"$(image_sum "$V/db/snapshots/s2/disk.raw")"
check "it works on: a snapshot" mkdir "$V/db/snapshots/s3"
unmount_snapfs

# The copy taken under changes: one moment of them.
mkdir -m 700 "$WORK/restored-busy"
cp "$WORK/bk-busy/data.mdb" "$WORK/restored-busy/"
CAT=$WORK/restored-busy
log_at=$(wc -l <"$LOG")
mount_snapfs "admin_group=$ADMINS" || exit 1
k=$(ls "$V" | sed -n 's/^w//p' | sort -n | tail -1)
k=${k:-0}
# a create the copy caught under way is undone at mount (its file removed)
first_unknown=$((k + 1))
tail -n +$((log_at + 1)) "$LOG" | grep -q "recovery: interrupted create of w$((k + 1)) " &&
	first_unknown=$((k + 2))
check_eq "volumes w1..w$k, at least w3, no gap" "$k ok" \
	"$(ls "$V" | grep -c '^w') $([ "${k:-0}" -ge 3 ] && echo ok)"
n=$(xattr user.meta.n "$V/db")
check "db's meta n is that of the same moment (w$k: n=$n)" test "${n:-0}" = "$k" -o "${n:-0}" = $((k - 1))
"$CHECK" -o catalog="$CAT" "$SHARE" >"$WORK/check.out"
check_eq "snapfs-check: exit 1" 1 $?
expected=$(for i in $(seq $first_unknown 40); do echo unknown; done | paste -sd' ')
check_eq "it names only the volumes created after the copy (w$first_unknown..w40 and s3's files)" \
	"$expected" \
	"$(grep -v '^snapfs-check:' "$WORK/check.out" | grep -v "$(xattr user.id "$V/db")" | cut -d: -f1 | paste -sd' ')"
unmount_snapfs
finish
