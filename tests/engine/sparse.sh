#!/bin/bash
# 1 TiB sparse chains: map building must be fast and bounded; the data map
# must equal qemu-img map, and the bytes of every data range (cut out by
# qemu's raw driver with offset= and size=) must equal ours. Nobody cats a terabyte here.
set -u
. "${top_srcdir:-${srcdir:-.}}/tests/engine/lib.sh"

T1=$((1024 * 1024 * 1024 * 1024))
G=$((1024 * 1024 * 1024))

# check_sparse NAME SPEC... (top first)
check_sparse() {
	local name=$1 top_fmt top start end bad=0 t0 t1
	shift
	top_fmt=${1%%:*}
	top=$W/${1#*:}
	mapfile -t args < <(fmtargs "$@")
	qemu-img map -f "$top_fmt" --output=json "$top" | map_rows | merge_data > "$W/qmap"
	t0=$(date +%s%N)
	"$MAP" -d "${args[@]}" > "$W/smap"
	t1=$(date +%s%N)
	check "$name: data map equals qemu-img map" cmp -s "$W/qmap" "$W/smap"
	check "$name: map built in under 2 s ($(((t1 - t0) / 1000000)) ms)" [ $(((t1 - t0) / 1000000)) -lt 2000 ]
	"$MAP" "${args[@]}" | map_rows | merge_data > "$W/jmap"
	check "$name: JSON map equals qemu-img map" cmp -s "$W/qmap" "$W/jmap"
	while read -r start end; do
		# qemu's raw driver over the image cuts the range out.
		rm -f "$W/piece"
		qemu-img convert -O raw --image-opts \
			"driver=raw,offset=$start,size=$((end - start)),file.driver=$top_fmt,file.file.filename=$top" \
			"$W/piece" || bad=1
		a=$(md5sum < "$W/piece")
		b=$("$MAP" --cat -o "$start" -l $((end - start)) "${args[@]}" | md5sum)
		[ "$a" = "$b" ] || { bad=1; echo "# range $start-$end differs"; }
	done < "$W/qmap"
	check "$name: bytes of every data range equal qemu's" [ $bad -eq 0 ]
	check "$name: size is 1 TiB" [ "$("$MAP" -p "$top" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" = $T1 ]
}

qemu-img create -q -f qcow2 "$W/base.qcow2" $T1 || bail create
qi "$W/base.qcow2" "write -P 0x21 0 1M" "write -P 0x22 $((300 * G + 4096)) 200k" \
	"write -c -P 0x23 $((700 * G)) 128k" "write -P 0x24 $((T1 - 65536)) 64k"
(cd "$W" && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2) || bail create
qi "$W/mid.qcow2" "write -P 0x31 $((1 * G)) 64k" "write -z $((300 * G)) 128k" \
	"write -c -P 0x32 $((500 * G)) 64k" "discard 0 64k"
(cd "$W" && qemu-img create -q -f qcow2 -o cluster_size=2M,extended_l2=on -b mid.qcow2 -F qcow2 top.qcow2) || bail create
qi "$W/top.qcow2" "write -P 0x41 $((1 * G + 32768)) 1M" "write -z $((700 * G)) 64k" \
	"write -P 0x42 $((900 * G + 65536)) 65536"
check_sparse "1 TiB qcow2 base" "qcow2:base.qcow2"
check_sparse "1 TiB chain of 3" "qcow2:top.qcow2" "qcow2:mid.qcow2" "qcow2:base.qcow2"

truncate -s $T1 "$W/base.raw"
qi "$W/base.raw" "write -P 0x51 $((5 * G)) 1M"
(cd "$W" && qemu-img create -q -f qcow2 -b base.raw -F raw over.qcow2) || bail create
qi "$W/over.qcow2" "write -P 0x52 $((5 * G + 4096)) 4096" "write -z $((5 * G + 65536)) 65536"
check_sparse "1 TiB over a sparse raw base" "qcow2:over.qcow2" "raw:base.raw"

done_testing
