#!/bin/bash
# group-crash.sh with the catalogue in etcd: one host, a 3-member etcd cluster of its
# own (lib.sh's mount_snapfs with SNAPFS_TEST_ETCD=1, see etcdlib.sh).
SNAPFS_TEST_ETCD=1 exec bash "$(dirname "$0")/group-crash.sh" "$@"
