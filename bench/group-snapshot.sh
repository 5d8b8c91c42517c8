#!/bin/bash
# Benchmark: `mkdir G/cgsnapshots/C` of a consistency group of N volumes
# (default 16: one snapshot of every member at one instant) beside N single
# `mkdir V/snapshots/S` of the same volumes, one after another, and beside N
# `qemu-img create -b` of the same overlays (the floor for writing them).
# Each volume holds 16 MiB of data in its raw base. Median of RUNS runs
# (default 5); runs alternate, so both kinds see the same chain depths.
# Usage: sudo bench/group-snapshot.sh [SNAPFS_BINARY]
# Env:   N (volumes, default 16), RUNS (default 5)
set -euo pipefail
SNAPFS=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/snapfs}
N=${N:-16}
RUNS=${RUNS:-5}
WORK=$(mktemp -d /tmp/snapfs-bench.XXXXXX)
SHARE=$WORK/share MNT=$WORK/mnt CAT=$WORK/catalog
PID=
mkdir -p "$SHARE" "$MNT" "$CAT"
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
now() { echo "$EPOCHREALTIME"; } # bash 5: no fork, so timings hold only the command
median_ms() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] * 1000 }'; }
attr() { getfattr --absolute-names --only-values -n "$1" "$2"; } # NAME PATH
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

"$SNAPFS" -f -o "catalog=$CAT" "$SHARE" "$MNT" 2>>"$WORK/log" &
PID=$!
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { cat "$WORK/log" >&2; exit 1; }
T=$MNT/tenants/b
mkdir "$MNT/tenants/b"
G=$T/consistencygroups/g
members=()
for i in $(seq 1 "$N"); do
	mkdir "$T/volumes/v$i"
	qemu-io -f raw -c "write -P $i 0 16M" \
		"$SHARE/$(attr user.active_file "$T/volumes/v$i")" >/dev/null
	members+=("v$i")
done
mkdir "$G"
setfattr -n user.add_volumes -v "$(IFS=,; echo "${members[*]}")" "$G"

group=() single=() qemu=()
for r in $(seq 1 "$RUNS"); do
	a=$(now); mkdir "$G/cgsnapshots/c$r"; b=$(now)
	group+=("$(secs "$a" "$b")")
	a=$(now)
	for i in $(seq 1 "$N"); do mkdir "$T/volumes/v$i/snapshots/s$r"; done
	b=$(now)
	single+=("$(secs "$a" "$b")")
	# qemu-img create of the same overlays (names and formats looked up first)
	tops=()
	for i in $(seq 1 "$N"); do tops+=("$(attr user.active_file "$T/volumes/v$i")"); done
	a=$(now)
	for i in $(seq 1 "$N"); do
		qemu-img create -q -f qcow2 -b "${tops[$((i - 1))]}" -F qcow2 "$SHARE/bench-overlay-$i" 1G
	done
	b=$(now)
	qemu+=("$(secs "$a" "$b")")
	rm -f "$SHARE"/bench-overlay-*
done

# Every group snapshot and single snapshot must be there and available.
bad=0
for r in $(seq 1 "$RUNS"); do
	[ "$(attr user.status "$G/cgsnapshots/c$r")" = available ] || bad=$((bad + 1))
	for i in $(seq 1 "$N"); do
		for s in "c$r" "s$r"; do
			[ "$(attr user.status "$T/volumes/v$i/snapshots/$s")" = available ] ||
				bad=$((bad + 1))
		done
	done
done
check=$([ $bad -eq 0 ] && echo "all $((RUNS * N * 2)) member and single snapshots available" || echo "$bad NOT AVAILABLE")

g=$(median_ms "${group[@]}")
s=$(median_ms "${single[@]}")
q=$(median_ms "${qemu[@]}")
echo
echo "snapfs group snapshot benchmark ($(nproc) cores, $N volumes, median of $RUNS runs; $check)"
echo "command: sudo bench/group-snapshot.sh"
echo
printf '  %-52s %10s\n' "" "ms"
printf '  %-52s %10s\n' "mkdir G/cgsnapshots/C ($N members, one instant)" "$g"
printf '  %-52s %10s\n' "$N x mkdir V/snapshots/S, one after another" "$s"
printf '  %-52s %10s\n' "$N x qemu-img create -b (the same overlays)" "$q"
printf '  group / %d single: %s; group / qemu-img: %s\n' "$N" "$(ratio "$g" "$s")" "$(ratio "$g" "$q")"
printf '  per member: group %.1f ms, single %.1f ms\n' \
	"$(awk -v a="$g" -v n="$N" 'BEGIN { print a / n }')" "$(awk -v a="$s" -v n="$N" 'BEGIN { print a / n }')"
fusermount3 -u "$MNT"
wait "$PID" || true
PID=
