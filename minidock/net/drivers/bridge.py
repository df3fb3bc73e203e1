"""The bridge driver: a Linux bridge per network, a veth pair per endpoint, NAT and
filter rules in the MINIDOCK chains (Docker's bridge driver, with minidock's names).

Setup is a queue of small named steps (the article's setup queue; libnetwork's
drivers/bridge/setup_*.go), each with its undo registered in the caller's Pipeline:

    init_driver      ensure_chains (+ FORWARD policy DROP when it turns ip_forward on)
                     -> ip_forward -> driver_rules
    create_network   create_bridge -> bridge_sysctls (accept_ra=0, disable_ipv6)
                     -> bridge_address -> route_localnet (no userland proxy)
                     -> bridge_netfilter -> setup_iptables (+ isolation) -> link_up
    join             anti-spoofing guard on the port (net/antispoof.py), then the
                     veth pair with the container end created *inside* the sandbox,
                     named eth<N>, MAC 02:42+IPv4, address, up, default route
    program_external_connectivity   port rules (one batch) + userland proxy

Every `ensure_*` is idempotent: re-running on a correct bridge changes nothing.
Sysctls are written through /proc/sys, which follows the calling thread's netns.
"""

from __future__ import annotations

import os
import sys
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from minidock.errors import Internal

PROC_NET = "/proc/sys/net"


def _write_sysctl(path: str, value: str) -> bool:
    """Write a /proc/sys value if it differs; False when the knob does not exist."""
    try:
        with open(path) as fh:
            if fh.read().strip() == value:
                return True
        with open(path, "w") as fh:
            fh.write(value)
        return True
    except FileNotFoundError:
        return False


def _read_sysctl(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def random_mac() -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4))


class BridgeDriver:
    name = "bridge"
    creatable = True
    has_sandbox_iface = True

    # -- driver-wide ---------------------------------------------------------------
    def init_driver(self, ctx: Any, p: Any) -> None:
        """Chains, driver rules, ip_forward: once per boot (idempotent)."""
        from minidock.net import iptables, rules
        cfg = ctx.config
        policies = {}
        fwd_path = f"{PROC_NET}/ipv4/ip_forward"
        turn_on = cfg.ip_forward and _read_sysctl(fwd_path) == "0"
        if turn_on and cfg.iptables:
            policies[("filter", "FORWARD")] = "DROP"
        if cfg.iptables:
            saved = iptables.save()
            p.step("setupIPChains", iptables.ensure_chains, rules.CHAINS, saved, policies)
            p.done("setupIPChains")
            want = rules.driver_rules(cfg.userland_proxy)
            stale = [r for r in rules.driver_rules(not cfg.userland_proxy) if r not in want]
            p.step("remove_stale_driver_rules", iptables.remove,
                   iptables.present(stale, saved))
            added = p.step("driver_rules", iptables.ensure, want, saved)
            p.undo("driver_rules", iptables.remove, added)
        if turn_on:
            p.step("setupIPForwarding", _write_sysctl, fwd_path, "1")
            p.done("setupIPForwarding")

    # -- networks ------------------------------------------------------------------
    def create_network(self, ctx: Any, net: Any, p: Any) -> list[Any]:
        """Make (or verify) the bridge of `net` and its rules; returns the rules."""
        from minidock.net.netlink import Netlink
        cfg = ctx.config
        with Netlink() as nl:
            created = p.step("setupDevice", ensure_bridge, nl, net.bridge, net.mtu)
            if created:
                p.undo("setupDevice", nl_del_link, net.bridge)
            p.step("setupDefaultSysctl", bridge_sysctls, net.bridge)
            p.done("setupDefaultSysctl")
            p.step("setupBridgeIPv4", ensure_address, nl, net.bridge, net.gateway, net.prefixlen)
            p.done("setupBridgeIPv4")
            if not cfg.userland_proxy:
                p.step("setupLoopbackAddressesRouting", _write_sysctl,
                       f"{PROC_NET}/ipv4/conf/{net.bridge}/route_localnet", "1")
            if cfg.iptables:
                p.step("setupBridgeNetFiltering", ensure_bridge_netfilter)
            applied = self._setup_iptables(ctx, net, p)
            p.step("setupDeviceUp", link_up, nl, net.bridge)
            p.done("setupDeviceUp")
        return applied

    def _setup_iptables(self, ctx: Any, net: Any, p: Any) -> list[Any]:
        from minidock.net import iptables, rules
        cfg = ctx.config
        if not cfg.iptables:
            return []
        subnet = IPv4Network(net.subnet)
        wanted = rules.network_rules(net.bridge, subnet, icc=net.icc,
                                     masquerade=net.masquerade and cfg.masquerade,
                                     internal=net.internal,
                                     userland_proxy=cfg.userland_proxy)
        wanted += rules.isolation_rules(net.bridge, subnet, net.internal)
        added = p.step("setupIPTables", iptables.ensure, wanted)
        p.undo("setupIPTables", iptables.remove, added)
        return wanted

    def delete_network(self, ctx: Any, net: Any, rules: list[Any]) -> None:
        """Remove the rules, then the bridge (idempotent)."""
        if rules and ctx.config.iptables:
            from minidock.net import iptables
            iptables.remove(rules)
        nl_del_link(net.bridge)

    # -- endpoints -----------------------------------------------------------------
    def join(self, ctx: Any, net: Any, ep: Any, pl: Any, gateway: bool) -> None:
        """The veth pair: host end on the bridge, container end made inside the sandbox."""
        from minidock.net import antispoof
        br = pl.host.link_get(net.bridge)
        if br is None:
            raise Internal(f"bridge {net.bridge} of network {net.name} does not exist")
        antispoof.guard(ep.host_veth, ep.ip, ep.mac)   # before the port exists: no window
        try:
            pl.host.veth_add(ep.host_veth, ep.ifname, mtu=net.mtu, master=br.index, up=True,
                             peer_netns_fd=pl.fd, peer_mac=ep.mac)
        except BaseException:
            self.unguard(ep)
            raise
        inner = pl.inner.link_get(ep.ifname)
        if inner is None:
            raise Internal(f"interface {ep.ifname} missing in sandbox")
        pl.inner.addr_add(inner.index, ep.ip, ep.prefixlen)
        pl.inner.link_set(inner.index, up=True)
        if gateway and ep.gateway:
            pl.inner.route_add("0.0.0.0/0", ep.gateway)

    def leave(self, ctx: Any, net: Any, ep: Any) -> None:
        """Remove the endpoint's veth (used when the sandbox outlives the endpoint)."""
        if ep.host_veth:
            nl_del_link(ep.host_veth)
            self.unguard(ep)

    def unguard(self, ep: Any) -> None:
        """Drop the port's anti-spoofing elements (idempotent; release without leave:
        the veth goes with the sandbox's netns)."""
        if ep.host_veth:
            from minidock.net import antispoof
            antispoof.unguard(ep.host_veth, ep.ip, ep.mac)

    def program_external_connectivity(self, ctx: Any, net: Any, ep: Any) -> list[Any]:
        """Port rules in one batch, then the userland proxy; returns the rules."""
        from minidock.net import iptables, rules
        cfg = ctx.config
        if not ep.ports:
            return []
        wanted: list[Any] = []
        if cfg.iptables:
            for b in ep.ports:
                wanted += rules.port_rules(net.bridge, IPv4Address(ep.ip), b["proto"],
                                           b["host_ip"], b["host_port"], b["container_port"],
                                           cfg.userland_proxy)
            iptables.apply(wanted)
        try:
            _publish(ctx, ep, serve=cfg.userland_proxy)
        except BaseException:
            iptables.remove(wanted)
            raise
        return wanted

    def revoke_external_connectivity(self, ctx: Any, net: Any, ep: Any) -> None:
        if not ep.ports:
            return
        _unpublish(ctx, ep.id)
        if ep.rules and ctx.config.iptables:
            from minidock.net import iptables
            iptables.remove(iptables.from_data(ep.rules))


