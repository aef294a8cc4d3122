#!/bin/sh
# Open MPI's "remote shell" for hosts that are network namespaces on this
# machine (tools/netns_hosts.sh): netns_rsh.sh HOST COMMAND... runs COMMAND in
# namespace HOST, the way ssh would run it on another host.
host=$1; shift
exec ip netns exec "$host" sh -c "$*"
