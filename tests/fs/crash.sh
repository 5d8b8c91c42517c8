#!/bin/bash
# Crash safety: the daemon is killed (SIGKILL, through the fault-injection
# hook of a --enable-fault-injection build) at every step of every volume
# operation; the next mount must finish or undo it, leaving no orphan file
# and no record that disagrees with the share.
. "$(dirname "$0")/lib.sh"

need_fault_injection
plan 27

V=$MNT/tenants/acme/volumes

# The active files the catalogue knows, against the files on the share.
check_consistent() {
	local known
	known=$(for v in "$V"/*; do [ -d "$v" ] && xattr user.active_file "$v"; echo; done | sed '/^$/d' | sort)
	check_eq "$1: share and catalogue agree" "$known" "$(share_files | grep -v '\.info$')"
}

mount_snapfs || exit 1
mkdir "$MNT/tenants/acme" "$V/keep"
unmount_snapfs

for step in volume-create-recorded volume-create-file; do
	crash_during $step mkdir "$V/new" || exit 1
	check_errno "$step: the half-made volume is undone" ENOENT stat "$V/new"
	check_consistent "$step"
	unmount_snapfs
done

for step in volume-delete-recorded volume-delete-file; do
	mount_snapfs && mkdir "$V/doomed" && unmount_snapfs
	crash_during $step rmdir "$V/doomed" || exit 1
	check_errno "$step: the delete is finished" ENOENT stat "$V/doomed"
	check_consistent "$step"
	unmount_snapfs
done

for step in volume-extend-recorded volume-extend-file; do
	mount_snapfs && size=$(xattr user.size "$V/keep") && unmount_snapfs
	crash_during $step setfattr -n user.size -v $((size + 1)) "$V/keep" || exit 1
	check_eq "$step: the extend is finished" "$((size + 1)) available $(((size + 1) * 1073741824))" \
		"$(xattr user.size "$V/keep") $(xattr user.status "$V/keep") $(stat -c %s "$SHARE/$(xattr user.active_file "$V/keep")")"
	unmount_snapfs
done
finish