# -- kernel steps (each idempotent) ---------------------------------------------------
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


def bridge_sysctls(name: str) -> None:
    """IPv4-only bridge: no router advertisements, no IPv6 (if the kernel has IPv6)."""
    base = f"{PROC_NET}/ipv6/conf/{name}"
    _write_sysctl(f"{base}/accept_ra", "0")
    _write_sysctl(f"{base}/disable_ipv6", "1")


def ensure_bridge_netfilter() -> None:
    """Bridged traffic must traverse iptables (per-netns knob on this kernel)."""
    path = f"{PROC_NET}/bridge/bridge-nf-call-iptables"
    ok = False
    try:
        ok = _write_sysctl(path, "1")
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
    from minidock.net.netlink import Netlink
    with Netlink() as nl:
        nl.link_del_name(name)


def _publish(ctx: Any, ep: Any, serve: bool) -> None:
    try:
        from minidock.net import proxy
    except ImportError:
        return
    from minidock.net.portmap import has_ipv6
    v6 = has_ipv6()
    fwd = []
    for b in ep.ports:
        if b["proto"] not in ("tcp", "udp"):
            continue
        fwd.append(proxy.Forward(b["proto"], b["host_ip"], b["host_port"], ep.ip,
                                 b["container_port"]))
        if v6 and b["host_ip"] == "0.0.0.0":   # Docker's second binding, on "::"
            fwd.append(proxy.Forward(b["proto"], "::", b["host_port"], ep.ip,
                                     b["container_port"]))
    if fwd:
        proxy.publish(ctx, ep.id, fwd, serve=serve)


def _unpublish(ctx: Any, owner: str) -> None:
    try:
        from minidock.net import proxy
    except ImportError:
        return
    proxy.unpublish(ctx, owner)


DRIVER = BridgeDriver()
