#!/bin/bash
# The operator's view, /status.json: admins only (mode 0440, root and
# admin_group; others EACCES); an operation under way shows with its object,
# kind, host and start while it runs (held with SNAPFS_STALL_AT) and goes
# when it ends; objects in error* statuses show; catalogue usage follows the
# objects added; open disk.raw files show as readers. With
# SNAPFS_TEST_ETCD=1 (etcd-status.sh), etcd's database and keys, the hosts
# registered and another host's readers too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
ETCD=${SNAPFS_TEST_ETCD:-0}
if [ "$ETCD" = 1 ]; then plan 33; else plan 26; fi

ST=$MNT/status.json
st() { jq -r "$1" "$ST" 2>&1; }
# wait_for JQ-EXPR: up to 10 s until the expression is true in status.json.
wait_for() {
	local i
	for i in $(seq 1 100); do
		[ "$(jq -r "$1" "$ST" 2>/dev/null)" = true ] && return 0
		sleep 0.1
	done
	return 1
}

mount_snapfs "admin_group=$ADMINS" || exit 1
mkdir "$MNT/tenants/acme"
mkdir "$MNT/tenants/acme/volumes/db"
D=$MNT/tenants/acme/volumes/db

check_eq "status.json sits at the root beside tenants/ and by-id/" "by-id status.json tenants" "$(lsw "$MNT")"
check_eq "root's, group admin_group, mode 0440" "0:$ADMINS:440:regular empty file" \
	"$(stat -c '%u:%g:%a:%F' "$ST")"
check "it is JSON" jq -e . "$ST"
check "an admin_group member reads it" as $CAROL "$ADMINS" -- jq -e .operations "$ST"
check_errno "a tenant's member may not (it names every tenant)" EACCES as $ALICE "$TEAM" -- cat "$ST"
check_errno "nor anyone else" EACCES as $BOB "" -- cat "$ST"
check_errno "it is read-only" EROFS sh -c "echo x > '$ST'"
check_eq "no operation under way, no error, no problem" "0 0 0" \
	"$(st '"\(.operations | length) \(.errors | length) \(.problems | length)"')"
check_eq "objects counted by kind" "1 1" "$(st '"\(.catalogue.objects.tenant) \(.catalogue.objects.volume)"')"
if [ "$ETCD" = 1 ]; then
	check_eq "backend etcd" etcd "$(st .catalogue.backend)"
else
	check_eq "backend lmdb, records and map in bytes" "lmdb 2 true" \
		"$(st '"\(.catalogue.backend) \(.catalogue.records) \(.catalogue.map_used > 0 and .catalogue.map_used <= .catalogue.map_size)"')"
fi

# Usage follows the objects added.
rec0=$(st .catalogue.records)
used0=$(st .catalogue.map_used)
for i in $(seq 1 40); do mkdir "$MNT/tenants/acme/volumes/v$i"; done
check_eq "40 volumes later: 40 more records" "$((rec0 + 40))" "$(st .catalogue.records)"
check_eq "and 41 volumes counted" 41 "$(st .catalogue.objects.volume)"
check "the map's pages in use grew" test "$(st .catalogue.map_used)" -gt "$used0"
if [ "$ETCD" = 1 ]; then
	sleep 0.5 # the writer lock (a key) goes 100 ms after the last change
	keys0=$(st .catalogue.etcd.keys)
	size0=$(st .catalogue.etcd.db_size)
	for i in $(seq 41 60); do mkdir "$MNT/tenants/acme/volumes/v$i"; done
	sleep 0.5
	check_eq "etcd: 3 more keys per volume (record, name, id)" "$((keys0 + 60))" "$(st .catalogue.etcd.keys)"
	check "etcd: its database size is reported (bytes)" test "$(st .catalogue.etcd.db_size)" -ge "$size0"
	ep=$(st .catalogue.etcd.endpoint)
	check "etcd: the endpoint that answered is one of the cluster's ($ep)" \
		grep -q -- "${ep#http://}" <<<"$ETCD_ENDPOINTS"
fi

# An operation under way, held at its first recorded step.
unmount_snapfs
SNAPFS_STALL_AT=snapshot-create-recorded SNAPFS_STALL_MS=4000 mount_snapfs "admin_group=$ADMINS" || exit 1
t0=$(date -u +%s)
mkdir "$D/snapshots/s1" &
mk=$!
check "the snapshot's creation shows while it runs" wait_for '.operations | length == 2'
check_eq "the snapshot and its volume: path, kind, operation and status" \
	"tenants/acme/volumes/db volume snapshot available|tenants/acme/volumes/db/snapshots/s1 snapshot create creating" \
	"$(st '[.operations[] | "\(.path) \(.kind) \(.op) \(.status)"] | sort | join("|")')"
check_eq "owned by this host" "this host" "$(st '.operations[] | select(.kind == "snapshot") | .owner_state')"
since=$(date -u -d "$(st '.operations[] | select(.kind == "snapshot") | .since')" +%s 2>/dev/null)
check "since: when it began (UTC)" test -n "$since" -a "$since" -ge $((t0 - 1)) -a "$since" -le $((t0 + 5))
if [ "$ETCD" = 1 ]; then
	check_eq "etcd: the owning host is named" "$TEST_NAME $TEST_NAME" "$(st '[.operations[].owner] | join(" ")')"
fi
wait $mk
check_eq "mkdir succeeded" 0 $?
check_eq "once done, nothing under way" 0 "$(st '.operations | length')"

# Objects in error show, and go when reset.
setfattr -n user.status -v error "$D/snapshots/s1"
setfattr -n user.status -v error "$MNT/tenants/acme/volumes/v7"
check_eq "objects in error: both, with path and status" \
	"tenants/acme/volumes/db/snapshots/s1 snapshot error|tenants/acme/volumes/v7 volume error" \
	"$(st '[.errors[] | "\(.path) \(.kind) \(.status)"] | sort | join("|")')"
setfattr -n user.status -v error_deleting "$D/snapshots/s1"
check_eq "error_deleting counts too" "error_deleting" "$(st '.errors[] | select(.kind == "snapshot") | .status')"
setfattr -n user.status -v available "$D/snapshots/s1"
setfattr -n user.status -v available "$MNT/tenants/acme/volumes/v7"
check_eq "reset to available: no error left" 0 "$(st '.errors | length')"

# Open snapshots.
exec 7<"$D/snapshots/s1/disk.raw"
check_eq "an open disk.raw is a reader" "tenants/acme/volumes/db/snapshots/s1 1" \
	"$(st '.readers[] | "\(.path) \(.opens)"')"
exec 7<&-
check "closed, it goes" wait_for '.readers | length == 0'

if [ "$ETCD" = 1 ]; then
	mount_host other || exit 1
	check_eq "etcd: both hosts registered" "$(printf '%s\n' "$TEST_NAME" other | sort | paste -sd' ')" \
		"$(st '.hosts | sort | join(" ")')"
	exec 8<"$(host_mnt other)/tenants/acme/volumes/db/snapshots/s1/disk.raw"
	check_eq "etcd: another host's open disk.raw shows, with its host" \
		"tenants/acme/volumes/db/snapshots/s1 other" "$(st '.readers[] | "\(.path) \(.host)"')"
	exec 8<&-
	unmount_host other
fi
unmount_snapfs
finish
