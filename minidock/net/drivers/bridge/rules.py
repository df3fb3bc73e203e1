"""The bridge driver's firewall rules as data: what Docker's bridge driver programs
(driver-wide jumps, each bridge's FORWARD/NAT/isolation rules, each published port),
as `Rule` values of net/firewall/rules.py. Pure: every function returns a list and
touches nothing; unit-tested against Docker's reference rulesets.

Placement follows Docker 20.10 (docker-facts section 3): driver-wide jumps sit at the
top of FORWARD (MINIDOCK-USER first, then ISOLATION-STAGE-1); per-network rules are
inserted above older networks' (newest bridge on top, FORWARD rules right below the
two jumps, i.e. from position 3); per-port rules are appended.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from minidock.net.firewall.rules import CHAIN, ISOLATION_1, ISOLATION_2, USER, Rule
from minidock.net.firewall.rules import rule as _r

# Per-network FORWARD rules go below MINIDOCK-USER and ISOLATION-STAGE-1 jumps.
_FORWARD_TOP = 3


def driver_rules(userland_proxy: bool) -> list[Rule]:
    """Rules made once at driver init (the chains must exist first: iptables.ensure_chains)."""
    output = "-m addrtype --dst-type LOCAL -j " + CHAIN
    if userland_proxy:
        output = "! -d 127.0.0.0/8 " + output
    return [
        _r("filter", "FORWARD", f"-j {USER}", 1),
        _r("filter", "FORWARD", f"-j {ISOLATION_1}", 2),
        _r("filter", ISOLATION_1, "-j RETURN"),
        _r("filter", ISOLATION_2, "-j RETURN"),
        _r("filter", USER, "-j RETURN"),
        _r("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {CHAIN}"),
        _r("nat", "OUTPUT", output),
    ]


def network_rules(bridge: str, subnet: IPv4Network, *, icc: bool, masquerade: bool,
                  internal: bool, userland_proxy: bool, iptables: bool = True) -> list[Rule]:
    """Per-bridge FORWARD and NAT rules (isolation rules: see isolation_rules)."""
    if not iptables:
        return []
    br = bridge
    icc_rule = _icc_rule(br, icc, _FORWARD_TOP)
    if internal:
        return [icc_rule]
    rules = [
        _r("filter", "FORWARD", f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
           _FORWARD_TOP),
        _r("filter", "FORWARD", f"-o {br} -j {CHAIN}", _FORWARD_TOP + 1),
        _r("filter", "FORWARD", f"-i {br} ! -o {br} -j ACCEPT", _FORWARD_TOP + 2),
        _icc_rule(br, icc, _FORWARD_TOP + 3),
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


def isolation_rules(bridge: str, subnet: IPv4Network, internal: bool) -> list[Rule]:
    """Keep this bridge's traffic off other bridges (and, internal, off everything else)."""
    rules = []
    if internal:
        rules += [
            _r("filter", ISOLATION_1, f"! -d {subnet} -i {bridge} -j DROP", 1),
            _r("filter", ISOLATION_1, f"! -s {subnet} -o {bridge} -j DROP", 1),
        ]
    rules += [
        _r("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j {ISOLATION_2}", 1),
        _r("filter", ISOLATION_2, f"-o {bridge} -j DROP", 1),
    ]
    return rules


def port_rules(bridge: str, container_ip: IPv4Address, proto: str, host_ip: str,
               host_port: int, container_port: int, userland_proxy: bool) -> list[Rule]:
    """Rules publishing container_ip:container_port on host_ip:host_port (appended)."""
    ip, br, p = container_ip, bridge, proto
    dnat = f"-p {p} -m {p} --dport {host_port} -j DNAT --to-destination {ip}:{container_port}"
    if userland_proxy:
        dnat = f"! -i {br} {dnat}"
    if host_ip and host_ip not in ("0.0.0.0", "::"):
        dnat = f"-d {host_ip}/32 {dnat}"
    match = f"-p {p} -m {p} --dport {container_port}"
    return [
        _r("filter", CHAIN, f"-d {ip}/32 ! -i {br} -o {br} {match} -j ACCEPT"),
        _r("nat", "POSTROUTING", f"-s {ip}/32 -d {ip}/32 {match} -j MASQUERADE"),
        _r("nat", CHAIN, dnat),
    ]
