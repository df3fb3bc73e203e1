"""IPv6 daemon options and IPAM: Docker 20.10's messages and addresses
(tests/reference_data/docker-ipv6/errors-*.txt, inspect-*.json)."""

import json
from ipaddress import IPv6Address, IPv6Network

import pytest

from minidock.config import DaemonConfig, parse_config
from minidock.errors import Conflict, InvalidArgument
from minidock.net import ipam6

from tests.reference import REF6

V6 = {"ipv6": True, "fixed-cidr-v6": "2001:db8:1::/64"}


def docker_daemon_errors() -> str:
    return (REF6 / "errors-daemon.txt").read_text()


def docker_create_errors() -> str:
    return (REF6 / "errors-network-create.txt").read_text()


@pytest.mark.parametrize("data, message", [
    ({"ipv6": True}, "IPv6 is enabled for the default bridge, but no subnet is configured. "
                     "Specify an IPv6 subnet using --fixed-cidr-v6"),
    ({"ipv6": True, "fixed-cidr-v6": "2001:db8:zz::/64"}, "invalid CIDR address: 2001:db8:zz::/64"),
    ({"ipv6": True, "fixed-cidr-v6": "2001:db8:1::"}, "invalid CIDR address: 2001:db8:1::"),
    ({**V6, "default-gateway-v6": "2001:db8:9::1"},
     "auxiliary address: (DefaultGatewayIPv6:2001:db8:9::1) must belong to the master pool: "
     "2001:db8:1::/64"),
    ({**V6, "default-gateway-v6": "2001:db8:1::1"},
     "failed to allocate secondary ip address (DefaultGatewayIPv6:2001:db8:1::1): "
     "Address already in use"),
    ({**V6, "default-gateway-v6": "zz"}, "invalid IP address: zz"),
    ({"default-gateway": "zz"}, "invalid IP address: zz"),
    ({**V6, "ip6tables": True, "iptables": False},
     "cannot create new chains, EnableIPTable is disabled"),
])
def test_bad_ipv6_daemon_options_use_dockers_messages(data, message):
    with pytest.raises(InvalidArgument) as err:
        parse_config(data)
    assert str(err.value) == message
    assert message in docker_daemon_errors()


def test_default_gateway_checked_against_bip():
    with pytest.raises(InvalidArgument, match=r"^auxiliary address: \(DefaultGatewayIPv4:"
                                              r"10.9.9.9\) must belong to the master pool: "
                                              r"10.1.0.0/24$"):
        parse_config({"bip": "10.1.0.1/24", "default-gateway": "10.9.9.9"})


def test_ip6tables_on_with_ipv6_unless_false_and_experimental_accepted():
    assert parse_config({**V6, "experimental": True}).ip6tables_on
    assert not parse_config({**V6, "ip6tables": False}).ip6tables_on
    assert not parse_config({**V6, "iptables": False, "icc": True}).ip6tables_on
    assert not DaemonConfig().ip6tables_on


def test_default_bridge_address_from_mac_as_docker():
    doc = json.loads((REF6 / "inspect-web.json").read_text())[0]["NetworkSettings"]
    got = ipam6.mac_address6(IPv6Network("2001:db8:1::/64"), doc["MacAddress"])
    assert str(got) == doc["GlobalIPv6Address"] == "2001:db8:1::242:ac11:2"
    assert ipam6.mac_address6(IPv6Network("2001:db8:1::/96"), doc["MacAddress"]) is None


def test_user_network_lowest_free_skips_network_address_and_gateway():
    pool = ipam6.make_pool6("2001:db8:2::/64")
    assert pool.gateway == IPv6Address("2001:db8:2::1")
    assert str(ipam6.first_free6(pool, [])) == "2001:db8:2::2"
    assert str(ipam6.first_free6(pool, ["2001:db8:2::2"])) == "2001:db8:2::3"
    # a gateway elsewhere frees ::1, as Docker handed it to the first container
    pool = ipam6.make_pool6("2001:db8:3::/64", "2001:db8:3::100")
    assert str(ipam6.first_free6(pool, [])) == "2001:db8:3::1"
    assert ipam6.first_free6(ipam6.make_pool6("2001:db8:e::/127"), []) is None


def test_ip_range_and_requested_addresses():
    pool = ipam6.make_pool6("2001:db8:a::/64", ip_range="2001:db8:a:0:1::/80")
    assert str(ipam6.first_free6(pool, [])) == "2001:db8:a:0:1::"
    assert ipam6.check_requested6(pool, "2001:db8:a::99", []) == IPv6Address("2001:db8:a::99")
    with pytest.raises(Conflict, match="Address already in use: 2001:db8:a::1"):
        ipam6.check_requested6(pool, "2001:db8:a::1", [])
    with pytest.raises(InvalidArgument, match="does not belong"):
        ipam6.check_requested6(pool, "2001:db8:b::5", [])


@pytest.mark.parametrize("subnets, gateways, message", [
    (["2001:db8:7::/64", "2001:db8:8::/64"], [], "bridge driver doesn't support multiple subnets"),
    (["2001:db8:9::/64"], ["172.40.0.1"], "no matching subnet for gateway 172.40.0.1"),
    (["2001:db8:b::/64"], ["2001:db8:b::1", "2001:db8:b::2"],
     "every ip-range or gateway must have a corresponding subnet"),
])
def test_network_create_family_split_errors(subnets, gateways, message):
    with pytest.raises(InvalidArgument) as err:
        ipam6.split_families(subnets, gateways, [])
    assert str(err.value) == message
    assert message in docker_create_errors()


def test_network_create_pool_errors():
    for args, message in (
            (("2001:db8:zz::/64",), "Invalid subnet 2001:db8:zz::/64 : invalid CIDR address: "
                                    "2001:db8:zz::/64"),
            (("2001:db8:4::/64", "2001:db8:5::1"), "no matching subnet for gateway 2001:db8:5::1")):
        with pytest.raises(InvalidArgument) as err:
            ipam6.make_pool6(*args)
        assert str(err.value) == message
        assert message in docker_create_errors()
    with pytest.raises(Conflict) as err:
        ipam6.check_overlap(IPv6Network("2001:db8:2:0:1::/80"), [IPv6Network("2001:db8:2::/64")])
    assert str(err.value) in docker_create_errors()


def test_split_keeps_one_subnet_of_each_family():
    v4, v6 = ipam6.split_families(["2001:db8:3::/64", "172.31.0.0/16"], ["2001:db8:3::100"], [])
    assert v4 == ("172.31.0.0/16", "", "") and v6 == ("2001:db8:3::/64", "2001:db8:3::100", "")
