"""IPv6 in the records: address claims (default bridge: from the MAC; user networks:
lowest free), the planned network, inspect entries, bridge port rules (no root)."""

from __future__ import annotations

import pytest

from minidock.config import parse_config
from minidock.errors import Conflict, InvalidArgument
from minidock.net import attach, ipam6
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.drivers.bridge import ipv6 as bridge_ipv6
from minidock.net.ports.portspec import PortBinding
from minidock.store import Store

DEFAULT6 = nw.Net(id="d" * 64, name="bridge", driver="bridge", subnet="172.17.0.0/16",
                  gateway="172.17.0.1", default=True, enable_ipv6=True,
                  subnet6="2001:db8:1::/64", gateway6="2001:db8:1::1")
USER6 = nw.Net(id="u" * 64, name="v6net", driver="bridge", subnet="172.30.0.0/16",
               gateway="172.30.0.1", enable_ipv6=True,
               subnet6="2001:db8:2::/64", gateway6="2001:db8:2::1")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path))


def test_default_bridge_address_follows_the_mac(store):
    with store.transaction():
        got = eps.allocate_address6(store, DEFAULT6, "ep1", "02:42:ac:11:00:02")
    assert got == "2001:db8:1::242:ac11:2"
    with pytest.raises(Conflict, match="Address already in use"):
        with store.transaction():
            eps.allocate_address6(store, DEFAULT6, "ep2", "02:42:ac:11:00:02")


def test_user_network_lowest_free_then_reuse(store):
    with store.transaction():
        a = eps.allocate_address6(store, USER6, "ep1", "02:42:ac:1e:00:02")
        b = eps.allocate_address6(store, USER6, "ep2", "02:42:ac:1e:00:03")
    assert (a, b) == ("2001:db8:2::2", "2001:db8:2::3")
    store.release_owner("ep1")             # the endpoint record goes with all its claims
    with store.transaction():
        assert eps.allocate_address6(store, USER6, "ep3", "x") == "2001:db8:2::2"
        assert eps.allocate_address6(store, USER6, "ep4", "x", "2001:db8:2::99") == \
            "2001:db8:2::99"


def test_network_without_ipv6_gets_no_address(store):
    v4 = USER6._replace(enable_ipv6=False)
    with store.transaction():
        assert eps.allocate_address6(store, v4, "ep1", "02:42:ac:1e:00:02") == ""


def test_records_and_inspect_entries_carry_ipv6():
    doc = nw.new_doc(USER6, [{"Subnet": "172.30.0.0/16"}, {"Subnet": "2001:db8:2::/64"}])
    assert doc["EnableIPv6"] is True and nw.from_doc(doc) == USER6
    ep = eps.Endpoint(id="e", network_id=USER6.id, container_id="c" * 64, name="ca",
                      ip="172.30.0.2", prefixlen=16, gateway="172.30.0.1", ip6="2001:db8:2::2",
                      prefixlen6=64, gateway6="2001:db8:2::1")
    assert eps.from_doc(eps.to_doc(ep)) == ep
    entry = attach.settings_entry(USER6, ep, None, "c" * 64, "host")
    assert (entry["GlobalIPv6Address"], entry["GlobalIPv6PrefixLen"], entry["IPv6Gateway"]) \
        == ("2001:db8:2::2", 64, "2001:db8:2::1")
    empty = attach.settings_entry(USER6, None, None, "c" * 64, "host")
    assert (empty["GlobalIPv6Address"], empty["GlobalIPv6PrefixLen"]) == ("", 0)


def test_plan_ipv6_as_docker():
    net, cfg = ipam6.plan_network6(USER6._replace(enable_ipv6=False, subnet6="", gateway6=""),
                                   [{"Subnet": "172.31.0.0/16"}], [], True, "2001:db8:3::/64",
                                   "2001:db8:3::100", "")
    assert (net.enable_ipv6, net.subnet6, net.gateway6) == (True, "2001:db8:3::/64",
                                                            "2001:db8:3::100")
    assert cfg == [{"Subnet": "172.31.0.0/16"},
                   {"Subnet": "2001:db8:3::/64", "Gateway": "2001:db8:3::100"}]
    with pytest.raises(InvalidArgument, match=ipam6.NO_POOL6):
        ipam6.plan_network6(USER6, [], [], True, "", "", "")
    net, cfg = ipam6.plan_network6(USER6, [], [], False, "2001:db8:6::/64", "", "")
    assert not net.enable_ipv6 and cfg == [{"Subnet": "2001:db8:6::/64"}]


def test_bridge_ipv6_rules_only_with_ip6tables():
    on = parse_config({"ipv6": True, "fixed-cidr-v6": "2001:db8:1::/64"})
    off = parse_config({"ipv6": True, "fixed-cidr-v6": "2001:db8:1::/64", "ip6tables": False})
    conf = {"bridge": "br-uuuuuuuuuuuu", "icc": True, "masquerade": True}
    assert bridge_ipv6.rules6(USER6.info(), conf, off) == []
    v4only = USER6._replace(enable_ipv6=False)
    assert {r.chain for r in bridge_ipv6.rules6(v4only.info(), conf, on)} == {
        "MINIDOCK-ISOLATION-STAGE-1", "MINIDOCK-ISOLATION-STAGE-2"}
    ep = eps.Endpoint(id="e", network_id=USER6.id, container_id="c", name="ca",
                      ip="172.30.0.2", ip6="2001:db8:2::2",
                      ports=(PortBinding("tcp", 80, "0.0.0.0", 8080),
                             PortBinding("tcp", 81, "127.0.0.1", 8081)))
    dnat = [r.spec() for r in bridge_ipv6.port_rules6("br-uuuuuuuuuuuu", ep.info(), on)
            if "DNAT" in r.args]
    assert dnat == ["! -i br-uuuuuuuuuuuu -p tcp -m tcp --dport 8080 -j DNAT "
                    "--to-destination [2001:db8:2::2]:80"]
