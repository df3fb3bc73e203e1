"""The overlay's kernel objects on one host (Docker's layout), made by the agent.

Per overlay network, a namespace `<exec-root>/overlay/netns/1-<nid[:10]>` holding

    br0       a bridge with the subnet's gateway address, MTU 1450
    vxlan0    VXLAN id = the network's VNI, UDP 4789, learning off, proxy ARP on;
              created in the host's namespace (its UDP socket stays there, on the
              underlay) as `vx-<vni %06x>-<nid[:5]>`, then moved in and renamed;
              a port of br0
    veth<7>   one per local container (made by the CLI at join); the peer is the
              container's eth0, MTU 1450

and for every endpoint of another host on the network: an FDB entry on vxlan0 (its MAC
-> its host's VTEP address, permanent) and a neighbour entry (its IP -> its MAC,
permanent), so that nothing is flooded or learnt. `program_peers` makes the kernel
match a wanted set exactly: read what is there, add what lacks, delete what is stale
(so a restarted agent re-syncs without duplicates).

pyroute2 is imported here only: this module runs in the long-lived agent.
"""

from __future__ import annotations

import os
import subprocess
from minidock.hints import Any, NamedTuple

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import ndmsg

from minidock.net.kernel.netns import in_netns_fd

VXLAN_PORT = 4789
MTU = 1450
NUD_PERMANENT = ndmsg.states["permanent"]


class Peer(NamedTuple):
    ip: str
    mac: str
    vtep: str


def create_netns(path: str) -> None:
    """A persistent network namespace pinned on `path` (idempotent)."""
    from minidock.net.kernel.netns import is_key
    if os.path.exists(path) and is_key(path):
        return
    with open(path, "a"):
        pass
    subprocess.run(["unshare", f"--net={path}", "true"], check=True, capture_output=True)


def delete_netns(path: str) -> None:
    """Unpin the namespace; the kernel removes br0, vxlan0 and the veths with it."""
    from minidock.net.kernel.netns import unbind_key
    unbind_key(path)


def ensure_network(path: str, nid: str, vni: int, gateway: str, prefixlen: int) -> None:
    """Namespace, br0 and vxlan0 of one network (idempotent)."""
    create_netns(path)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with in_netns_fd(fd):
            inner = IPRoute()
        try:
            _ensure_inside(inner, fd, nid, vni, gateway, prefixlen)
        finally:
            inner.close()
    finally:
        os.close(fd)


def _ensure_inside(inner: Any, fd: int, nid: str, vni: int, gateway: str,
                   prefixlen: int) -> None:
    if not inner.link_lookup(ifname="br0"):
        inner.link("add", ifname="br0", kind="bridge", mtu=MTU)
    br = inner.link_lookup(ifname="br0")[0]
    if not any(a.get_attr("IFA_ADDRESS") == gateway for a in inner.get_addr(index=br)):
        inner.addr("add", index=br, address=gateway, prefixlen=prefixlen)
    lo = inner.link_lookup(ifname="lo")[0]
    inner.link("set", index=lo, state="up")
    if not inner.link_lookup(ifname="vxlan0"):
        tmp = f"vx-{vni:06x}-{nid[:5]}"
        with IPRoute() as host:
            if host.link_lookup(ifname=tmp):
                host.link("del", index=host.link_lookup(ifname=tmp)[0])
            host.link("add", ifname=tmp, kind="vxlan", vxlan_id=vni, vxlan_port=VXLAN_PORT,
                      vxlan_learning=0, vxlan_proxy=1, mtu=MTU)
            host.link("set", index=host.link_lookup(ifname=tmp)[0], net_ns_fd=fd)
        idx = inner.link_lookup(ifname=tmp)[0]
        inner.link("set", index=idx, ifname="vxlan0")
    vx = inner.link_lookup(ifname="vxlan0")[0]
    inner.link("set", index=vx, master=br, state="up")
    inner.link("set", index=br, state="up")


def kernel_peers(inner: Any, vx: int) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """({(mac, vtep)} of permanent FDB entries, {(ip, mac)} of permanent neighbours)."""
    fdb = set()
    for msg in inner.fdb("dump", ifindex=vx):
        dst, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
        if dst and mac and msg["state"] & NUD_PERMANENT and msg["ifindex"] == vx:
            fdb.add((mac, dst))
    neigh = set()
    for msg in inner.get_neighbours(ifindex=vx, family=2):
        ip, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
        if ip and mac and msg["state"] & NUD_PERMANENT:
            neigh.add((ip, mac))
    return fdb, neigh


def program_peers(path: str, peers: set[Peer]) -> tuple[int, int]:
    """Make vxlan0's permanent FDB and neighbour entries exactly `peers`;
    (entries added, entries removed)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with in_netns_fd(fd):
            inner = IPRoute()
    finally:
        os.close(fd)
    try:
        found = inner.link_lookup(ifname="vxlan0")
        if not found:
            return 0, 0
        vx = found[0]
        have_fdb, have_neigh = kernel_peers(inner, vx)
        want_fdb = {(p.mac, p.vtep) for p in peers}
        want_neigh = {(p.ip, p.mac) for p in peers}
        added = removed = 0
        for mac, vtep in have_fdb - want_fdb:
            inner.fdb("del", ifindex=vx, lladdr=mac, dst=vtep)
            removed += 1
        for ip, mac in have_neigh - want_neigh:
            inner.neigh("del", dst=ip, lladdr=mac, ifindex=vx)
            removed += 1
        for mac, vtep in want_fdb - have_fdb:
            inner.fdb("append", ifindex=vx, lladdr=mac, dst=vtep)
            added += 1
        for ip, mac in want_neigh - have_neigh:
            inner.neigh("replace", dst=ip, lladdr=mac, ifindex=vx, state=NUD_PERMANENT)
            added += 1
        return added, removed
    finally:
        inner.close()
