#!/bin/bash
# make-seeds.sh - regenerate the rarer fuzz seeds in tests/data/fuzz-seed/
# with qemu-img and qemu-io: legal images in layouts the other seeds lack.
#
# Usage: fuzz/make-seeds.sh [OUTDIR]   (default: tests/data/fuzz-seed)
#
# Reproducible: qemu-img writes the same bytes for the same commands
# (checked with qemu 7.2); the one clock it records, the date of an
# internal snapshot, is overwritten with zeros below. Each seed is a few
# KiB; the exceptions are said where they are made. Seeds whose header
# names a backing file name it "base" (raw), as the fuzz targets do.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/tests/data/fuzz-seed}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
ulimit -c 0

create() { qemu-img create -q -f qcow2 "$@"; }
io() {
	local img=$1
	shift
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io "${args[@]}" "$img" >/dev/null
}
# The raw base the overlays name ("base", 64 KiB).
head -c 65536 /dev/zero | tr '\0' '\141' >base

# refcount_bits=1 and =64 (refcount_order 0 and 6, qemu's extremes).
for rb in 1 64; do
	create -o cluster_size=512,refcount_bits=$rb rc$rb.qcow2 16k
	io rc$rb.qcow2 "write -P 0x11 1k 1536" "write -z 4k 1k" "write -P 0x22 10k 512"
done

# 512-byte clusters (the smallest) over the raw base: partial clusters,
# zero clusters, a discard.
create -o cluster_size=512 -b base -F raw c512.qcow2 16k
io c512.qcow2 "write -P 0x33 0 1536" "write -P 0x34 2560 100" "write -z 4k 1k" \
	"discard 2560 512" "write -z -u 8k 512"

# 2 MiB clusters (the largest): the reftable starts at 2 MiB, so the seed is
# the header cluster's used bytes only (qemu reads zeros past EOF and still
# opens it; snapfs refuses it as "refcount table past EOF": a header seed).
create -o cluster_size=2M c2m.qcow2 4M
io c2m.qcow2 "write -P 0x44 1M 64k"
truncate -s 4096 c2m.qcow2

# Extended L2 entries with zstd compression: a compressed cluster, a
# partly written cluster (some subclusters allocated), zero subclusters.
# Extended L2 needs 16 KiB clusters, and qemu puts the first L2 table at
# 64 KiB (after header, reftable, refblock, L1): this seed is ~100 KiB.
create -o cluster_size=16k,extended_l2=on,compression_type=zstd extl2-zstd.qcow2 128k
io extl2-zstd.qcow2 "write -c -P 0x55 0 16k" "write -P 0x56 20k 2k" "write -z 40k 4k" \
	"write -z 64k 1k"

# v2 (compat=0.10) overlay over the raw base: no zero clusters, a zlib
# compressed cluster, a partial write that copies the base.
create -o compat=0.10,cluster_size=1024 -b base -F raw v2-overlay.qcow2 16k
io v2-overlay.qcow2 "write -c -P 0x66 0 1k" "write -P 0x67 2560 512" "write -z 5k 1k"

# An internal snapshot: data written before it is shared (refcount 2),
# data written after it is copied; the snapshot table and its L1 copy.
create -o cluster_size=512 snap.qcow2 16k
io snap.qcow2 "write -P 0x77 0 2k" "write -P 0x78 8k 512"
qemu-img snapshot -c s1 snap.qcow2
io snap.qcow2 "write -P 0x79 1k 512" "write -z 8k 512"
# Zero the snapshot's date and VM clock (header offset 64: the table).
snapoff=$(od -An -tu8 --endian=big -j64 -N8 snap.qcow2 | tr -d ' ')
dd if=/dev/zero of=snap.qcow2 bs=1 seek=$((snapoff + 16)) count=16 conv=notrunc status=none

# A persistent dirty bitmap (the bitmaps header extension, a bitmap
# directory and a bitmap table), with writes recorded in it.
create -o cluster_size=512 bitmap.qcow2 16k
qemu-img bitmap --add bitmap.qcow2 b0
qemu-img bitmap --add -g 512 bitmap.qcow2 b1
io bitmap.qcow2 "write -P 0x88 2k 1k" "write -P 0x89 12k 512"

# Lazy refcounts left dirty: the incompatible dirty bit set, refcounts
# stale (qemu-io aborts after flushing the L2 tables).
create -o cluster_size=512,lazy_refcounts=on lazy-dirty.qcow2 16k
io lazy-dirty.qcow2 "write -P 0x99 0 1k"
(qemu-io -c "write -P 0x9a 3k 1k" -c "write -z 6k 1k" -c flush -c abort lazy-dirty.qcow2 \
	>/dev/null 2>&1 || true) 2>/dev/null
qemu-img info lazy-dirty.qcow2 | grep -q "lazy refcounts: true"
od -An -tx1 -j79 -N1 lazy-dirty.qcow2 | grep -q 1 # incompatible: dirty

seeds="rc1 rc64 c512 c2m extl2-zstd v2-overlay snap bitmap lazy-dirty"
for s in $seeds; do
	qemu-img info "$s.qcow2" >/dev/null
	cp "$s.qcow2" "$out/$s.qcow2"
done
ls -l "$out"
