#!/bin/bash
# Rare but legal images, and mutants, read as qemu reads them: what qemu
# opens snapfs-map reads to the same bytes and the same data map; what qemu
# refuses to open, snapfs-map refuses too. Each image is made here with
# qemu-img/qemu-io and edited in place with a few bytes of Python.
set -u
. "${top_srcdir:-${srcdir:-.}}/tests/engine/lib.sh"

# edit FILE PYTHON: run PYTHON with f (the file, open r+b), h (its first
# 104 bytes), be64/be32/put64/put32 and the header's fields at hand.
edit() {
	python3 - "$1" "$2" <<'EOS' || bail "edit $1"
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(104)
be32 = lambda b, o: struct.unpack(">I", b[o:o + 4])[0]
be64 = lambda b, o: struct.unpack(">Q", b[o:o + 8])[0]
def at(off, n): f.seek(off); return f.read(n)
def put32(off, v): f.seek(off); f.write(struct.pack(">I", v))
def put64(off, v): f.seek(off); f.write(struct.pack(">Q", v))
cluster_bits = be32(h, 20)
nb_snapshots, snapshots_offset = be32(h, 60), be64(h, 64)
l1_offset = be64(h, 40)
l2_offset = be64(at(l1_offset, 8), 0) & 0x00fffffffffffe00
exec(sys.argv[2])
EOS
}

# agree NAME FILE: qemu-img convert and snapfs-map --cat both refuse FILE,
# or both read it to the same bytes.
agree() {
	local name=$1 file=$W/$2 q s
	rm -f "$W/ref.raw"
	qemu-img convert -O raw "$file" "$W/ref.raw" 2>/dev/null
	q=$?
	"$MAP" -q --cat "$file" >"$W/ours.raw" 2>/dev/null
	s=$?
	if [ $q -ne 0 ]; then
		check "$name: qemu refuses it, so does snapfs" [ $s -ne 0 ]
	else
		check "$name: qemu reads it, snapfs reads the same bytes" \
			cmp -s "$W/ref.raw" "$W/ours.raw"
	fi
}

# ---- the internal snapshot table, which qemu reads when it opens an image
qemu-img create -q -f qcow2 "$W/snap.qcow2" 1M || bail create
qi "$W/snap.qcow2" "write -P 0x44 0 64k"
qemu-img snapshot -c s1 "$W/snap.qcow2" || bail snapshot
mutant() { # NAME PYTHON
	cp "$W/snap.qcow2" "$W/$1.qcow2"
	edit "$W/$1.qcow2" "$2"
	agree "$1" "$1.qcow2"
}
agree "an image with an internal snapshot" snap.qcow2
mutant "no snapshots, table offset misaligned" \
	'put32(60, 0); put64(64, snapshots_offset + 8)'
mutant "table offset 0 (the header read as an entry)" 'put64(64, 0)'
mutant "table offset past the end of the file" 'put64(64, 1 << 30)'
mutant "table offset past INT64_MAX" 'put64(64, 0xffffffffffff0000)'
mutant "entry with 1024 bytes of extra data" 'put32(snapshots_offset + 36, 1024)'
mutant "entry with 1025 bytes of extra data" 'put32(snapshots_offset + 36, 1025)'
mutant "more entries than the table holds (zeros past EOF)" 'put32(60, nb_snapshots + 5)'
mutant "65536 entries" 'put32(60, 65536)'
mutant "65537 entries" 'put32(60, 65537)'
mutant "an entry whose snapshot L1 table is misaligned" \
	'put64(snapshots_offset, be64(at(snapshots_offset, 8), 0) + 8)'

# ---- compressed clusters
# In an extended L2 entry the subcluster bitmap of a compressed cluster
# means nothing: qemu ignores its allocation and zero bits.
qemu-img create -q -f qcow2 -o extended_l2=on "$W/xc.qcow2" 1M || bail create
qi "$W/xc.qcow2" "write -c -P 0x35 0 64k" "write -P 0x36 64k 64k"
for bits in 0x00000000ffffffff 0xffffffff00000000 0xffffffffffffffff 0x0000000100000001; do
	cp "$W/xc.qcow2" "$W/xc-$bits.qcow2"
	edit "$W/xc-$bits.qcow2" "put64(l2_offset + 8, $bits)"
	agree "extended L2: a compressed cluster with bitmap $bits" "xc-$bits.qcow2"
	check_chain "extended L2: a compressed cluster with bitmap $bits" "qcow2:xc-$bits.qcow2"
done
# A descriptor whose sector count runs far past the end of the file: the
# bytes there read as zeros, and the stream ends before them.
qemu-img create -q -f qcow2 "$W/cpe.qcow2" 1M || bail create
qi "$W/cpe.qcow2" "write -c -P 0x37 0 64k"
edit "$W/cpe.qcow2" '
e = be64(at(l2_offset, 8), 0)
x = 62 - (cluster_bits - 8)
put64(l2_offset, (1 << 62) | (((1 << (62 - x)) - 1) << x) | (e & ((1 << x) - 1)))'
agree "a compressed descriptor running past the end of the file" cpe.qcow2
check_chain "a compressed descriptor running past the end of the file" qcow2:cpe.qcow2

# ---- a data cluster cut by the end of the file: its tail reads as zeros
# and is data to qemu-img map (zero and data), so SEEK_DATA must say data.
qemu-img create -q -f qcow2 "$W/tail.qcow2" 1M || bail create
qi "$W/tail.qcow2" "write -P 0x38 0 64k" "write -P 0x39 128k 64k"
truncate -s $(($(stat -c %s "$W/tail.qcow2") - 4096)) "$W/tail.qcow2"
check_chain "a data cluster whose last 4 KiB are past the end of the file" qcow2:tail.qcow2
(cd "$W" && qemu-img create -q -f qcow2 -b tail.qcow2 -F qcow2 tail-top.qcow2) || bail create
qi "$W/tail-top.qcow2" "write -P 0x3a 0 4k"
check_chain "and an overlay over it" qcow2:tail-top.qcow2 qcow2:tail.qcow2

done_testing
