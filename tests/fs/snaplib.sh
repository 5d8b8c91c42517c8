# snaplib.sh - shared by the snapshot mount tests (sourced after lib.sh):
# the hypervisor's view of the share and what each disk.raw must show.
# Images are 1 GiB; tests write only into the first 8 MiB and the last MiB.

GIB=1073741824
MIB=1048576
END=$((GIB - MIB))

fmt_of() { qemu-img info --output=json "$SHARE/$1" 2>/dev/null | jq -r '.format // empty'; }
backing_of() { qemu-img info --output=json "$SHARE/$1" 2>/dev/null | jq -r '.["backing-filename"] // empty'; }
# region_sum FILE: sha256 of the first 8 MiB and the last MiB of a 1 GiB image.
region_sum() {
	{
		dd if="$1" bs=1M count=8 status=none
		dd if="$1" bs=1M skip=1023 count=1 status=none
	} 2>/dev/null | sha256sum | cut -d' ' -f1
}
# image_sum FILE: "size:region_sum" ("missing" when FILE cannot be read).
image_sum() {
	if [ -f "$1" ] && [ -r "$1" ]; then
		echo "$(stat -c %s "$1"):$(region_sum "$1")"
	else
		echo "missing"
	fi
}
# to_raw SHAREFILE OUT: qemu-img's raw conversion of a file and its chain.
to_raw() {
	rm -f "$2"
	[ -n "$1" ] && [ -f "$SHARE/$1" ] &&
		qemu-img convert -f "$(fmt_of "$1")" -O raw "$SHARE/$1" "$2" 2>/dev/null
}
# file_sum SHAREFILE: image_sum of its conversion ("no image FILE" on failure).
file_sum() {
	if to_raw "$1" "$WORK/conv.raw"; then
		image_sum "$WORK/conv.raw"
	else
		echo "no image '$1'"
	fi
	rm -f "$WORK/conv.raw"
}
live_sum() { file_sum "$(xattr user.active_file "$1")"; }
# snap_expect VOLDIR SNAPNAME: the content of the backing of the snapshot's
# overlay, as qemu-img reads it (what disk.raw must show).
snap_expect() {
	local vid sid
	vid=$(xattr user.id "$1")
	sid=$(xattr user.id "$1/snapshots/$2")
	file_sum "$(backing_of "volume-$vid.$sid")"
}
# hv VOLDIR QEMU-IO-COMMAND...: the hypervisor writes to the active file.
hv() {
	local d=$1 f c args=()
	shift
	f=$(xattr user.active_file "$d")
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f "$(fmt_of "$f")" "${args[@]}" "$SHARE/$f" >/dev/null
}
# retry_busy CMD...: CMD, retried for up to 2 s while it fails with EBUSY only:
# the kernel sends RELEASE of a just-closed disk.raw asynchronously, so a
# reader that has exited may count as open for a moment.
retry_busy() {
	local i out
	for i in $(seq 1 20); do
		out=$("$@" 2>&1) && return 0
		grep -q "busy" <<<"$out" || break
		sleep 0.1
	done
	echo "$out"
	return 1
}
rmdir_snap() { retry_busy rmdir "$1"; }
