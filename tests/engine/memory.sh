#!/bin/bash
# The memory bound on maps (docs/engine.md): a hostile image whose millions
# of L2 entries all name one host cluster (512-byte clusters, so every guest
# cluster is an extent of its own) cannot take the reader past the bound.
# Measures the peak RSS of snapfs-map as the kernel counts it (ru_maxrss).
. "$(dirname "$0")/lib.sh"

# hostile FILE ENTRIES: a qcow2 v3 image with 512-byte clusters whose
# ENTRIES L2 entries (ENTRIES/64 L2 tables) all map one data cluster of
# bytes 0xab. qemu reads it as 0xab everywhere.
hostile() {
	python3 - "$1" "$2" <<'EOS' || bail "build $1"
import struct, sys
path, entries = sys.argv[1], int(sys.argv[2])
cs = 512
per_l2 = cs // 8
n_l2 = entries // per_l2
l1_bytes = n_l2 * 8
l1_clusters = (l1_bytes + cs - 1) // cs
reftable, l1_off = cs, 2 * cs
l2_off = l1_off + l1_clusters * cs
data_off = l2_off + n_l2 * cs
hdr = struct.pack(">IIQIIQIIQQIIQ", 0x514649FB, 3, 0, 0, 9, entries * cs, 0,
                  n_l2, l1_off, reftable, 1, 0, 0)
hdr += struct.pack(">QQQII", 0, 0, 0, 4, 104)  # features, refcount order 4, header length
with open(path, "wb") as f:
    f.write(hdr.ljust(cs, b"\0"))
    f.write(b"\0" * cs)  # refcount table: empty (never read to serve bytes)
    l1 = b"".join(struct.pack(">Q", (l2_off + i * cs) | 1 << 63) for i in range(n_l2))
    f.write(l1.ljust(l1_clusters * cs, b"\0"))
    f.write(struct.pack(">Q", data_off | 1 << 63) * per_l2 * n_l2)
    f.write(b"\xab" * cs)
EOS
}

# peak_kib CMD...: run CMD (stdout to /dev/null, stderr to $W/err); print
# "EXIT PEAK_RSS_KIB".
peak_kib() {
	python3 - "$@" <<'EOS'
import os, resource, subprocess, sys
with open(os.environ["W"] + "/err", "wb") as err:
    p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=err)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOS
}
export W
# rss_check NAME KIB MAX_KIB: a peak RSS figure; the sanitizers' own memory
# (shadow, quarantine) makes it meaningless in their build.
ASAN=
ldd "$MAP" 2>/dev/null | grep -q libasan && ASAN=1
rss_check() {
	if [ -n "$ASAN" ]; then skip "$1 (RSS under the sanitizers is theirs)"; else check "$1" test "$2" -lt "$3"; fi
}

# 2 Mi entries: a map of 2 Mi extents, 96 MiB; building it holds the layer's
# map and the overlaid result at once (about 200 MiB before the bound).
ENTRIES=$((2 * 1024 * 1024))
hostile "$W/h.qcow2" $ENTRIES
check "qemu reads the hostile image (0xab in its first and last MiB)" \
	qemu-io -f qcow2 -c "read -P 0xab 0 1M" -c "read -P 0xab $((ENTRIES * 512 - 1048576)) 1M" "$W/h.qcow2"

# Without a bound it is this big: the figure the bound must cut.
read -r rc big < <(peak_kib "$MAP" -q --map-memory 4G --cat --length 1048576 "$W/h.qcow2")
check "with a bound of 4G it opens (exit $rc)" test "$rc" = 0
if [ -n "$ASAN" ]; then skip "and takes over 150 MiB (RSS under the sanitizers is theirs)"; else
	check "and takes over 150 MiB (peak RSS ${big} KiB)" test "$big" -gt $((150 * 1024)); fi
echo "# peak RSS, bound 4G: $big KiB"

for bound_mib in 16 64; do
	read -r rc peak < <(peak_kib "$MAP" --map-memory ${bound_mib}M --cat "$W/h.qcow2")
	echo "# peak RSS, bound ${bound_mib}M: $peak KiB"
	check "bound ${bound_mib}M: refused, exit 1 (got $rc)" test "$rc" = 1
	rss_check "bound ${bound_mib}M: peak RSS $peak KiB stays under the bound plus 24 MiB" \
		"$peak" $(((bound_mib + 24) * 1024))
	check "bound ${bound_mib}M: the log line names the file and the bound" \
		grep -q "h.qcow2: its map would pass the bound on map memory ($((bound_mib * 1024)) KiB)" "$W/err"
done

# Under the bound, the same image reads as qemu reads it.
read -r rc peak < <(peak_kib "$MAP" --map-memory 256M --cat --length 1048576 "$W/h.qcow2")
check "bound 256M: opens (exit $rc)" test "$rc" = 0
rss_check "bound 256M: peak RSS $peak KiB stays under 256 MiB plus 24 MiB" "$peak" $(((256 + 24) * 1024))
check "bound 256M: its first MiB is 0xab, as qemu reads it" \
	bash -c "'$MAP' -q --map-memory 256M --cat --length 1048576 '$W/h.qcow2' | cmp -s - <(head -c 1048576 /dev/zero | tr '\\0' '\\253')"

# A sane image is not touched by a small bound: 1 TiB sparse with some data.
qemu-img create -q -f qcow2 "$W/sane.qcow2" 1T
qi "$W/sane.qcow2" "write -P 0x5a 0 1M" "write -P 0x5b 500G 64k"
check "a sparse 1 TiB image opens under a 64K bound" \
	bash -c "'$MAP' -q --map-memory 64K --cat --offset $((500 << 30)) --length 65536 '$W/sane.qcow2' | cmp -s - <(head -c 65536 /dev/zero | tr '\\0' '\\133')"
check "snapfs-map refuses a bad bound with exit 2" \
	sh -c "'$MAP' --map-memory 0 -q '$W/sane.qcow2' >/dev/null 2>&1; test \$? = 2"

done_testing
