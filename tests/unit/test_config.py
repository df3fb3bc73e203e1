"""DaemonConfig: daemon.json keys, defaults, and dockerd's validation messages."""

import json

import pytest

from minidock.config import DaemonConfig, load_config, parse_config
from minidock.errors import InvalidArgument


def test_defaults():
    cfg = parse_config({})
    assert cfg == DaemonConfig()
    assert cfg.bridge_name == "minidock0"
    assert cfg.default_bridge_enabled
    assert cfg.masquerade
    assert cfg.mtu == 1500 and cfg.ip == "0.0.0.0" and cfg.icc and cfg.userland_proxy


def test_all_keys():
    cfg = parse_config({
        "bip": "192.168.100.1/24", "fixed-cidr": "192.168.100.128/25", "mtu": 1400,
        "icc": False, "iptables": True, "ip-masq": False, "ip-forward": False,
        "ip": "127.0.0.1", "userland-proxy": False, "dns": ["1.1.1.1"],
        "dns-search": ["example.com"], "dns-opts": ["ndots:2"],
        "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
        "cluster-store": "etcd://127.0.0.1:2379", "cluster-advertise": "127.0.0.1:2376",
    })
    assert cfg.bip == "192.168.100.1/24" and cfg.fixed_cidr == "192.168.100.128/25"
    assert cfg.mtu == 1400 and not cfg.icc and not cfg.masquerade and not cfg.ip_forward
    assert cfg.dns == ("1.1.1.1",) and cfg.dns_search == ("example.com",)
    assert cfg.dns_opts == ("ndots:2",)
    assert cfg.default_address_pools == (("10.10.0.0/16", 24),)
    assert cfg.cluster_store == "etcd://127.0.0.1:2379"


def test_bridge_none_and_named():
    assert not parse_config({"bridge": "none"}).default_bridge_enabled
    assert parse_config({"bridge": "br0"}).bridge_name == "br0"


def test_mtu_zero_means_1500():
    assert parse_config({"mtu": 0}).mtu == 1500


def test_masquerade_off_without_iptables_is_not_an_error():
    cfg = parse_config({"iptables": False, "ip-masq": True})
    assert not cfg.masquerade


@pytest.mark.parametrize("data, message", [
    ({"foo": 1}, "the following directives don't match any configuration option: foo"),
    ({"bridge": "br0", "bip": "10.0.0.1/24"},
     "You specified -b & --bip, mutually exclusive options. Please specify only one"),
    ({"icc": False, "iptables": False},
     "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. "
     "Please set --icc or --iptables to true"),
    ({"bip": "10.0.0.300/24"}, "invalid CIDR address: 10.0.0.300/24"),
    ({"bip": "10.0.0.1"}, "invalid CIDR address: 10.0.0.1"),
    ({"fixed-cidr": "nope"}, "invalid CIDR address: nope"),
    ({"ip": "1.2.3"}, "1.2.3 is not an ip address"),
    ({"mtu": 67}, "invalid mtu 67"),
    ({"mtu": 70000}, "invalid mtu 70000"),
    ({"cluster-advertise": "1.2.3.4:2376"},
     "invalid cluster configuration. --cluster-advertise must be accompanied by "
     "--cluster-store configuration"),
    ({"cluster-store": "etcd"}, "kv store daemon config must be of the form KV-PROVIDER://KV-URL"),
    ({"icc": "yes"}, "icc"),
    ({"mtu": "1500"}, "mtu"),
    ({"dns": "8.8.8.8"}, "dns"),
    ({"dns": ["x"]}, "IP address is not correctly formatted: x"),
    ({"dns-search": ["-bad-"]}, "-bad- is not a valid domain"),
    ({"default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]}, "size 8"),
    ({"default-address-pools": [{"base": "10.0.0/16", "size": 24}]}, "invalid CIDR address"),
])
def test_invalid(data, message):
    with pytest.raises(InvalidArgument) as exc:
        parse_config(data)
    assert message in str(exc.value)


@pytest.mark.parametrize("data, message", [
    ({"bridge": "br0", "bip": "10.0.0.1/24"},
     'keys "bridge" and "bip": You specified -b & --bip, mutually exclusive options.'),
    ({"icc": False, "iptables": False}, 'keys "icc" and "iptables": You specified --iptables'),
    ({"bip": "10.0.0.1"}, 'key "bip": invalid CIDR address: 10.0.0.1'),
    ({"fixed-cidr": "nope"}, 'key "fixed-cidr": invalid CIDR address: nope'),
    ({"icc": "yes"}, 'key "icc": must be true or false, not string "yes"'),
    ({"mtu": "1500"}, 'key "mtu": must be an integer, not string "1500"'),
    ({"dns": "8.8.8.8"}, 'key "dns": must be a list of strings, not string "8.8.8.8"'),
    ({"mtu": 67}, 'key "mtu": invalid mtu 67'),
    ({"bridge": "a-very-long-bridge-name"}, 'key "bridge": invalid bridge name'),
    ({"cluster-advertise": "1.2.3.4:2376"}, 'keys "cluster-advertise" and "cluster-store":'),
    ({"default-address-pools": [{"base": "10.0.0/16", "size": 24}]},
     'key "default-address-pools": invalid CIDR address'),
])
def test_messages_name_the_keys_as_written(data, message):
    with pytest.raises(InvalidArgument) as exc:
        parse_config(data)
    assert str(exc.value).startswith(message)


def test_fixed_cidr_outside_bip_names_both():
    with pytest.raises(InvalidArgument) as exc:
        parse_config({"bip": "192.168.100.1/24", "fixed-cidr": "10.0.0.0/24"})
    assert "10.0.0.0/24" in str(exc.value) and "192.168.100.1/24" in str(exc.value)


def test_load_missing_file_is_defaults(tmp_path):
    assert load_config(str(tmp_path / "nope.json")) == DaemonConfig()


def test_load_bad_json_names_file(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text("{bad")
    with pytest.raises(InvalidArgument) as exc:
        load_config(str(path))
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg


def test_load_valid_file(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"icc": False}))
    assert not load_config(str(path)).icc


def test_load_invalid_content_names_file(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"bogus": True}))
    with pytest.raises(InvalidArgument) as exc:
        load_config(str(path))
    assert str(path) in str(exc.value) and "bogus" in str(exc.value)
