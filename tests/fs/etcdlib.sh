# etcdlib.sh - a throwaway 3-member etcd cluster on loopback, and several
# snapfs "hosts" (one mount each, its own host_id, catalogue cache and mount
# point) over the one $SHARE and the one cluster. Sourced after lib.sh.
#
#   etcd_cluster_start       3 members on free loopback ports, data in $WORK/etcd;
#                            sets ETCD_ENDPOINTS (a+b+c, snapfs's etcd= syntax),
#                            ETCD_PREFIX (unique per run), ETCD_URLS (comma
#                            separated http:// URLs), ETCD_URL[1..3], ETCD_PID[1..3]
#   etcd_ctl ARGS...         etcdctl (v3 API) against all three members
#   etcd_member_stop N       kill -9 member N (1..3)
#   etcd_member_start N      restart member N on its data dir; it rejoins
#   etcd_cluster_stop        kill -9 every member (also run at exit)
#   etcd_leader              prints the number (1..3) of the member that leads
#   etcd_make_leader N       moves the leadership to member N
#   mount_host NAME [OPTS]   mount $SHARE at $WORK/mnt-NAME as host NAME
#   mount_host_start NAME [OPTS], mount_host_wait NAME: the same in two halves
#   unmount_host NAME        unmount; checks that its daemon exits 0 (one TAP check)
#   kill_host NAME           a crash: kill -9, then clear the stale mount
#   host_mnt NAME            prints $WORK/mnt-NAME
#
# Ports: a member needs a client and a peer port. Scripts that run in
# parallel (make -j2 check) pick them under one lock file, each choosing six
# ports that nothing listens on and keeping the lock until its members have
# bound them, so two scripts never take the same ports; a member that fails to
# start anyway (a port taken by something outside the lock) makes it try
# other ports.
#
# Timing (2-core machine, etcd 3.4.23): the cluster is healthy 0.5-1.6 s
# after the start (up to 2.6 s when a parallel script holds the port lock);
# etcd_cluster_start prints the time it took as a TAP comment.

# Sourced once (lib.sh sources it too when SNAPFS_TEST_ETCD=1).
[ -n "${ETCDLIB_LOADED-}" ] && return 0
ETCDLIB_LOADED=1

ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}
ETCD_TTL=${ETCD_TTL:-2}
ETCD_DIR=$WORK/etcd
ETCD_ENDPOINTS=
ETCD_URLS=
ETCD_PREFIX=
ETCD_LOCK_FD=
declare -a ETCD_PID=() ETCD_URL=() ETCD_CPORT=() ETCD_PPORT=()
declare -A HOST_PID=()

if ! command -v "$ETCD_BIN" >/dev/null 2>&1 || ! command -v "$ETCDCTL_BIN" >/dev/null 2>&1; then
	echo "1..0 # SKIP no etcd or etcdctl (scripts/install-deps installs etcd-server and etcd-client)"
	exit 0
fi

etcd_ctl() {
	ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="$ETCD_URLS" --dial-timeout=2s --command-timeout=5s "$@"
}

# etcd_port_used PORT: something listens on 127.0.0.1:PORT (or on any address).
etcd_port_used() {
	ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

# etcd_member_run N [new|existing]: start member N in the background.
etcd_member_run() {
	local n=$1 state=${2:-existing} cluster='' i
	for i in 1 2 3; do
		cluster+="${cluster:+,}m$i=http://127.0.0.1:${ETCD_PPORT[$i]}"
	done
	mkdir -p "$ETCD_DIR"
	# Short heartbeat and election timeout: a loopback cluster elects a
	# leader in well under a second, and notices a dead leader as fast.
	# (The subshell closes the port lock's descriptor, then becomes etcd.)
	(
		[ -n "${ETCD_LOCK_FD-}" ] && exec {ETCD_LOCK_FD}>&-
		exec "$ETCD_BIN" --name "m$n" --data-dir "$ETCD_DIR/m$n" \
			--listen-client-urls "http://127.0.0.1:${ETCD_CPORT[$n]}" \
			--advertise-client-urls "http://127.0.0.1:${ETCD_CPORT[$n]}" \
			--listen-peer-urls "http://127.0.0.1:${ETCD_PPORT[$n]}" \
			--initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PPORT[$n]}" \
			--initial-cluster "$cluster" --initial-cluster-state "$state" \
			--initial-cluster-token "snapfs-test-$$" \
			--heartbeat-interval 50 --election-timeout 500 \
			--logger zap --log-level warn
	) >>"$ETCD_DIR/m$n.log" 2>&1 &
	ETCD_PID[$n]=$!
}

# etcd_endpoint_healthy N: member N answers a quorum read.
etcd_endpoint_healthy() {
	ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints="${ETCD_URL[$1]}" --dial-timeout=1s \
		--command-timeout=1s endpoint health >/dev/null 2>&1
}

