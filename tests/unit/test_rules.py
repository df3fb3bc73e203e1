"""Firewall rules as data, checked against Docker's own iptables-save outputs."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from minidock.net.drivers.bridge import rules as B
from minidock.net.links.rules import link_rules
from minidock.net.firewall import rules as R
from minidock.net.firewall.rules import Rule

from tests.reference import REF  # noqa: E402
BR0 = "minidock0"
SUBNET0 = IPv4Network("172.17.0.0/16")


def reference(name: str) -> str:
    """The reference ruleset's -A lines per table, with minidock's names."""
    text = (REF / name).read_text().replace("DOCKER", "MINIDOCK").replace("docker0", BR0)
    keep = [l for l in text.splitlines() if l.startswith(("*", "-A ", "COMMIT"))]
    return "\n".join(keep) + "\n"


def bridge0(icc=True, userland_proxy=True):
    return (B.driver_rules(userland_proxy)
            + B.network_rules(BR0, SUBNET0, icc=icc, masquerade=True, internal=False,
                              userland_proxy=userland_proxy)
            + B.isolation_rules(BR0, SUBNET0, internal=False))


def port8080(userland_proxy=True):
    return B.port_rules(BR0, IPv4Address("172.17.0.3"), "tcp", "0.0.0.0", 8080, 80,
                        userland_proxy)


def test_reference_icc_true():
    state = R.simulate(bridge0() + port8080())
    assert R.dump(state) == reference("docker-bridge-icc-true.iptables")


def test_reference_user_network_inserted_on_top():
    br, net = "br-459ed5c0dce1", IPv4Network("10.77.0.0/24")
    user = (B.network_rules(br, net, icc=True, masquerade=True, internal=False,
                            userland_proxy=True)
            + B.isolation_rules(br, net, internal=False))
    state = R.simulate(bridge0() + port8080() + user)
    assert R.dump(state) == reference("docker-user-network.iptables")


def test_reference_link_icc_false():
    pair = link_rules(BR0, "172.17.0.3", "172.17.0.2", [(5432, "tcp")])
    state = R.simulate(bridge0(icc=False) + pair)
    assert R.dump(state) == reference("docker-bridge-link-icc-false.iptables")


def test_parse_save_reads_reference():
    state = R.parse_save((REF / "docker-bridge-icc-true.iptables").read_text())
    assert state[("filter", "DOCKER-USER")] == ["-j RETURN"]
    assert state[("filter", "INPUT")] == []
    assert state[("nat", "DOCKER")][1].startswith("! -i docker0 -p tcp")


def test_parse_save_matches_simulation():
    text = (REF / "docker-user-network.iptables").read_text()
    text = text.replace("DOCKER", "MINIDOCK").replace("docker0", BR0)
    saved = {k: v for k, v in R.parse_save(text).items() if v}
    br, net = "br-459ed5c0dce1", IPv4Network("10.77.0.0/24")
    user = (B.network_rules(br, net, icc=True, masquerade=True, internal=False,
                            userland_proxy=True) + B.isolation_rules(br, net, False))
    assert R.simulate(bridge0() + port8080() + user) == saved


def test_removing_everything_restores_empty():
    rules = bridge0() + port8080()
    state = R.simulate(rules)
    R.simulate(port8080(), state, delete=True)
    assert R.dump(state) == R.dump(R.simulate(bridge0()))
    R.simulate(bridge0(), state, delete=True)
    assert all(v == [] for v in state.values())


def test_no_userland_proxy_variant():
    state = R.simulate(bridge0(userland_proxy=False) + port8080(userland_proxy=False))
    assert state[("nat", "OUTPUT")] == ["-m addrtype --dst-type LOCAL -j MINIDOCK"]
    assert state[("nat", "MINIDOCK")] == [
        "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80"]
    assert "-o minidock0 -m addrtype --src-type LOCAL -j MASQUERADE" in state[("nat", "POSTROUTING")]
    # the filter ACCEPT keeps "! -i br" (libnetwork only drops it from the DNAT)
    assert state[("filter", "MINIDOCK")][0].startswith("-d 172.17.0.3/32 ! -i minidock0")


def test_specific_host_ip_and_udp():
    rules = B.port_rules(BR0, IPv4Address("172.17.0.2"), "udp", "127.0.0.1", 5353, 53, True)
    assert rules[2] == Rule("nat", "MINIDOCK", tuple(
        "-d 127.0.0.1/32 ! -i minidock0 -p udp -m udp --dport 5353 -j DNAT "
        "--to-destination 172.17.0.2:53".split()))


def test_masquerade_off_and_iptables_off():
    rules = B.network_rules(BR0, SUBNET0, icc=True, masquerade=False, internal=False,
                            userland_proxy=True)
    assert not any("MASQUERADE" in r.spec() for r in rules)
    assert B.network_rules(BR0, SUBNET0, icc=True, masquerade=True, internal=False,
                           userland_proxy=True, iptables=False) == []


def test_internal_network():
    br, net = "br-aaaaaaaaaaaa", IPv4Network("10.9.0.0/24")
    rules = (B.network_rules(br, net, icc=True, masquerade=True, internal=True,
                             userland_proxy=True) + B.isolation_rules(br, net, internal=True))
    state = R.simulate(B.driver_rules(True) + rules)
    assert state[("filter", "MINIDOCK-ISOLATION-STAGE-1")] == [
        f"-i {br} ! -o {br} -j MINIDOCK-ISOLATION-STAGE-2",
        f"! -s 10.9.0.0/24 -o {br} -j DROP",
        f"! -d 10.9.0.0/24 -i {br} -j DROP",
        "-j RETURN",
    ]
    assert state[("filter", "FORWARD")][2:] == [f"-i {br} -o {br} -j ACCEPT"]
    assert not any(t == "nat" and v and c != "PREROUTING" and c != "OUTPUT"
                   for (t, c), v in state.items())


def test_render_add_insert_and_delete():
    rules = [Rule("filter", "FORWARD", ("-j", "X"), 1), Rule("nat", "MINIDOCK", ("-j", "RETURN")),
             Rule("filter", "MINIDOCK", ("-m", "comment", "--comment", "a b", "-j", "ACCEPT"))]
    assert R.render(rules) == (
        "*filter\n-I FORWARD 1 -j X\n-A MINIDOCK -m comment --comment \"a b\" -j ACCEPT\nCOMMIT\n"
        "*nat\n-A MINIDOCK -j RETURN\nCOMMIT\n")
    assert R.render(rules, delete=True) == (
        "*filter\n-D MINIDOCK -m comment --comment \"a b\" -j ACCEPT\n-D FORWARD -j X\nCOMMIT\n"
        "*nat\n-D MINIDOCK -j RETURN\nCOMMIT\n")
    assert R.render([]) == ""


def test_simulate_errors():
    with pytest.raises(ValueError):
        R.simulate([Rule("filter", "FORWARD", ("-j", "X"), 3)])
    with pytest.raises(ValueError):
        R.simulate([Rule("filter", "FORWARD", ("-j", "X"))], delete=True)


def test_link_rules_one_pair_per_port():
    rules = link_rules(BR0, "172.17.0.3", "172.17.0.2", [(5432, "tcp"), (53, "udp")])
    assert [r.spec().split()[-4] for r in rules] == ["--dport", "--sport", "--dport", "--sport"]
    assert all(r.table == "filter" and r.chain == "MINIDOCK" and r.position is None for r in rules)
