"""ip6tables rules as data, checked against Docker 20.10's own ip6tables-save outputs
(tests/reference_data/docker-ipv6, captured with a dual-stack dockerd)."""

from ipaddress import IPv6Address, IPv6Network, ip_network

from minidock.net.drivers.bridge import rules as B
from minidock.net.firewall import rules as F

from tests.reference import REF6

BR0 = "minidock0"
SUBNET6 = IPv6Network("2001:db8:1::/64")
WEB6 = IPv6Address("2001:db8:1::242:ac11:2")


def reference(name: str, bridges: dict[str, str] | None = None) -> str:
    """The reference's -A lines per table, with minidock's names."""
    text = (REF6 / name).read_text().replace("DOCKER", "MINIDOCK").replace("docker0", BR0)
    for theirs, ours in (bridges or {}).items():
        text = text.replace(theirs, ours)
    keep = [ln for ln in text.splitlines() if ln.startswith(("*", "-A ", "COMMIT"))]
    return "\n".join(keep) + "\n"


def bridge6(br: str, subnet, icc: bool = True, v6: bool = True) -> list:
    rules = []
    if v6:
        rules += B.network_rules(br, subnet, icc=icc, masquerade=True, internal=False,
                                 userland_proxy=True)
    return rules + B.isolation_rules(br, subnet if v6 else None, internal=False)


def test_default_bridge_with_published_port_matches_docker():
    rules = (B.driver_rules(True, family=6) + bridge6(BR0, SUBNET6)
             + B.port_rules(BR0, WEB6, "tcp", "0.0.0.0", 8080, 80, True))
    assert F.dump(F.simulate(rules)) == reference("docker-bridge-ipv6.ip6tables")


def test_user_networks_newest_on_top_and_ipv4_only_isolated_too():
    rules = (B.driver_rules(True, family=6) + bridge6(BR0, SUBNET6)
             + B.port_rules(BR0, WEB6, "tcp", "0.0.0.0", 8080, 80, True)
             + bridge6("br-v6net", ip_network("2001:db8:2::/64"))
             + bridge6("br-v6net2", ip_network("2001:db8:3::/64"))
             + bridge6("br-v4only", None, v6=False)
             + B.port_rules("br-v6net2", IPv6Address("2001:db8:3::1"), "tcp", "0.0.0.0",
                            9090, 90, True))
    names = {"br-ddd38fad4e8b": "br-v6net", "br-a79ceeea5241": "br-v6net2",
             "br-3ea15990cdbd": "br-v4only"}
    assert F.dump(F.simulate(rules)) == reference("docker-user-networks-ipv6.ip6tables", names)


def test_icc_false_drops_and_links_add_no_ipv6_pairs():
    # Docker 20.10 programs a link's ACCEPT pair in iptables only
    rules = B.driver_rules(True, family=6) + bridge6(BR0, SUBNET6, icc=False)
    state = F.simulate(rules)
    want = reference("docker-link-icc-false-ipv6.ip6tables")
    assert F.dump(state) == want
    assert "-j DROP" in want and "--sport" not in want


def test_ipv6_rules_remove_what_they_added():
    rules = B.driver_rules(True, family=6) + bridge6(BR0, SUBNET6)
    state = F.simulate(rules)
    F.simulate(rules, state, delete=True)
    assert all(not v for v in state.values())


def test_specific_ipv6_host_address_adds_destination():
    got = B.port_rules(BR0, WEB6, "udp", "2001:db8:ff::10", 53, 53, False)
    assert got[2].spec() == ("-d 2001:db8:ff::10/128 -p udp -m udp --dport 53 -j DNAT "
                             "--to-destination [2001:db8:1::242:ac11:2]:53")


def test_without_userland_proxy_output_rule_covers_loopback():
    out = [r for r in B.driver_rules(False, family=6) if r.chain == "OUTPUT"]
    assert out[0].spec() == "-m addrtype --dst-type LOCAL -j MINIDOCK"
