#!/bin/bash
# Backups of a catalogue in etcd, taken while snapfs is mounted: etcdctl
# snapshot save of the whole cluster (a valid snapshot holding the share's
# keys), and mdb_copy -c of a host's copy (CATALOG/etcd-cache), under a
# stream of changes and idle; restored onto an empty prefix with
# etcd_seed=, the mount shows the same tree and snapfs-check finds it in
# agreement with the share.
SNAPFS_TEST_ETCD=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
command -v mdb_copy >/dev/null || { echo "1..0 # SKIP no mdb_copy (lmdb-utils)"; exit 0; }
plan 11
CHECK=$top_builddir/snapfs-check

tree_dump() {
	(cd "$1" && find . -path ./status.json -prune -o -printf '%P %y %m %U %G %i %s %l\n' | sort
	 getfattr -R -h -d -m '^user\.' --absolute-names . 2>/dev/null | sed "s|^# file: |# |"
	 find . -name info.json -print0 | sort -z | xargs -0r cat)
}

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes
mkdir "$V/db" "$V/logs"
hv "$V/db" "write -P 0xa1 0 1M"
mkdir "$V/db/snapshots/s1"
setfattr -n user.meta.tier -v gold "$V/db/snapshots/s1"
mkdir "$MNT/tenants/acme/consistencygroups/app"
ln -s ../../../volumes/logs "$MNT/tenants/acme/consistencygroups/app/volumes/logs"
mkdir "$MNT/tenants/acme/consistencygroups/app/cgsnapshots/c1"

(for i in $(seq 1 20); do mkdir "$V/w$i" || exit 1; done) &
writer=$!
mkdir "$WORK/bk-busy" "$WORK/bk"
for i in $(seq 1 100); do [ -d "$V/w3" ] && break; sleep 0.05; done # changes under way
check "mdb_copy -c of the host's copy while mounted and changing" \
	mdb_copy -c "$CAT/etcd-cache" "$WORK/bk-busy"
wait $writer
check "etcdctl snapshot save while mounted" \
	env ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="${ETCD_URL[1]}" snapshot save "$WORK/etcd.db"
keys=$(ETCDCTL_API=3 "$ETCDCTL_BIN" snapshot status "$WORK/etcd.db" -w json 2>/dev/null | jq .totalKey)
check "the snapshot is valid and holds the share's keys ($keys)" test "${keys:-0}" -gt 60
sleep 1 # the copy follows etcd through the watch
check "mdb_copy -c of the host's copy, idle" mdb_copy -c "$CAT/etcd-cache" "$WORK/bk"
tree_dump "$MNT" >"$WORK/live.txt"
unmount_snapfs

# Restore onto an empty prefix (as after losing the cluster's data:
# a new cluster, or the prefix deleted), from this host's copy.
mkdir -m 700 "$WORK/restored" "$WORK/cat-r"
cp "$WORK/bk/data.mdb" "$WORK/restored/"
ETCD_PREFIX=$ETCD_PREFIX-restored
CAT=$WORK/cat-r
mount_snapfs "etcd_seed=$WORK/restored" || exit 1
tree_dump "$MNT" >"$WORK/restored.txt"
check "the restored prefix shows the same tree" cmp "$WORK/live.txt" "$WORK/restored.txt"
diff "$WORK/live.txt" "$WORK/restored.txt" | head -5 | sed 's/^/#   /'
check "snapfs-check: it agrees with the share" \
	"$CHECK" -q -o "etcd=$ETCD_ENDPOINTS,etcd_prefix=$ETCD_PREFIX" "$SHARE"
check "it works on: a snapshot" mkdir "$V/db/snapshots/s2"
unmount_snapfs
mkdir -m 700 "$WORK/rb"
cp "$WORK/bk-busy/data.mdb" "$WORK/rb/"
ETCD_PREFIX=$ETCD_PREFIX-busy
CAT=$WORK/cat-rb
mkdir -m 700 "$CAT"
mount_snapfs "etcd_seed=$WORK/rb" || exit 1
k=$(ls "$V" | sed -n 's/^w//p' | sort -n | tail -1)
check_eq "the copy taken under changes loads: w1..w$k, at least w3, no gap" "$k ok" \
	"$(ls "$V" | grep -c '^w') $([ "${k:-0}" -ge 3 ] && echo ok)"
unmount_snapfs
finish
