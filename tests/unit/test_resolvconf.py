"""resolv.conf text: host filtering, fallback, --dns regeneration, embedded DNS."""


import pytest

from minidock.errors import InvalidArgument
from minidock.net.dns import resolvconf as rc

from tests.reference import REF  # noqa: E402

HOST = ("# generated\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n"
        "nameserver ::1\nnameserver 2001:db8::53\noptions edns0 trust-ad\n")


def test_bridge_filters_loopback_and_ipv6():
    out = rc.for_bridge(HOST)
    assert out == ("# generated\nsearch corp.example\nnameserver 10.0.0.2\n"
                   "options edns0 trust-ad\n")
    assert "nameserver 2001:db8::53" in rc.for_bridge(HOST, ipv6=True)


def test_bridge_fallback_when_nothing_left():
    out = rc.for_bridge("nameserver 127.0.0.53\noptions edns0\n")
    assert out == "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert rc.for_bridge("") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert rc.for_bridge("", ipv6=True).count("nameserver") == 4


def test_bridge_dns_flags_regenerate():
    assert rc.for_bridge(HOST, dns=["1.1.1.1", "127.0.0.1"]) == (
        "search corp.example\nnameserver 1.1.1.1\nnameserver 127.0.0.1\n"
        "options edns0 trust-ad\n")
    assert rc.for_bridge(HOST, search=["a.example", "b.example"], options=["ndots:2"]) == (
        "search a.example b.example\nnameserver 10.0.0.2\noptions ndots:2\n")
    assert rc.for_bridge(HOST, dns=["1.1.1.1"], search=["."]) == (
        "nameserver 1.1.1.1\noptions edns0 trust-ad\n")


def test_user_network_reference():
    assert rc.for_user_network("") == (REF / "userdef-resolv.txt").read_text()


def test_user_network_keeps_search_and_options():
    assert rc.for_user_network(HOST) == (
        "search corp.example\nnameserver 127.0.0.11\noptions edns0 trust-ad ndots:0\n")
    assert rc.for_user_network(HOST, options=["ndots:3"]) == (
        "search corp.example\nnameserver 127.0.0.11\noptions ndots:3\n")
    assert rc.for_user_network(HOST, dns=["1.1.1.1"]).count("nameserver") == 1
    assert "nameserver 2001:db8::53\n" in rc.for_user_network(HOST, ipv6=True)


def test_user_network_bad_ndots():
    with pytest.raises(InvalidArgument, match="invalid number for ndots option: x"):
        rc.for_user_network("", options=["ndots:x"])


def test_upstream_servers():
    assert rc.upstream_servers(HOST) == ["127.0.0.53", "10.0.0.2"]
    assert rc.upstream_servers(HOST, dns=["9.9.9.9"]) == ["9.9.9.9"]
    many = "".join(f"nameserver 10.0.0.{i}\n" for i in range(5))
    assert rc.upstream_servers(many) == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]


def test_host_resolv_path(monkeypatch):
    monkeypatch.setattr(rc.os.path, "exists", lambda p: True)
    assert rc.host_resolv_path("nameserver 127.0.0.53\nsearch x\n") == rc.SYSTEMD_RESOLV
    assert rc.host_resolv_path("nameserver 10.0.0.2\n") == rc.ETC_RESOLV
    assert rc.host_resolv_path("nameserver 127.0.0.53\nnameserver 1.1.1.1\n") == rc.ETC_RESOLV
    assert isinstance(rc.host_resolv_path(), str)
