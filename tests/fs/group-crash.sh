#!/bin/bash
# Crash safety of group snapshots and group fills: the daemon is killed
# (SIGKILL, through the fault-injection hook of a --enable-fault-injection
# build) at every step of mkdir cgsnapshots/C, rmdir cgsnapshots/C and
# setfattr user.source; the next mount must leave each operation all or
# nothing: a group snapshot either whole (every member snapshot available,
# with the volume's bytes at the crash) or absent (no member snapshot, no
# overlay left), a delete finished (or in error_deleting, cleared by a retry
# or a force-delete), a fill with all of its copies complete or none of them;
# always .info files that agree with the catalogue, qcow2 files that pass
# qemu-img check, no orphan file, and every other snapshot and live image
# with the bytes it had.
#
# Each scenario has a tenant of its own, prepared in one mount: volumes a, b,
# c (different data, the same in every tenant; a with a single snapshot s1,
# so a qcow2 active file, b and c raw), members of group G; delete scenarios
# also have group snapshots C and C2 (C is deleted: the oldest snapshot of b
# and c, merged into their raw base; a middle one of a); fill scenarios have
# C and an empty group "copy".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
export LC_ALL=C

need_fault_injection
plan 278

declare -A EXP SID LIVE
EXP_BY_VOLUME=1 # check_volume reads EXP[<volume name>/<snapshot name>]
TN=$MNT/tenants

# Steps: the first two undo a group snapshot, the last three keep it.
CREATE_UNDONE="cgsnapshot-create-recorded cgsnapshot-create-overlays"
CREATE_KEPT="cgsnapshot-create-switching cgsnapshot-create-info-1 cgsnapshot-create-info"
# step:how (rmdir, or an admin's force-delete of C in status creating)
DELETE_CASES="cgsnapshot-delete-recorded:rmdir cgsnapshot-delete-member:rmdir cgsnapshot-delete-member:force"
# step:source (the group snapshot C, or the group G itself)
CLONE_CASES="group-clone-recorded:C group-clone-copied:C group-clone-copied:G"

# ---- helpers ----

snaps_of() { # TENANTDIR: "a:snapshots b:snapshots c:snapshots"
	local v out=''
	for v in a b c; do out+="$v:$(ls "$1/volumes/$v/snapshots" 2>&1 | tr '\n' ',' | sed 's/,$//') "; done
	echo "${out% }"
}
tenant_of() { # CASE (step[:variant]): its tenant's name
	local t=${1#cgsnapshot-}
	t=${t#group-}
	case $1 in
	*:force) t=${t%%:*}-force ;;
	*:G) t=${t%%:*}-group ;;
	*) t=${t%%:*} ;;
	esac
	echo "$t"
}