# etcd_try_ports BASE: start the members on BASE+1..3 (client) and
# BASE+4..6 (peer); succeeds once all listen, else stops them.
etcd_try_ports() {
	local base=$1 n i up
	for i in 1 2 3 4 5 6; do
		etcd_port_used $((base + i)) && return 1
	done
	for n in 1 2 3; do
		ETCD_CPORT[$n]=$((base + n))
		ETCD_PPORT[$n]=$((base + 3 + n))
		ETCD_URL[$n]=http://127.0.0.1:${ETCD_CPORT[$n]}
	done
	rm -rf "$ETCD_DIR"
	for n in 1 2 3; do etcd_member_run "$n" new; done
	for i in $(seq 1 100); do
		up=0
		for n in 1 2 3; do
			kill -0 "${ETCD_PID[$n]}" 2>/dev/null || break 2
			etcd_port_used "${ETCD_CPORT[$n]}" && etcd_port_used "${ETCD_PPORT[$n]}" && up=$((up + 1))
		done
		[ "$up" = 3 ] && return 0
		sleep 0.05
	done
	echo "# etcd members did not listen on ports $((base + 1))-$((base + 6)); trying others"
	etcd_cluster_stop
	return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

etcd_cluster_start() {
	local t0 try started='' i ms lock=${TMPDIR:-/tmp}/snapfs-test-etcd-ports.lock
	t0=$(now_ms)
	exec {ETCD_LOCK_FD}>>"$lock"
	if ! flock -w 120 "$ETCD_LOCK_FD"; then
		echo "# etcd_cluster_start: no lock on $lock in 120 s"
		exec {ETCD_LOCK_FD}>&-
		ETCD_LOCK_FD=
		return 1
	fi
	for try in $(seq 1 10); do
		# Ports 20000-31999: under the kernel's ephemeral range (32768-), so
		# no outgoing connection holds one; spread by pid and $RANDOM.
		if etcd_try_ports $((20000 + ((($$ * 7 + RANDOM) % 1199) * 10))); then
			started=1
			break
		fi
	done
	flock -u "$ETCD_LOCK_FD"
	exec {ETCD_LOCK_FD}>&-
	ETCD_LOCK_FD=
	if [ -z "$started" ]; then
		echo "# etcd_cluster_start: could not start a cluster"
		etcd_dump_logs
		return 1
	fi
	ETCD_URLS="${ETCD_URL[1]},${ETCD_URL[2]},${ETCD_URL[3]}"
	ETCD_ENDPOINTS="127.0.0.1:${ETCD_CPORT[1]}+127.0.0.1:${ETCD_CPORT[2]}+127.0.0.1:${ETCD_CPORT[3]}"
	ETCD_PREFIX=/snapfs-test/$TEST_NAME-$$-$RANDOM
	for i in $(seq 1 300); do
		if etcd_endpoint_healthy 1 && etcd_endpoint_healthy 2 && etcd_endpoint_healthy 3; then
			ms=$(($(now_ms) - t0))
			ETCD_START_SECONDS=$(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)))
			echo "# etcd cluster healthy in ${ETCD_START_SECONDS} s ($ETCD_ENDPOINTS, prefix $ETCD_PREFIX)"
			return 0
		fi
		sleep 0.1
	done
	echo "# etcd_cluster_start: the cluster is not healthy after 30 s"
	etcd_dump_logs
	return 1
}

etcd_member_stop() {
	local n=$1
	if [ -n "${ETCD_PID[$n]-}" ]; then
		kill -9 "${ETCD_PID[$n]}" 2>/dev/null
		wait "${ETCD_PID[$n]}" 2>/dev/null
	fi
	ETCD_PID[$n]=
}

# etcd_member_start N: restart member N on its data dir (it rejoins the
# cluster as the member it was) and wait until it serves quorum reads (which
# needs a quorum: with it, at least two of three members up).
etcd_member_start() {
	local n=$1 i
	etcd_member_run "$n" existing
	for i in $(seq 1 200); do
		etcd_endpoint_healthy "$n" && return 0
		kill -0 "${ETCD_PID[$n]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "# etcd member $n did not come back"
	sed 's/^/#   /' "$ETCD_DIR/m$n.log" | tail -20
	return 1
}

etcd_leader() {
	local n
	for n in 1 2 3; do
		[ -n "${ETCD_PID[$n]-}" ] || continue
		curl -s -m 2 "${ETCD_URL[$n]}/v3/maintenance/status" -d '{}' 2>/dev/null |
			jq -e '.leader and .leader == .header.member_id' >/dev/null 2>&1 && echo "$n" && return 0
	done
	return 1
}

etcd_make_leader() {
	local id
	id=$(etcd_ctl member list 2>/dev/null | awk -F', ' -v m="m$1" '$3 == m { print $1 }')
	[ -n "$id" ] && etcd_ctl move-leader "$id" >/dev/null 2>&1 && [ "$(etcd_leader)" = "$1" ]
}

