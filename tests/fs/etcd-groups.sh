#!/bin/bash
# groups.sh with the catalogue in etcd: one host, a 3-member etcd cluster of its
# own (lib.sh's mount_snapfs with SNAPFS_TEST_ETCD=1, see etcdlib.sh).
# scripts/test runs the repeats in etcd in its plain pass only (CI time):
# the sanitizers' pass covers the etcd backend with multihost.sh.
if [ "${SNAPFS_TEST_ETCD_REPEATS:-1}" = 0 ]; then
	echo "1..0 # SKIP repeats in etcd left out (SNAPFS_TEST_ETCD_REPEATS=0)"
	exit 0
fi
SNAPFS_TEST_ETCD=1 exec bash "$(dirname "$0")/groups.sh" "$@"
