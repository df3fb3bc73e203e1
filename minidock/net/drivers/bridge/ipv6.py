"""The IPv6 half of the bridge driver (Docker 20.10's dual-stack bridge).

Kernel steps, each idempotent, that the bridge driver queues in the article's order
(setupBridgeIPv6, setupIPv6Forwarding, the IPv6 part of setupIPTables and
setupNetworkIsolation), and the IPv6 rule lists:

    setup_ipv6             IPv6 on the bridge: the gateway address of the subnet and
                           fe80::1/64, both without DAD, as docker0 holds them
    setup_ipv6_forwarding  net.ipv6.conf.{all,default}.forwarding = 1; turning it on
                           also sets ip6tables' FORWARD policy to DROP (as the IPv4 side)
    rules6 / port_rules6   the ip6tables rules of a network / of an endpoint's ports
    port_sysctls           accept_ra 0 on the host end of every veth: a container must
                           not plant routes on the host with a router advertisement

The container's side (its IPv6 address and default route) is the sandbox's, from the
endpoint's address_v6 and the JoinInfo's gateway_v6 (net/sandbox.py). Networks
without IPv6 keep IPv6 off on their bridge and container interfaces.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network, ip_network
from minidock.hints import TYPE_CHECKING, Any

from minidock.net.kernel.sysctl import PROC_NET, read as read_sysctl, write as write_sysctl

if TYPE_CHECKING:
    from minidock.net.driverapi import EndpointInfo, NetworkInfo

LINK_LOCAL_GW = "fe80::1"


def v6(nw: "NetworkInfo") -> tuple[IPv6Network, str] | None:
    """The network's IPv6 subnet and gateway address, when it has IPv6 on."""
    if not nw.enable_ipv6 or not nw.ipv6_data:
        return None
    data = nw.ipv6_data[0]
    return ip_network(data.pool, strict=False), data.gateway.split("/", 1)[0]  # type: ignore[return-value]


def default_gateway(data: list[Any], key: str) -> str:
    """A daemon default gateway (libnetwork's auxiliary address), or ""."""
    for d in data:
        if key in d.aux_addresses:
            return d.aux_addresses[key].split("/", 1)[0]
    return ""


def bridge_sysctls(name: str, ipv6: bool) -> None:
    """No router advertisements on the bridge; IPv6 on only for a network with IPv6."""
    base = f"{PROC_NET}/ipv6/conf/{name}"
    write_sysctl(f"{base}/accept_ra", "0")
    write_sysctl(f"{base}/disable_ipv6", "0" if ipv6 else "1")


def setup_ipv6(nl: Any, bridge: str, nw: "NetworkInfo") -> None:
    """The bridge holds `gateway/prefix` and fe80::1/64 (no-op without IPv6)."""
    sub = v6(nw)
    if sub is None:
        return
    subnet, gateway = sub
    link = nl.link_get(bridge)
    have = {(a.address, a.prefixlen) for a in nl.addr6_list(link.index)}
    if (gateway, subnet.prefixlen) not in have:
        nl.addr6_add(link.index, gateway, subnet.prefixlen)
    if (LINK_LOCAL_GW, 64) not in have:
        nl.addr6_add(link.index, LINK_LOCAL_GW, 64, link_scope=True)


def setup_ipv6_forwarding(nw: "NetworkInfo", cfg: Any) -> bool:
    """IPv6 forwarding on for a network with IPv6; True if this call turned it on
    (then the ip6tables FORWARD policy becomes DROP, as Docker sets it)."""
    if v6(nw) is None or not cfg.ip_forward:
        return False
    path = f"{PROC_NET}/ipv6/conf/all/forwarding"
    if read_sysctl(path) not in ("0", ""):
        return False
    write_sysctl(f"{PROC_NET}/ipv6/conf/default/forwarding", "1")
    write_sysctl(path, "1")
    if cfg.ip6tables_on:
        from minidock.net.firewall import iptables
        iptables.ensure_chains({}, "", {("filter", "FORWARD"): "DROP"}, family=6)
    return True


def check_gateway(gateway: str, subnet: Any) -> None:
    """A daemon default gateway lies in the network (the config checked it; a bridge
    network re-checks before containers route through it)."""
    if gateway and subnet is not None:
        from ipaddress import ip_address

        from minidock.errors import Internal
        if ip_address(gateway) not in subnet:
            raise Internal(f"default gateway {gateway} is outside {subnet}")


def rules6(nw: "NetworkInfo", conf: dict[str, Any], cfg: Any) -> list[Any]:
    """A bridge network's ip6tables rules: FORWARD/NAT for a network with IPv6, and
    (as Docker 20.10) isolation rules for every bridge network."""
    from minidock.net.drivers.bridge import rules
    if not cfg.ip6tables_on:
        return []
    sub = v6(nw)
    subnet = sub[0] if sub else None
    br = conf["bridge"]
    out = []
    if subnet is not None:
        out += rules.network_rules(br, subnet, icc=conf["icc"],
                                   masquerade=conf["masquerade"] and cfg.masquerade,
                                   internal=nw.internal, userland_proxy=cfg.userland_proxy)
    return out + rules.isolation_rules(br, subnet, nw.internal)


def port_rules6(bridge: str, ep: "EndpointInfo", cfg: Any) -> list[Any]:
    """ip6tables rules of the endpoint's published ports: the `::` binding of each
    all-addresses binding, and bindings on a specific IPv6 host address."""
    from minidock.net.drivers.bridge import rules
    if not cfg.ip6tables_on or not ep.address_v6:
        return []
    ip6 = IPv6Address(ep.address_v6.split("/", 1)[0])
    out: list[Any] = []
    for b in ep.ports:
        host_ip = b.host_ip
        if host_ip in ("0.0.0.0", "", "::") or ":" in host_ip:
            out += rules.port_rules(bridge, ip6, b.proto,
                                    "::" if host_ip in ("0.0.0.0", "") else host_ip,
                                    b.host_port, b.container_port, cfg.userland_proxy)
    return out


def port_sysctls(veth: str) -> None:
    """The host end of a veth never accepts router advertisements."""
    write_sysctl(f"{PROC_NET}/ipv6/conf/{veth}/accept_ra", "0")
