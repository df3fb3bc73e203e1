"""dnsrecords: names resolve only across shared networks; writes replace; removal."""

from __future__ import annotations

import pytest

from minidock.net.dns import dnsrecords as r
from minidock.store import Store

A, B, C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(str(tmp_path))
    s.put("network", "n1", {"Name": "front"}, name="front")
    s.put("network", "n2", {"Name": "back.net"}, name="back.net")
    r.set_endpoint(s, "n1", A, "172.18.0.2", ["web", "www", A[:12], A[:12]])
    r.set_endpoint(s, "n1", B, "172.18.0.3/16", ["db"])
    r.set_endpoint(s, "n2", B, "172.19.0.2", ["db", "Store."])
    r.set_endpoint(s, "n2", C, "172.19.0.3", ["cache"])
    return s


def test_lookup_scoped_to_shared_networks(store: Store) -> None:
    assert r.lookup(store, A, "web") == ["172.18.0.2"]
    assert r.lookup(store, A, "WWW.") == ["172.18.0.2"]
    assert r.lookup(store, A, A[:12]) == ["172.18.0.2"]
    assert r.lookup(store, A, "db") == ["172.18.0.3"]
    assert r.lookup(store, A, "cache") == []          # n2 only: never leaks to A
    assert r.lookup(store, C, "web") == []
    assert r.lookup(store, C, "store") == ["172.19.0.2"]
    assert sorted(r.lookup(store, B, "db")) == ["172.18.0.3", "172.19.0.2"]
    assert r.lookup(store, "nobody", "web") == []


def test_lookup_name_dot_network(store: Store) -> None:
    assert r.lookup(store, B, "db.front") == ["172.18.0.3"]
    assert r.lookup(store, B, "db.back.net") == ["172.19.0.2"]
    assert r.lookup(store, A, "cache.back.net") == []


def test_same_name_on_two_containers_gives_both(store: Store) -> None:
    r.set_endpoint(store, "n1", C, "172.18.0.4", ["web"])
    assert sorted(r.lookup(store, A, "web")) == ["172.18.0.2", "172.18.0.4"]


def test_set_endpoint_replaces_names(store: Store) -> None:
    r.set_endpoint(store, "n1", A, "172.18.0.9", ["web2"])
    assert r.lookup(store, B, "web") == []
    assert r.lookup(store, B, "web2") == ["172.18.0.9"]


def test_remove_endpoint_and_container(store: Store) -> None:
    r.remove_endpoint(store, "n1", B)
    assert r.lookup(store, A, "db") == []
    assert r.lookup(store, C, "db") == ["172.19.0.2"]
    r.remove_endpoint(store, "n1", B)  # idempotent
    r.remove_container(store, B)
    assert r.lookup(store, C, "db") == []
    r.remove_container(store, B)


def test_reverse(store: Store) -> None:
    assert r.reverse(store, A, "172.18.0.3") == ["db.front"]
    assert r.reverse(store, A, "172.19.0.3") == []


def test_set_endpoint_inside_open_transaction(tmp_path) -> None:
    s = Store(str(tmp_path))
    with s.transaction():
        r.set_endpoint(s, "n1", A, "10.0.0.2", ["x"])
        s.put("network", "n1", {}, name="n")
    assert r.lookup(Store(str(tmp_path)), A, "x") == ["10.0.0.2"]


def test_normalize() -> None:
    assert r.normalize(["Web.", " web", "", "DB"]) == ["web", "db"]


def test_link_aliases_only_for_the_linker(store: Store) -> None:
    r.set_links(store, "n1", A, {"DATABASE": B})
    assert r.lookup(store, A, "database") == ["172.18.0.3"]
    assert r.lookup(store, B, "database") == []       # only the linker sees the alias
    r.remove_endpoint(store, "n1", B)                  # target gone from the network
    assert r.lookup(store, A, "database") == []
    r.set_endpoint(store, "n1", B, "172.18.0.3", ["db"])
    assert r.lookup(store, A, "database") == ["172.18.0.3"]
    r.remove_container(store, A)
    r.set_endpoint(store, "n1", A, "172.18.0.2", ["web"])
    assert r.lookup(store, A, "database") == []


def test_aaaa_records_scoped_like_a_records(tmp_path) -> None:
    s = Store(str(tmp_path))
    s.put("network", "n6", {"Name": "v6net"}, name="v6net")
    s.put("network", "n7", {"Name": "other"}, name="other")
    r.set_endpoint(s, "n6", A, "172.30.0.2", ["ca"], "2001:db8:2::2")
    r.set_endpoint(s, "n6", B, "172.30.0.3", ["cb"], "2001:db8:2::3/64")
    r.set_endpoint(s, "n7", C, "172.31.0.2", ["cc"], "2001:db8:3::2")
    r.set_endpoint(s, "n6", C, "172.30.0.4", ["cd"])            # no IPv6 here
    assert r.lookup(s, A, "cb", family=6) == ["2001:db8:2::3"]
    assert r.lookup(s, A, "cb.v6net", family=6) == ["2001:db8:2::3"]
    assert r.lookup(s, A, "cd", family=6) == [] and r.lookup(s, A, "cd") == ["172.30.0.4"]
    assert r.lookup(s, A, "cc", family=6) == []                 # not a shared network
    r.set_endpoint(s, "n6", B, "172.30.0.3", ["cb"])            # reconnected without IPv6
    assert r.lookup(s, A, "cb", family=6) == []
    r.remove_container(s, C)
    assert r.lookup(s, C, "cc", family=6) == []
