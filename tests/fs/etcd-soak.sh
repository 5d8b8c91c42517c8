#!/bin/bash
# etcd-soak.sh - soak.sh with two hosts: two mounts (host_id a and b, each
# its own mount point, catalogue cache and log) over one share and one
# 3-member etcd cluster started by the test (etcdlib.sh); the 16 clients are
# split across them (8 each) and must see each other's snapshots: every
# snapshot made on one host shows in the other's by-id/ within 5 s (the
# contract says a second; the delay is printed), metadata set on one host
# reads back on the other, each host reads snapshots the other made, and at
# the end both list the same snapshots. SOAK_SECONDS as soak.sh.
SOAK_HOSTS=2 exec bash "$(dirname "$0")/soak.sh" "$@"