etcd_cluster_stop() {
	local n
	for n in 1 2 3; do etcd_member_stop "$n"; done
}

etcd_dump_logs() {
	local n
	for n in 1 2 3; do
		[ -s "$ETCD_DIR/m$n.log" ] || continue
		echo "# etcd member $n log (last 30 lines):"
		tail -30 "$ETCD_DIR/m$n.log" | sed 's/^/#   /'
	done
}

# ---- hosts: snapfs mounts that share $SHARE and the cluster ----

host_mnt() { echo "$WORK/mnt-$1"; }

# host_opts NAME: the etcd options of host NAME.
host_opts() {
	echo "etcd=$ETCD_ENDPOINTS,etcd_prefix=$ETCD_PREFIX,host_id=$1,etcd_ttl=$ETCD_TTL"
}

# mount_host NAME [OPTIONS]: mount $SHARE at $WORK/mnt-NAME as host NAME
# (catalogue cache $WORK/cat-NAME, log $WORK/snapfs-NAME.log). Environment
# given on the call (SNAPFS_CRASH_AT=step mount_host a) reaches the daemon.
mount_host() {
	mount_host_start "$@" && mount_host_wait "$1"
}
# mount_host_start NAME [OPTIONS]: start host NAME's daemon, not waiting for
# the mount; mount_host_wait NAME waits for it (several hosts mount at once).
mount_host_start() {
	local name=$1 mnt=$WORK/mnt-$1 log=$WORK/snapfs-$1.log opts
	opts="catalog=$WORK/cat-$name,allow_other,$(host_opts "$name")${2:+,$2}"
	mkdir -p "$mnt" "$WORK/cat-$name"
	chmod 755 "$mnt"
	echo "--- mount (options $opts) at $(date +%T.%N)" >>"$log"
	"${SNAPFS_WRAP[@]}" "$SNAPFS" -f -o "$opts" "$SHARE" "$mnt" >>"$log" 2>&1 &
	HOST_PID[$name]=$!
}
mount_host_wait() {
	local name=$1 mnt=$WORK/mnt-$1 i
	for i in $(seq 1 $((SNAPFS_MOUNT_WAIT * 20 > 300 ? SNAPFS_MOUNT_WAIT * 20 : 300))); do
		mountpoint -q "$mnt" && return 0
		kill -0 "${HOST_PID[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "# host $name did not mount:"
	sed 's/^/#   /' "$WORK/snapfs-$name.log"
	return 1
}

# unmount_host NAME: unmount; one check that its daemon exits 0.
unmount_host() {
	local name=$1 rc
	fusermount3 -u "$WORK/mnt-$name"
	wait "${HOST_PID[$name]}"
	rc=$?
	HOST_PID[$name]=
	check_eq "host $name: daemon exits 0 at unmount" 0 "$rc"
}

# kill_host NAME: what a crash of the host leaves: SIGKILL, then the stale mount.
kill_host() {
	local name=$1
	if [ -n "${HOST_PID[$name]-}" ]; then
		kill -9 "${HOST_PID[$name]}" 2>/dev/null
		wait "${HOST_PID[$name]}" 2>/dev/null
	fi
	HOST_PID[$name]=
	fusermount3 -u "$WORK/mnt-$name" 2>/dev/null || fusermount3 -u -z "$WORK/mnt-$name" 2>/dev/null
	true
}

# Run by lib.sh's cleanup (CLEANUP_HOOKS), after lib.sh's own mount is gone:
# every host unmounted (their daemons may still talk to etcd on the way out),
# then the cluster stopped; logs dumped when a check failed.
etcd_cleanup() {
	local name mnt
	for mnt in "$WORK"/mnt-*; do
		[ -d "$mnt" ] || continue
		mountpoint -q "$mnt" 2>/dev/null || continue
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null
	done
	for name in "${!HOST_PID[@]}"; do
		[ -n "${HOST_PID[$name]}" ] || continue
		if kill -0 "${HOST_PID[$name]}" 2>/dev/null; then
			# give it 5 s to exit, then kill it
			timeout 5 tail --pid="${HOST_PID[$name]}" -f /dev/null 2>/dev/null
			kill -9 "${HOST_PID[$name]}" 2>/dev/null
		fi
		wait "${HOST_PID[$name]}" 2>/dev/null
	done
	if [ "$T_FAILED" -gt 0 ]; then
		for name in "$WORK"/snapfs-*.log; do
			[ -f "$name" ] || continue
			echo "# log of host $(basename "$name" .log | sed 's/^snapfs-//'):"
			sed 's/^/#   /' "$name"
		done
		etcd_dump_logs
	fi
	etcd_cluster_stop
}
CLEANUP_HOOKS+=" etcd_cleanup"
