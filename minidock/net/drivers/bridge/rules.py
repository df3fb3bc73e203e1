"""The bridge driver's firewall rules as data: what Docker's bridge driver programs
(driver-wide jumps, each bridge's FORWARD/NAT/isolation rules, each published port),
as `Rule` values of net/firewall/rules.py. Pure: every function returns a list and
touches nothing; unit-tested against Docker's reference rulesets.

Placement follows Docker 20.10 (docker-facts section 3): driver-wide jumps sit at the
top of FORWARD (MINIDOCK-USER first, then ISOLATION-STAGE-1); per-network rules are
inserted above older networks' (newest bridge on top, FORWARD rules right below the
two jumps, i.e. from position 3); per-port rules are appended. IPv6 (ip6tables, family 6)
mirrors them as Docker 20.10 does: no MINIDOCK-USER, FORWARD rules from position 2,
loopback ::1/128, `[addr]:port` DNAT.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from minidock.net.firewall.rules import CHAIN, ISOLATION_1, ISOLATION_2, USER, Rule
from minidock.net.firewall.rules import rule as _r

# Per-network FORWARD rules go below MINIDOCK-USER and ISOLATION-STAGE-1 jumps
# (ip6tables has no MINIDOCK-USER: one jump above them).
_FORWARD_TOP = 3
_FORWARD_TOP6 = 2
_LOOPBACK = {4: "127.0.0.0/8", 6: "::1/128"}
_HOST = {4: "/32", 6: "/128"}


def driver_rules(userland_proxy: bool, family: int = 4) -> list[Rule]:
    """Rules made once at driver init (the chains must exist first: iptables.ensure_chains).

    IPv6 (ip6tables) as Docker 20.10: no MINIDOCK-USER chain, so the isolation jump
    is FORWARD's first rule, and loopback is ::1/128.
    """
    output = "-m addrtype --dst-type LOCAL -j " + CHAIN
    if userland_proxy:
        output = f"! -d {_LOOPBACK[family]} " + output
    if family == 6:
        return [
            _r("filter", "FORWARD", f"-j {ISOLATION_1}", 1),
            _r("filter", ISOLATION_1, "-j RETURN"),
            _r("filter", ISOLATION_2, "-j RETURN"),
            _r("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {CHAIN}"),
            _r("nat", "OUTPUT", output),
        ]
    return [
        _r("filter", "FORWARD", f"-j {USER}", 1),
        _r("filter", "FORWARD", f"-j {ISOLATION_1}", 2),
        _r("filter", ISOLATION_1, "-j RETURN"),
        _r("filter", ISOLATION_2, "-j RETURN"),
        _r("filter", USER, "-j RETURN"),
        _r("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {CHAIN}"),
        _r("nat", "OUTPUT", output),
    ]


def network_rules(bridge: str, subnet: IPv4Network | IPv6Network, *, icc: bool,
                  masquerade: bool, internal: bool, userland_proxy: bool,
                  iptables: bool = True) -> list[Rule]:
    """Per-bridge FORWARD and NAT rules (isolation rules: see isolation_rules).

    The family follows `subnet`: an IPv6 subnet gives the ip6tables rules Docker 20.10
    mirrors for a network with IPv6 (same shapes, FORWARD rules from position 2).
    """
    if not iptables:
        return []
    br = bridge
    top = _FORWARD_TOP6 if subnet.version == 6 else _FORWARD_TOP
    icc_rule = _icc_rule(br, icc, top)
    if internal:
        return [icc_rule]
    rules = [
        _r("filter", "FORWARD", f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
           top),
        _r("filter", "FORWARD", f"-o {br} -j {CHAIN}", top + 1),
        _r("filter", "FORWARD", f"-i {br} ! -o {br} -j ACCEPT", top + 2),
        _icc_rule(br, icc, top + 3),
    ]
    if masquerade:
        rules.append(_r("nat", "POSTROUTING", f"-s {subnet} ! -o {br} -j MASQUERADE", 1))
    if userland_proxy:
        rules.append(_r("nat", CHAIN, f"-i {br} -j RETURN", 1))
    else:
        rules.append(_r("nat", "POSTROUTING", f"-o {br} -m addrtype --src-type LOCAL -j MASQUERADE", 1))
    return rules


def _icc_rule(br: str, icc: bool, position: int) -> Rule:
    if icc:
        return _r("filter", "FORWARD", f"-i {br} -o {br} -j ACCEPT", position)
    return _r("filter", "FORWARD", f"-i {br} -o {br} -j DROP")  # Docker appends the DROP


def isolation_rules(bridge: str, subnet: IPv4Network | IPv6Network | None,
                    internal: bool) -> list[Rule]:
    """Keep this bridge's traffic off other bridges (and, internal, off everything else)."""
    rules = []
    if internal and subnet is not None:
        rules += [
            _r("filter", ISOLATION_1, f"! -d {subnet} -i {bridge} -j DROP", 1),
            _r("filter", ISOLATION_1, f"! -s {subnet} -o {bridge} -j DROP", 1),
        ]
    rules += [
        _r("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j {ISOLATION_2}", 1),
        _r("filter", ISOLATION_2, f"-o {bridge} -j DROP", 1),
    ]
    return rules


def port_rules(bridge: str, container_ip: IPv4Address | IPv6Address, proto: str,
               host_ip: str, host_port: int, container_port: int,
               userland_proxy: bool) -> list[Rule]:
    """Rules publishing container_ip:container_port on host_ip:host_port (appended);
    an IPv6 container address gives the ip6tables rules ("[addr]:port" DNAT)."""
    ip, br, p = container_ip, bridge, proto
    host = _HOST[ip.version]
    target = f"[{ip}]:{container_port}" if ip.version == 6 else f"{ip}:{container_port}"
    dnat = f"-p {p} -m {p} --dport {host_port} -j DNAT --to-destination {target}"
    if userland_proxy:
        dnat = f"! -i {br} {dnat}"
    if host_ip and host_ip not in ("0.0.0.0", "::"):
        dnat = f"-d {host_ip}{host} {dnat}"
    match = f"-p {p} -m {p} --dport {container_port}"
    return [
        _r("filter", CHAIN, f"-d {ip}{host} ! -i {br} -o {br} {match} -j ACCEPT"),
        _r("nat", "POSTROUTING", f"-s {ip}{host} -d {ip}{host} {match} -j MASQUERADE"),
        _r("nat", CHAIN, dnat),
    ]
