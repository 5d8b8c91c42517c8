#!/bin/bash
# Differential test of the qcow2 engine: a matrix of images made with
# qemu-img/qemu-io (raw and qcow2 bases, v2/v3, cluster sizes 512 B to
# 2 MiB, extended L2, zlib/zstd compressed clusters, zero writes with and
# without unmap, discards, partial-cluster writes), each read through
# snapfs-map and compared with qemu-img convert -O raw (bytes) and
# qemu-img map (data vs non-data ranges); libqcow as a second oracle where
# it reads the image.
set -u
. "${top_srcdir:-${srcdir:-.}}/tests/engine/lib.sh"

K=1024
M=$((1024 * 1024))

# base_workload FILE C S (raw or qcow2)
base_workload() {
	local f=$1 C=$2 S=$3
	qi "$f" "write -P 0x11 0 $((S / 2))" \
		"write -P 0x22 $((S / 2 + C)) $((3 * C))" \
		"write -z $((2 * C)) $C" \
		"discard $((4 * C)) $((2 * C))" \
		"write -P 0x23 $((S - C)) $C"
	case $f in
	*.qcow2) qi "$f" "write -c -P 0x33 $((S * 3 / 4)) $((4 * C))" \
		"write -c -P 0x34 $((S * 3 / 4 + 5 * C)) $C" ;;
	esac
}

# top_workload FILE C S EXTL2
top_workload() {
	local f=$1 C=$2 S=$3 ext=$4 sc=$(($2 / 32))
	qi "$f" "write -P 0x44 512 1024" \
		"write -P 0x55 $((5 * C + 512)) $C" \
		"write -z $((8 * C)) $((2 * C))" \
		"write -z -u $((10 * C)) $((2 * C))" \
		"discard $((12 * C)) $((2 * C))" \
		"write -c -P 0x66 $((16 * C)) $((2 * C))" \
		"write -z $((14 * C + 512)) 512" \
		"write -P 0x77 $((S / 2 - C / 2)) $C" \
		"write -P 0x78 $((S - 2 * C)) $((C / 2))"
	if [ "$ext" = on ]; then
		qi "$f" "write -P 0x88 $((20 * C + 3 * sc)) $((2 * sc))" \
			"write -z $((21 * C + sc)) $((4 * sc))" \
			"write -z -u $((22 * C)) $((5 * sc))" \
			"discard $((6 * C + 8 * sc)) $((8 * sc))"
	fi
}

# run_case NAME BASEFMT COMPAT CLUSTER EXTL2 COMPRESSION
run_case() {
	local name=$1 bfmt=$2 compat=$3 C=$4 ext=$5 comp=$6
	local S=$((8 * M))
	[ $((32 * C)) -gt $S ] && S=$((32 * C))
	local opts="compat=$compat,cluster_size=$C"
	[ "$ext" = on ] && opts="$opts,extended_l2=on"
	[ "$comp" = zstd ] && opts="$opts,compression_type=zstd"
	local base=$name-base.$bfmt top=$name-top.qcow2
	rm -f "$W"/*.qcow2 "$W"/*.raw
	if [ "$bfmt" = raw ]; then
		qemu-img create -q -f raw "$W/$base" $S || bail create
	else
		qemu-img create -q -f qcow2 -o "$opts" "$W/$base" $S || bail create
	fi
	base_workload "$W/$base" $C $S
	(cd "$W" && qemu-img create -q -f qcow2 -o "$opts" -b "$base" -F "$bfmt" "$top") || bail create
	top_workload "$W/$top" $C $S $ext
	check_chain "$name depth 1 ($bfmt base alone)" "$bfmt:$base"
	# libqcow reads single v2 images (no zero clusters, no extended L2,
	# no zstd); its overlay reads are wrong, see libqcow.sh.
	if [ "$bfmt" = qcow2 ] && [ "$ext" = off ] && [ "$comp" = zlib ] && [ "$compat" = 0.10 ]; then
		check_libqcow "$name depth 1" "$base"
	fi
	check_chain "$name depth 2" "qcow2:$top" "$bfmt:$base"
}

#        name        base  compat cluster  ext  compression
run_case raw-v3-64k  raw   1.1    $((64 * K)) off zlib
run_case raw-v2-64k  raw   0.10   $((64 * K)) off zlib
run_case raw-v2-2m   raw   0.10   $((2 * M))  off zlib
run_case q-v2-512    qcow2 0.10   512         off zlib
run_case q-v2-4k     qcow2 0.10   $((4 * K))  off zlib
run_case q-v2-64k    qcow2 0.10   $((64 * K)) off zlib
run_case q-v3-512    qcow2 1.1    512         off zlib
run_case q-v3-4k     qcow2 1.1    $((4 * K))  off zlib
run_case q-v3-64k    qcow2 1.1    $((64 * K)) off zlib
run_case q-v3-2m     qcow2 1.1    $((2 * M))  off zlib
run_case q-v3-64k-x  qcow2 1.1    $((64 * K)) on  zlib
run_case q-v3-2m-x   qcow2 1.1    $((2 * M))  on  zlib
run_case q-v3-4k-zs  qcow2 1.1    $((4 * K))  off zstd
run_case q-v3-64k-zs qcow2 1.1    $((64 * K)) off zstd
run_case q-v3-2m-xzs qcow2 1.1    $((2 * M))  on  zstd
run_case raw-v3-x-zs raw   1.1    $((64 * K)) on  zstd

done_testing