# check_share DESC: no file on the share outside the catalogued volumes'
# chains (base, overlays of their snapshots, .info), as by-id lists them.
check_share() {
	local known
	known=$(find "$MNT/by-id" -mindepth 1 -printf '%f %l\n' 2>/dev/null | awk '
		$2 ~ /^\.\.\/tenants\/[^\/]+\/volumes\/[^\/]+$/ { vol[$2] = $1; print "volume-" $1; print "volume-" $1 ".info"; next }
		$2 ~ /^\.\.\/tenants\/[^\/]+\/volumes\/[^\/]+\/snapshots\/[^\/]+$/ { snap[$1] = $2 }
		END { for (s in snap) { v = snap[s]; sub(/\/snapshots\/[^\/]+$/, "", v); print "volume-" vol[v] "." s } }' | sort)
	check_eq "$1: no file on the share outside the catalogued chains" "" \
		"$(cd "$SHARE" && ls -A1 | sort | comm -23 - <(echo "$known"))"
}

qcow2_check_all() { local id rc=0; for id; do qcow2_check "$id" || rc=1; done; return $rc; } # VID...

# ---- setup: a tenant per scenario ----

# Every tenant gets the same writes, so the expected bytes (qemu-img's
# reading of each overlay's backing) taken from the first are the same for all.
make_tenant() { # NAME KIND (create, delete or clone)
	local t=$TN/$1 kind=$2 v
	local V=$t/volumes G=$t/consistencygroups/G
	mkdir "$t" "$V/a" "$V/b" "$V/c"
	hv "$V/a" "write -P 0xa1 0 4M" "write -P 0xa2 $END 64k"
	hv "$V/b" "write -P 0xb1 1M 2M" "write -z 1536k 256k" "write -P 0xb2 $((GIB - 4096)) 4096"
	hv "$V/c" "write -P 0xc1 512k 512k" "write -P 0xc2 $((END + 65536)) 128k" "write -P 0xc3 7M 1M"
	mkdir "$V/a/snapshots/s1"
	hv "$V/a" "write -c -P 0xa3 4M 64k" "write -z 0 64k" "write -P 0xa4 $((2 * MIB + 100)) 5000"
	mkdir "$G"
	setfattr -n user.add_volumes -v a,b,c "$G"
	[ -n "${EXP[a/s1]-}" ] || EXP[a/s1]=$(snap_expect "$V/a" s1)
	[ "$kind" = create ] && return 0
	mkdir "$G/cgsnapshots/C"
	for v in a b c; do SID[$1/$v]=$(xattr user.id "$V/$v/snapshots/C"); done
	hv "$V/a" "write -P 0xa5 1M 64k" "write -z $END 64k"
	hv "$V/b" "write -z 1M 512k" "write -c -P 0xb4 6M 64k" "write -P 0xb5 $((END + 4096)) 512"
	hv "$V/c" "write -P 0xc5 0 64k" "write -z 7M 128k" "write -c -P 0xc6 6M 64k"
	if [ "$kind" = clone ]; then
		mkdir "$t/consistencygroups/copy"
		return 0
	fi
	mkdir "$G/cgsnapshots/C2"
	hv "$V/a" "write -P 0xa6 3M 1M"
	hv "$V/b" "write -P 0xb6 0 64k"
	hv "$V/c" "write -z 512k 64k" "write -P 0xc7 5M 4k"
	if [ -z "${EXP[a/C2]-}" ]; then
		for v in a b c; do
			EXP[$v/C]=$(snap_expect "$V/$v" C) # also the live image of a create tenant
			EXP[$v/C2]=$(snap_expect "$V/$v" C2)
			LIVE[$v/4]=$(live_sum "$V/$v")
		done
	fi
}

mount_snapfs || exit 1
for step in $CREATE_UNDONE $CREATE_KEPT; do make_tenant "$(tenant_of "$step")" create; done
for c in $DELETE_CASES; do make_tenant "$(tenant_of "$c")" delete; done
setfattr -n user.status -v creating "$TN/$(tenant_of cgsnapshot-delete-member:force)/consistencygroups/G/cgsnapshots/C"
for c in $CLONE_CASES; do make_tenant "$(tenant_of "$c")" clone; done
check_eq "setup: the three volumes hold different data" 3 \
	"$(printf '%s\n' "${EXP[a/C]}" "${EXP[b/C]}" "${EXP[c/C]}" | sort -u | wc -l)"
unmount_snapfs

# ---- create ----


for step in $CREATE_UNDONE $CREATE_KEPT; do
	t=$TN/$(tenant_of "$step")
	G=$t/consistencygroups/G
	crash_during "$step" mkdir "$G/cgsnapshots/C" || exit 1
	if [[ " $CREATE_UNDONE " == *" $step "* ]]; then
		want=undone names='' again=C
		state="cgsnapshots=[] id= status= entries=[] members=[a: b: c:]"
	else
		want=kept names=C again=after
		state="cgsnapshots=[C] id=uuid status=available entries=[a b c changes changes.json info.json] members=[a:C's id b:C's id c:C's id]"
	fi
	got=undone
	[ -e "$G/cgsnapshots/C" ] && got=kept
	check_eq "$step: the group snapshot is $want" "$want" "$got"
	check_eq "$step: the group snapshot and its member snapshots are all there or none" "$state" "$(cg_state "$G")"
	# shellcheck disable=SC2086
	check_volume "$step: a" "$t/volumes/a" "${EXP[a/C]}" s1 $names
	for v in b c; do
		# shellcheck disable=SC2086
		check_volume "$step: $v" "$t/volumes/$v" "${EXP[$v/C]}" $names
	done
	check_share "$step"
	check "$step: the group takes a group snapshot $again after recovery" mkdir "$G/cgsnapshots/$again"
	unmount_snapfs
done

# ---- delete ----

# finish_delete C: C is gone, or in error_deleting and a retry (rmdir, else
# an admin's force-delete) removes it.
finish_delete() {
	[ -e "$1" ] || return 0
	local st
	st=$(xattr user.status "$1")
	[ "$st" = error_deleting ] || { echo "C is left in status '$st'"; return 1; }
	rmdir "$1" 2>/dev/null || setfattr -n user.force_delete -v 1 "$1" || return 1
	[ ! -e "$1" ] || { echo "C is still there after the retry"; return 1; }
}

for c in $DELETE_CASES; do
	step=${c%:*} how=${c#*:} tn=$(tenant_of "$c")
	t=$TN/$tn
	G=$t/consistencygroups/G
	if [ "$how" = force ]; then
		crash_during "$step" setfattr -n user.force_delete -v 1 "$G/cgsnapshots/C" || exit 1
	else
		crash_during "$step" rmdir "$G/cgsnapshots/C" || exit 1
	fi
	check "$tn: C is gone, or in error_deleting and removed by a retry" finish_delete "$G/cgsnapshots/C"
	check_eq "$tn: no member has a snapshot C any more; C2 and s1 stay" "C2|a:C2,s1 b:C2 c:C2" \
		"$(lsw "$G/cgsnapshots")|$(snaps_of "$t")"
	check_eq "$tn: the overlays of C's member snapshots are gone" "" \
		"$(for v in a b c; do share_files | grep -F "${SID[$tn/$v]:-unknown}"; done)"
	check_volume "$tn: a" "$t/volumes/a" "${LIVE[a/4]}" s1 C2
	check_volume "$tn: b" "$t/volumes/b" "${LIVE[b/4]}" C2
	check_volume "$tn: c" "$t/volumes/c" "${LIVE[c/4]}" C2
	check_share "$tn"
	check "$tn: the group takes a group snapshot C again after recovery" mkdir "$G/cgsnapshots/C"
	unmount_snapfs
done

# ---- fill (create from source) ----

# copies_state TENANTDIR: the new volumes and members of group copy.
copies_state() {
	echo "volumes=[$(lsw "$1/volumes" | tr ' ' '\n' | grep '^copy-' | tr '\n' ' ' | sed 's/ $//')] members=[$(lsw "$1/consistencygroups/copy/volumes")]"
}
all_copies="volumes=[copy-a copy-b copy-c] members=[copy-a copy-b copy-c]"

for c in $CLONE_CASES; do
	step=${c%:*} src=${c#*:} tn=$(tenant_of "$c")
	t=$TN/$tn
	G=$t/consistencygroups/G
	if [ "$src" = C ]; then
		value=consistencygroups/G/cgsnapshots/C
		want="${EXP[a/C]} ${EXP[b/C]} ${EXP[c/C]}"
	else
		value=consistencygroups/G
		want="${EXP[a/C2]} ${EXP[b/C2]} ${EXP[c/C2]}" # (the same writes as in a delete tenant before C2)
	fi
	crash_during "$step" setfattr -n user.source -v "$value" "$t/consistencygroups/copy" || exit 1
	got=$(copies_state "$t")
	case $got in
	"$all_copies") outcome=all ;;
	"volumes=[] members=[]") outcome=none ;;
	*) outcome="partial: $got" ;;
	esac
	check_eq "$tn: all of the copies exist or none ($outcome)" ok "$([ "$outcome" = all ] || [ "$outcome" = none ] && echo ok)"
	if [ "$outcome" = none ]; then
		check "$tn: the group is filled from $value after recovery" \
			setfattr -n user.source -v "$value" "$t/consistencygroups/copy"
	else
		check_errno "$tn: the filled group refuses another fill: ENOTEMPTY" ENOTEMPTY \
			setfattr -n user.source -v "$value" "$t/consistencygroups/copy"
	fi
	check_eq "$tn: copy-a copy-b copy-c, members of copy" "$all_copies" "$(copies_state "$t")"
	gid=$(xattr user.id "$t/consistencygroups/copy")
	want_st='' got_st=''
	for v in a b c; do
		d=$t/volumes/copy-$v
		want_st+="copy-$v:available:1:$gid: "
		got_st+="copy-$v:$(xattr user.status "$d"):$(xattr user.size "$d"):$(xattr user.consistency_group_id "$d"):$(backing_of "$(xattr user.active_file "$d")") "
	done
	check_eq "$tn: each copy is available, 1 GiB, in group copy, a file with no backing file" "$want_st" "$got_st"
	check_eq "$tn: each copy holds its source's content" "$want" \
		"$(live_sum "$t/volumes/copy-a") $(live_sum "$t/volumes/copy-b") $(live_sum "$t/volumes/copy-c")"
	# shellcheck disable=SC2046
	check "$tn: qemu-img check passes on every qcow2 file of the copies and the sources" qcow2_check_all \
		$(for v in a b c copy-a copy-b copy-c; do xattr user.id "$t/volumes/$v"; echo; done)
	check_eq "$tn: the sources' snapshots are unchanged" "${EXP[a/s1]} ${EXP[a/C]} ${EXP[b/C]} ${EXP[c/C]}" \
		"$(image_sum "$t/volumes/a/snapshots/s1/disk.raw") $(image_sum "$t/volumes/a/snapshots/C/disk.raw") $(image_sum "$t/volumes/b/snapshots/C/disk.raw") $(image_sum "$t/volumes/c/snapshots/C/disk.raw")"
	check "$tn: the sources are free again: G takes a group snapshot" mkdir "$G/cgsnapshots/after"
	check_share "$tn"
	unmount_snapfs
done
finish
