"""The bridge driver's kernel steps (libnetwork's drivers/bridge/setup_*.go), each
idempotent and each a named step of the caller's Pipeline (the article's setup queue):

    setupDevice -> setupDefaultSysctl (accept_ra=0, IPv6 on/off) -> setupBridgeIPv4
    -> (IPv6: ipv6.py) -> setupLoopbackAddressing (route_localnet without the userland
    proxy) -> (rules) -> setupBridgeNetFiltering -> setupDeviceUp

Sysctls are written through /proc/sys, which follows the calling thread's netns.
"""

from __future__ import annotations

import os
import sys
from minidock.hints import Any

from minidock.errors import Internal
from minidock.net.kernel.sysctl import PROC_NET, write as write_sysctl


def random_mac() -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4))


def ensure_bridge(nl: Any, name: str, mtu: int) -> bool:
    """Create the bridge `name` (random 02:42 MAC) unless it exists; True if created."""
    link = nl.link_get(name)
    if link is None:
        nl.bridge_add(name, mac=random_mac(), mtu=mtu)
        return True
    if link.kind and link.kind != "bridge":
        raise Internal(f"device {name} exists and is not a bridge")
    if mtu and link.mtu != mtu:
        nl.link_set(link.index, mtu=mtu)
    return False


def ensure_address(nl: Any, name: str, gateway: str, prefixlen: int) -> None:
    """The bridge holds exactly `gateway/prefixlen` as its IPv4 address."""
    link = nl.link_get(name)
    have = nl.addr_list(link.index)
    if not any(a.address == gateway and a.prefixlen == prefixlen for a in have):
        for a in have:
            nl.addr_del(link.index, a.address, a.prefixlen)
        nl.addr_add(link.index, gateway, prefixlen)


def setup_loopback_addressing(bridge: str, userland_proxy: bool) -> None:
    """Without the userland proxy, loopback clients reach published ports through NAT:
    the bridge must route 127/8 sources (route_localnet)."""
    if not userland_proxy:
        write_sysctl(f"{PROC_NET}/ipv4/conf/{bridge}/route_localnet", "1")


def ensure_bridge_netfilter(ipv6: bool = False) -> None:
    """Bridged traffic must traverse iptables (per-netns knob on this kernel), and
    ip6tables for a network with IPv6."""
    if ipv6:
        write_sysctl(f"{PROC_NET}/bridge/bridge-nf-call-ip6tables", "1")
    path = f"{PROC_NET}/bridge/bridge-nf-call-iptables"
    ok = False
    try:
        ok = write_sysctl(path, "1")
    except OSError:
        ok = False
    if not ok:
        print("minidock: warning: cannot set net.bridge.bridge-nf-call-iptables=1 "
              "(br_netfilter not available): traffic between containers on one bridge "
              "bypasses iptables (icc=false and port rules do not apply to it)",
              file=sys.stderr)


def link_up(nl: Any, name: str) -> None:
    link = nl.link_get(name)
    if link is not None and not link.up:
        nl.link_set(link.index, up=True)


def nl_del_link(name: str) -> None:
    """Delete a link by name; already gone counts as done."""
    from minidock.net.kernel.netlink import Netlink
    with Netlink() as nl:
        nl.link_del_name(name)
