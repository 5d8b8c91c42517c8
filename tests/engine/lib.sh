# lib.sh - shared helpers for the engine's shell tests (sourced, not run).
# Prints TAP; the plan comes last (done_testing), which TAP allows.

: "${top_builddir:=.}"
: "${top_srcdir:=${srcdir:-.}}"
MAP=${SNAPFS_MAP:-$top_builddir/snapfs-map}
LIBQCOW_CAT=$top_builddir/tests/engine/libqcow-cat
[ -x "$LIBQCOW_CAT" ] || LIBQCOW_CAT=

T=0
FAILED=0
W=$(mktemp -d "${TMPDIR:-/tmp}/snapfs-engine.XXXXXX") || exit 99
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

ok() { T=$((T + 1)); echo "ok $T - $*"; }
not_ok() { T=$((T + 1)); echo "not ok $T - $*"; FAILED=1; }
skip() { T=$((T + 1)); echo "ok $T - $* # SKIP"; }
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
done_testing() { echo "1..$T"; exit 0; }
bail() { echo "Bail out! $*"; exit 99; }

for tool in qemu-img qemu-io; do
	command -v $tool >/dev/null || { echo "1..0 # SKIP $tool not installed"; exit 0; }
done
[ -x "$MAP" ] || bail "snapfs-map not built ($MAP)"

# qi FILE QEMU-IO-COMMAND... : run qemu-io commands on an image (format by magic).
qi() {
	local f=$1 fmt=raw
	shift
	[ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 514649fb ] && fmt=qcow2
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f $fmt "${args[@]}" "$f" >/dev/null || bail "qemu-io $f $*"
}

# merge_data: "start length data" lines -> merged "START END" data ranges.
merge_data() {
	awk '$3 == "true" { if (n && $1 == e) { e = $1 + $2 } else { if (n) printf "%.0f %.0f\n", s, e; s = $1; e = $1 + $2; n = 1 } }
	     END { if (n) printf "%.0f %.0f\n", s, e }'
}

# map_rows: qemu-img map JSON on stdin -> "start length data".
map_rows() {
	sed -n 's/.*"start": \([0-9]*\), "length": \([0-9]*\),.*"data": \(true\|false\).*/\1 \2 \3/p'
}

# fmtargs SPEC... : "qcow2:file" specs -> snapfs-map arguments.
fmtargs() {
	local s
	for s in "$@"; do printf '%s\n' -f "${s%%:*}" "$W/${s#*:}"; done
}

# check_chain NAME SPEC... : SPECs are fmt:file in $W, top first.
# Compares bytes with qemu-img convert, and the data map (ours from
# SEEK_DATA/SEEK_HOLE and from the JSON map) with qemu-img map.
check_chain() {
	local name=$1 top_fmt top
	shift
	top_fmt=${1%%:*}
	top=$W/${1#*:}
	mapfile -t args < <(fmtargs "$@")
	rm -f "$W/ref.raw"
	qemu-img convert -f "$top_fmt" -O raw "$top" "$W/ref.raw" || bail "convert $top"
	local a b
	a=$(md5sum < "$W/ref.raw")
	b=$("$MAP" --cat "${args[@]}" | md5sum)
	check "$name: bytes equal qemu-img convert" [ "$a" = "$b" ]
	qemu-img map -f "$top_fmt" --output=json "$top" | map_rows | merge_data > "$W/qmap"
	"$MAP" -d "${args[@]}" > "$W/smap"
	"$MAP" "${args[@]}" | map_rows | merge_data > "$W/jmap"
	check "$name: SEEK_DATA/SEEK_HOLE map equals qemu-img map" cmp -s "$W/qmap" "$W/smap"
	check "$name: JSON map equals qemu-img map" cmp -s "$W/qmap" "$W/jmap"
}

# check_libqcow NAME FILE... : libqcow reads the same bytes as qemu
# (after check_chain of the same chain left ref.raw).
check_libqcow() {
	local name=$1
	shift
	if [ -z "$LIBQCOW_CAT" ]; then
		skip "$name: libqcow oracle (not built)"
		return
	fi
	local files=() f
	for f in "$@"; do files+=("$W/$f"); done
	local a b
	a=$(md5sum < "$W/ref.raw")
	b=$("$LIBQCOW_CAT" "${files[@]}" 2>/dev/null | md5sum)
	check "$name: libqcow reads the same bytes" [ "$a" = "$b" ]
}
