#!/bin/sh
# Two "hosts" on one machine, to try multi-host runs without a cluster
# (docs/parallel.md): network namespaces h1 and h2 (10.77.0.11, .12) joined by a
# bridge (10.77.0.1), named in /etc/hosts; MPI reaches them through
# tools/netns_rsh.sh instead of ssh, and talks TCP over the bridge. Needs root.
#   sh tools/netns_hosts.sh up
#   sh tools/netns_hosts.sh mpirun -np 2 build/dblocks train --out runs/x --blocks 2 --gather
#   sh tools/netns_hosts.sh down
# The namespaces share this machine's file system: --gather still sends every
# block file over MPI (TCP), as it would between hosts.
set -e
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  up)
    ip link add br-db type bridge
    ip addr add 10.77.0.1/24 dev br-db
    ip link set br-db up
    for i in 1 2; do
      ip netns add h$i
      ip link add v-h$i type veth peer name eth0 netns h$i
      ip link set v-h$i master br-db
      ip link set v-h$i up
      ip netns exec h$i ip addr add 10.77.0.1$i/24 dev eth0
      ip netns exec h$i ip link set eth0 up
      ip netns exec h$i ip link set lo up
      grep -q "^10.77.0.1$i h$i\$" /etc/hosts || echo "10.77.0.1$i h$i" >> /etc/hosts
    done ;;
  down)
    for i in 1 2; do ip netns del h$i 2>/dev/null || true; done
    ip link del br-db 2>/dev/null || true
    sed -i '/^10\.77\.0\.1[12] h[12]$/d' /etc/hosts ;;
  mpirun)
    shift
    exec env HWLOC_COMPONENTS=-opencl mpirun --allow-run-as-root --oversubscribe \
      --mca plm_rsh_agent "$here/netns_rsh.sh" --mca oob_tcp_if_include 10.77.0.0/24 \
      --mca btl_tcp_if_include 10.77.0.0/24 --mca btl self,tcp --host h1,h2 "$@" ;;
  *) echo "usage: $0 up | down | mpirun MPIRUN-ARGS..." >&2; exit 2 ;;
esac
