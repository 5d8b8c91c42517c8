#!/bin/bash
# A tour of snapfs on a scratch share: mount, create a tenant and a volume,
# look at them with ls, getfattr and info.json, change them with setfattr,
# unmount. Usage: sudo examples/demo.sh [SNAPFS_BINARY]
set -euo pipefail
SNAPFS=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
WORK=$(mktemp -d /tmp/snapfs-demo.XXXXXX)
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog
PID=
mkdir -p "$SHARE" "$MNT" "$CAT"

cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

run() {
	printf '\n$ %s\n' "$*"
	"$@"
}

echo "share: $SHARE (stands for an NFS mount written by Cinder's NFS driver)"
"$SNAPFS" -f -o "catalog=$CAT" "$SHARE" "$MNT" 2>"$WORK/snapfs.log" &
PID=$!
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { cat "$WORK/snapfs.log"; exit 1; }
cd "$MNT"

run mkdir tenants/acme
run mkdir tenants/acme/volumes/db
run setfattr -n user.description -v "orders database" tenants/acme/volumes/db
run setfattr -n user.meta.tier -v gold tenants/acme/volumes/db
run setfattr -n user.size -v 10G tenants/acme/volumes/db
run ls -l tenants/acme tenants/acme/volumes
run getfattr -d tenants/acme/volumes/db
run cat tenants/acme/volumes/db/info.json
run ls -l by-id

echo
echo "# the hypervisor writes to the volume's active file (here: qemu-io)"
active=$(getfattr --only-values -n user.active_file tenants/acme/volumes/db)
run qemu-io -f raw -c "write -P 0xab 0 8M" -c "write -P 0xcd 1G 4M" "$SHARE/$active"
run mkdir tenants/acme/volumes/db/snapshots/before-upgrade
active=$(getfattr --only-values -n user.active_file tenants/acme/volumes/db)
run qemu-io -f qcow2 -c "write -P 0xef 0 8M" "$SHARE/$active"   # after the snapshot
run ls -l tenants/acme/volumes/db/snapshots/before-upgrade
run getfattr -d tenants/acme/volumes/db/snapshots/before-upgrade
run cat "$SHARE/volume-$(getfattr --only-values -n user.id tenants/acme/volumes/db).info"
echo
run cp --sparse=always tenants/acme/volumes/db/snapshots/before-upgrade/disk.raw "$WORK/backup.raw"
run du -h --apparent-size "$WORK/backup.raw"
run du -h "$WORK/backup.raw"
qemu-img convert -O raw "$SHARE/$(qemu-img info --output=json "$SHARE/$active" | jq -r '.["backing-filename"]')" "$WORK/expected.raw"
run cmp "$WORK/backup.raw" "$WORK/expected.raw"
echo "the copy equals qemu-img convert of the snapshot's chain"
run rmdir tenants/acme/volumes/db/snapshots/before-upgrade
run ls -ls "$SHARE"
run qemu-img info "$SHARE/$(getfattr --only-values -n user.active_file tenants/acme/volumes/db)"
cd /
run fusermount3 -u "$MNT"
wait "$PID"
PID=
echo
echo "demo: done (daemon log: $(wc -l <"$WORK/snapfs.log") lines, all info)"
