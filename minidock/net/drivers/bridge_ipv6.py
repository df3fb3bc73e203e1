"""The IPv6 half of the bridge driver (Docker 20.10's dual-stack bridge).

Kernel steps, each idempotent, that the bridge driver queues in the article's order
(setup_ipv6, setup_ipv6_forwarding, the IPv6 part of setup_iptables and
setup_isolation), plus the IPv6 part of an endpoint's join:

    setup_ipv6             IPv6 on the bridge: the gateway address of the subnet and
                           fe80::1/64, both without DAD, as docker0 holds them
    setup_ipv6_forwarding  net.ipv6.conf.{all,default}.forwarding = 1; turning it on
                           also sets ip6tables' FORWARD policy to DROP (as the IPv4 side)
    rules6                 the ip6tables rules of a network (rules.py, family 6)
    join6                  inside the sandbox: IPv6 on for the container's interface,
                           its address (no DAD) and the IPv6 default route
    port_sysctls           accept_ra 0 on the host end of every veth: a container must
                           not plant routes on the host with a router advertisement

Networks without IPv6 keep IPv6 off on their bridge and container interfaces.
"""

from __future__ import annotations

from ipaddress import IPv6Network, ip_network
from typing import Any

PROC_NET = "/proc/sys/net"
LINK_LOCAL_GW = "fe80::1"


def write_sysctl(path: str, value: str) -> bool:
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


def read_sysctl(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def bridge_sysctls(name: str, ipv6: bool) -> None:
    """No router advertisements on the bridge; IPv6 on only for a network with IPv6."""
    base = f"{PROC_NET}/ipv6/conf/{name}"
    write_sysctl(f"{base}/accept_ra", "0")
    write_sysctl(f"{base}/disable_ipv6", "0" if ipv6 else "1")


def setup_ipv6(nl: Any, net: Any) -> None:
    """The bridge holds `gateway6/prefix` and fe80::1/64 (no-op without IPv6)."""
    if not net.enable_ipv6:
        return
    link = nl.link_get(net.bridge)
    have = {(a.address, a.prefixlen) for a in nl.addr6_list(link.index)}
    prefix = ip_network(net.subnet6, strict=False).prefixlen
    gw = str(ip_network(f"{net.gateway6}/128").network_address)
    if (gw, prefix) not in have:
        nl.addr6_add(link.index, gw, prefix)
    if (LINK_LOCAL_GW, 64) not in have:
        nl.addr6_add(link.index, LINK_LOCAL_GW, 64, link_scope=True)


def setup_ipv6_forwarding(net: Any, cfg: Any) -> bool:
    """IPv6 forwarding on for a network with IPv6; True if this call turned it on
    (then the ip6tables FORWARD policy becomes DROP, as Docker sets it)."""
    if not net.enable_ipv6 or not cfg.ip_forward:
        return False
    path = f"{PROC_NET}/ipv6/conf/all/forwarding"
    if read_sysctl(path) not in ("0", ""):
        return False
    write_sysctl(f"{PROC_NET}/ipv6/conf/default/forwarding", "1")
    write_sysctl(path, "1")
    if cfg.ip6tables_on:
        from minidock.net import iptables
        iptables.ensure_chains({}, "", {("filter", "FORWARD"): "DROP"}, family=6)
    return True


def bridge_netfilter6() -> None:
    """Bridged IPv6 traffic traverses ip6tables (icc=false and isolation need it)."""
    write_sysctl(f"{PROC_NET}/bridge/bridge-nf-call-ip6tables", "1")


def subnet6(net: Any) -> IPv6Network | None:
    return ip_network(net.subnet6, strict=False) if net.enable_ipv6 and net.subnet6 else None  # type: ignore[return-value]


def rules6(net: Any, cfg: Any) -> list[Any]:
    """A bridge network's ip6tables rules: FORWARD/NAT for a network with IPv6, and
    (as Docker 20.10) isolation rules for every bridge network."""
    from minidock.net import rules
    if not cfg.ip6tables_on:
        return []
    sub = subnet6(net)
    out = []
    if sub is not None:
        out += rules.network_rules(net.bridge, sub, icc=net.icc,
                                   masquerade=net.masquerade and cfg.masquerade,
                                   internal=net.internal, userland_proxy=cfg.userland_proxy)
    return out + rules.isolation_rules(net.bridge, sub, net.internal)


def port_rules6(net: Any, ep: Any, cfg: Any) -> list[Any]:
    """ip6tables rules of the endpoint's published ports: the `::` binding of each
    all-addresses binding, and bindings on a specific IPv6 host address."""
    from ipaddress import IPv6Address

    from minidock.net import rules
    if not cfg.ip6tables_on or not ep.ip6:
        return []
    out: list[Any] = []
    for b in ep.ports:
        host_ip = b["host_ip"]
        if host_ip in ("0.0.0.0", "", "::") or ":" in host_ip:
            out += rules.port_rules(net.bridge, IPv6Address(ep.ip6), b["proto"],
                                    "::" if host_ip in ("0.0.0.0", "") else host_ip,
                                    b["host_port"], b["container_port"], cfg.userland_proxy)
    return out


def port_sysctls(veth: str) -> None:
    """The host end of a veth never accepts router advertisements."""
    write_sysctl(f"{PROC_NET}/ipv6/conf/{veth}/accept_ra", "0")


def join6(pl: Any, ep: Any, index: int, gateway: bool) -> None:
    """IPv6 on the container's interface: address and (gateway endpoint) default route."""
    if not ep.ip6:
        return
    from minidock.net.netns import in_netns_fd
    with in_netns_fd(pl.fd):
        base = f"{PROC_NET}/ipv6/conf/{ep.ifname}"
        write_sysctl(f"{base}/accept_ra", "0")
        write_sysctl(f"{base}/disable_ipv6", "0")
    pl.inner.addr6_add(index, ep.ip6, ep.prefixlen6)
    if gateway and ep.gateway6:
        pl.inner.route6_add("::/0", ep.gateway6)
