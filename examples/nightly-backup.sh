#!/bin/bash
# Nightly backup of every volume of a tenant through snapfs:
#   snapshot (mkdir), copy its disk.raw (cp --sparse=always), verify the
#   copy against the snapshot (sha256), delete the snapshot (rmdir).
# Usage: nightly-backup.sh TENANT_DIR DEST_DIR
#   TENANT_DIR  e.g. /srv/snapfs/tenants/acme
#   DEST_DIR    where <volume>/<volume>-<UTC date>.raw and .sha256 go
# Exit status: 0 when every volume was copied and verified, 1 when any
# failed (each failure is printed), 2 for bad arguments.
set -uo pipefail

if [ $# -ne 2 ] || [ ! -d "$1/volumes" ]; then
	echo "usage: $0 TENANT_DIR DEST_DIR" >&2
	exit 2
fi
tenant=$1
dest=$2
stamp=$(date -u +%Y%m%dT%H%M%SZ)
snap=backup-$stamp
failed=0
done_ok=0

backup_volume() {
	local vol=$1 name out sum_snap sum_copy
	name=$(basename "$vol")
	out=$dest/$name
	mkdir -p "$out" || return 1
	# 1. point-in-time snapshot
	if ! mkdir "$vol/snapshots/$snap"; then
		echo "FAIL $name: snapshot refused (status $(getfattr --only-values -n user.status "$vol" 2>/dev/null))" >&2
		return 1
	fi
	# 2. sparse copy, 3. verify, whatever happens then: 4. delete the snapshot
	local rc=0
	if ! cp --sparse=always "$vol/snapshots/$snap/disk.raw" "$out/$name-$stamp.raw.part"; then
		echo "FAIL $name: copy" >&2
		rc=1
	else
		sum_snap=$(sha256sum <"$vol/snapshots/$snap/disk.raw" | cut -d' ' -f1)
		sum_copy=$(sha256sum <"$out/$name-$stamp.raw.part" | cut -d' ' -f1)
		if [ "$sum_snap" != "$sum_copy" ]; then
			echo "FAIL $name: copy differs from the snapshot" >&2
			rc=1
		else
			mv "$out/$name-$stamp.raw.part" "$out/$name-$stamp.raw"
			echo "$sum_copy  $name-$stamp.raw" >"$out/$name-$stamp.sha256"
		fi
	fi
	[ $rc -eq 0 ] || rm -f "$out/$name-$stamp.raw.part"
	if ! rmdir "$vol/snapshots/$snap"; then
		echo "FAIL $name: could not delete snapshot $snap (status $(getfattr --only-values -n user.status "$vol/snapshots/$snap" 2>/dev/null))" >&2
		rc=1
	fi
	return $rc
}

for vol in "$tenant"/volumes/*/; do
	[ -d "$vol" ] || continue
	vol=${vol%/}
	if backup_volume "$vol"; then
		echo "ok   $(basename "$vol"): $dest/$(basename "$vol")/$(basename "$vol")-$stamp.raw"
		done_ok=$((done_ok + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "nightly-backup: $done_ok volumes backed up, $failed failed"
[ $failed -eq 0 ]
