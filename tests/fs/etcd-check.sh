#!/bin/bash
# check.sh with the catalogue in etcd: snapfs-check reads the prefix.
SNAPFS_TEST_ETCD=1 exec bash "$(dirname "$0")/check.sh" "$@"
