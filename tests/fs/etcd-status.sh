#!/bin/bash
# status.sh with the catalogue in etcd: one host (and a second one for the
# hosts and readers of other hosts), a 3-member etcd cluster of its own.
SNAPFS_TEST_ETCD=1 exec bash "$(dirname "$0")/status.sh" "$@"
