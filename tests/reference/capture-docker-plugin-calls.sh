#!/bin/bash
# Records what Docker 20.10 itself sends to the example plugins (examples/), for
# tests/reference/docker-plugin-calls.jsonl. Run as root on a machine with docker.io:
#   unshare -m --propagation private bash tests/reference/capture-docker-plugin-calls.sh OUT
# Everything runs in a throwaway netns, with a tmpfs on /run/docker/plugins in this
# private mount namespace; dockerd has its own data root, exec root and socket, and is
# stopped (by PID) at the end with the plugins.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?output file}
D=$(mktemp -d /tmp/i12dk-XXXX)
NS=i12dk-$$
ip netns add $NS
IN="nsenter --net=/run/netns/$NS"
$IN ip link set lo up
mount --make-rprivate /
mount -t tmpfs tmpfs /run/docker/plugins
REC=$D/calls.jsonl
phase() { echo "{\"phase\": \"$1\"}" >> $REC; }
$IN python3 $REPO/examples/vethnet.py --sock /run/docker/plugins/vethnet.sock --record $REC & NETPID=$!
$IN python3 $REPO/examples/simpleipam.py --sock /run/docker/plugins/simpleipam.sock --record $REC & IPAMPID=$!
mkdir -p /run/docker/plugins/macipam
$IN python3 $REPO/examples/simpleipam.py --sock /run/docker/plugins/macipam/macipam.sock --record $REC --requires-mac & MACPID=$!
echo '{}' > $D/daemon.json
$IN dockerd --data-root $D/data --exec-root $D/exec -H unix://$D/docker.sock --pidfile $D/docker.pid \
  --config-file $D/daemon.json --log-level warn > $D/dockerd.log 2>&1 & DPID=$!
DK="$IN /usr/bin/docker -H unix://$D/docker.sock"
for i in $(seq 100); do $DK version >/dev/null 2>&1 && break; sleep 0.3; done
$DK load -i $REPO/build/busybox.tar >/dev/null
run() { echo "+ docker $*" >> $D/cli.txt; $DK "$@" >> $D/cli.txt 2>&1; echo "exit $?" >> $D/cli.txt; }
phase "network create -d vethnet --ipam-driver simpleipam --ipam-opt simpleipam.first=2 -o vethnet.route=10.99.0.0/16 -o foo=bar plugnet"
run network create -d vethnet --ipam-driver simpleipam --ipam-opt simpleipam.first=2 -o vethnet.route=10.99.0.0/16 -o foo=bar plugnet
phase "network create -d vethnet --ipam-driver simpleipam --subnet 10.124.5.0/24 --ip-range 10.124.5.128/25 --gateway 10.124.5.254 --aux-address a=10.124.5.7 --aux-address b=10.124.5.200 --internal net2"
run network create -d vethnet --ipam-driver simpleipam --subnet 10.124.5.0/24 --ip-range 10.124.5.128/25 --gateway 10.124.5.254 --aux-address a=10.124.5.7 --aux-address b=10.124.5.200 --internal net2
phase "network create -d vethnet --label k=v net3"
run network create -d vethnet --label k=v net3
phase "network create --ipam-driver simpleipam brnet"
run network create --ipam-driver simpleipam brnet
phase "run -d --name c1 --network plugnet busybox sleep 1000"
run run -d --name c1 --network plugnet busybox sleep 1000
phase "run -d --name c2 --network plugnet -p 8080:80 --expose 90 --mac-address 02:00:00:00:00:09 busybox sleep 1000"
run run -d --name c2 --network plugnet -p 8080:80 --expose 90 --mac-address 02:00:00:00:00:09 busybox sleep 1000
phase "run -d --name c3 --network net2 --ip 10.124.5.140 busybox sleep 1000"
run run -d --name c3 --network net2 --ip 10.124.5.140 busybox sleep 1000
phase "exec c1 ping -c1 c2"
run exec c1 sh -c 'ip addr; ip route; ping -c1 -W2 10.123.0.4'
phase "network inspect plugnet net2 net3 brnet"
run network inspect plugnet net2 net3 brnet
phase "inspect c1"
run inspect c1
phase "network connect net3 c1"
run network connect net3 c1
phase "network disconnect net3 c1"
run network disconnect net3 c1
phase "network create -d vethnet --ipam-driver macipam macnet"
run network create -d vethnet --ipam-driver macipam macnet
phase "run -d --name c5 --network macnet busybox sleep 1000"
run run -d --name c5 --network macnet busybox sleep 1000
phase "run -d --name c4 --network brnet busybox sleep 1000"
run run -d --name c4 --network brnet busybox sleep 1000
phase "stop c1"
run stop -t 1 c1
phase "rm -f c1 c2 c3 c4 c5"
run rm -f c1 c2 c3 c4 c5
phase "network rm plugnet net2 net3 brnet macnet"
run network rm plugnet net2 net3 brnet macnet
phase "end"
kill $DPID; for i in $(seq 100); do kill -0 $DPID 2>/dev/null || break; sleep 0.2; done
kill $NETPID $IPAMPID $MACPID
cp $REC $OUT; cp $D/cli.txt ${OUT%.jsonl}-cli.txt; cp $D/dockerd.log ${OUT%.jsonl}-dockerd.log
umount /run/docker/plugins
ip netns del $NS
rm -rf $D
