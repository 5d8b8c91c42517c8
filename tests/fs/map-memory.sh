#!/bin/bash
# map_memory=: the maps of open snapshots never pass the bound. A snapshot
# whose map alone needs more cannot be opened (EIO, a log line naming the
# file); one that does not fit beside the maps of files open now gets
# ENOMEM until they close; maps kept of closed files give their room; the
# bytes served are still qemu's; status.json shows the use and the bound.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/snaplib.sh"
plan 18

# scatter VOLDIR N STEP: N 4 KiB writes, STEP bytes apart, into the volume's
# raw active file (2 extents each: data, then a hole).
scatter() {
	python3 - "$SHARE/$(xattr user.active_file "$1")" "$2" "$3" <<'EOS'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(int(sys.argv[2])):
    os.pwrite(fd, bytes([i % 251 + 1]) * 4096, i * int(sys.argv[3]))
os.close(fd)
EOS
}
used() { jq -r '.map_memory.used' "$MNT/status.json"; }
# whole_sum FILE, whole_expect VOLDIR SNAP: sha256 of all of a disk.raw, and
# of qemu-img's conversion of the snapshot's data.
whole_sum() { sha256sum <"$1" | cut -d' ' -f1; }
whole_expect() {
	local vid sid
	vid=$(xattr user.id "$1")
	sid=$(xattr user.id "$1/snapshots/$2")
	to_raw "$(backing_of "volume-$vid.$sid")" "$WORK/expect.raw" && whole_sum "$WORK/expect.raw"
	rm -f "$WORK/expect.raw"
}

mount_snapfs "map_memory=1M" || exit 1
mkdir "$MNT/tenants/acme"
V=$MNT/tenants/acme/volumes
mkdir "$V/big" "$V/mid" "$V/mid2" "$V/small"
scatter "$V/big" 8192 8192      # 16384 extents: 768 KiB, built in about twice that
scatter "$V/mid" 3000 16384     # 6000 extents: 281 KiB
scatter "$V/mid2" 3000 16384
scatter "$V/small" 200 65536
for v in big mid mid2 small; do mkdir "$V/$v/snapshots/s1"; done

check_eq "status.json shows the bound" 1048576 "$(jq -r '.map_memory.limit' "$MNT/status.json")"
check_eq "nothing open, nothing held" 0 "$(used)"
check_errno "a snapshot whose map alone passes the bound: EIO" EIO \
	cat "$V/big/snapshots/s1/disk.raw"
check "the log line names the file and the bound" \
	grep -q "volume-$(xattr user.id "$V/big"): its map would pass the bound on map memory (1024 KiB)" "$LOG"
n1=$(grep -c "its map would pass" "$LOG")
cat "$V/big/snapshots/s1/disk.raw" >/dev/null 2>&1
ls -ls "$V/big/snapshots/s1/" >/dev/null
check_eq "a second open and a stat log one line more, not a map per stat" $((n1 + 1)) \
	"$(grep -c "its map would pass" "$LOG")"
check "nothing is held after the refusal" test "$(used)" = 0
check "the snapshot itself is still available" test "$(xattr user.status "$V/big/snapshots/s1")" = available

exec 7<"$V/mid/snapshots/s1/disk.raw"
held=$(used)
check "an open disk.raw holds its map ($held bytes)" test "$held" -gt $((250 * 1024))
check_errno "a second that does not fit beside it: ENOMEM" ENOMEM \
	cat "$V/mid2/snapshots/s1/disk.raw"
check "the log line says the bound is full" \
	grep -q "the maps of open chains hold [0-9]* KiB of the 1024 KiB they may use" "$LOG"
check_eq "a small one still fits, and reads as qemu" "$(whole_expect "$V/small" s1)" \
	"$(whole_sum "$V/small/snapshots/s1/disk.raw")"
check_eq "the open one reads as qemu" "$(whole_expect "$V/mid" s1)" \
	"$(whole_sum "$V/mid/snapshots/s1/disk.raw")"
exec 7<&-

# Closed, its map stays cached, and gives its room to the next open.
ok_mid2=
for i in $(seq 1 20); do
	if head -c 1 "$V/mid2/snapshots/s1/disk.raw" >/dev/null 2>&1; then
		ok_mid2=$(whole_sum "$V/mid2/snapshots/s1/disk.raw")
		break
	fi
	sleep 0.1 # the kernel releases the closed file asynchronously
done
check_eq "once the first is closed, the second opens and reads as qemu" \
	"$(whole_expect "$V/mid2" s1)" "$ok_mid2"
check "under the bound all along" test "$(used)" -le 1048576

unmount_snapfs
mount_snapfs "map_memory=4M" || exit 1
check_eq "with map_memory=4M the big one reads as qemu" "$(whole_expect "$V/big" s1)" \
	"$(whole_sum "$V/big/snapshots/s1/disk.raw")"
unmount_snapfs
check "map_memory below 64K is refused at mount, with the reason" sh -c \
	"out=\$('$SNAPFS' -f -o catalog=$CAT,map_memory=1K '$SHARE' '$MNT' 2>&1); test \$? != 0 &&
	 echo \"\$out\" | grep -q 'map_memory=1K: not a size of at least 64K' && ! mountpoint -q '$MNT'"
finish
