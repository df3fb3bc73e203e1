"""IPAM arithmetic: pools, picking, lowest free address, --ip checks, MACs."""

from ipaddress import IPv4Address as A
from ipaddress import IPv4Network as N

import pytest

from minidock.errors import Conflict, InvalidArgument
from minidock.net import ipam


def test_local_pools():
    pools = ipam.LOCAL_POOLS
    assert len(pools) == 31
    assert pools[0] == N("172.17.0.0/16") and pools[14] == N("172.31.0.0/16")
    assert pools[15] == N("192.168.0.0/20") and pools[-1] == N("192.168.240.0/20")
    assert ipam.default_pools() == pools


def test_configured_pools_are_lazy_and_indexable():
    pools = ipam.default_pools((("10.0.0.0/8", 24), ("192.168.0.0/16", 20)))
    assert len(pools) == 65536 + 16
    assert pools[0] == N("10.0.0.0/24") and pools[65535] == N("10.255.255.0/24")
    assert pools[65536] == N("192.168.0.0/20")
    assert pools.index(N("10.0.5.0/24")) == 5
    assert pools.index(N("192.168.16.0/20")) == 65537
    with pytest.raises(ValueError):
        pools.index(N("10.0.5.0/25"))


def test_pick_first_free():
    pick = ipam.pick_pool(ipam.LOCAL_POOLS, [], [], [])
    assert pick == N("172.17.0.0/16")


def test_pick_skips_in_use_routes_nameservers_and_ignores_default_route():
    pick = ipam.pick_pool(ipam.LOCAL_POOLS, [N("172.17.0.0/16")],
                          [N("0.0.0.0/0"), N("172.18.5.0/24")], [A("172.19.0.53")])
    assert pick == N("172.20.0.0/16")


def test_pick_round_robin_wraps():
    pools = ipam.LOCAL_POOLS
    assert ipam.pick_pool(pools, [], [], [], start_after=N("172.18.0.0/16")) == N("172.19.0.0/16")
    last = pools[-1]
    assert ipam.pick_pool(pools, [N("172.17.0.0/16")], [], [], start_after=last) == N("172.18.0.0/16")


def test_pick_exhausted():
    with pytest.raises(Conflict) as exc:
        ipam.pick_pool(ipam.LOCAL_POOLS, [N("172.16.0.0/12"), N("192.168.0.0/16")], [], [])
    assert str(exc.value) == ("could not find an available, non-overlapping IPv4 address "
                              "pool among the defaults to assign to the network")


def test_pick_in_large_configured_pool():
    pools = ipam.default_pools((("10.0.0.0/8", 24),))
    pick = ipam.pick_pool(pools, [N("10.0.0.0/24")], [N("10.0.1.0/24")], [],
                          start_after=N("10.0.0.0/24"))
    assert pick == N("10.0.2.0/24")


def test_make_pool_defaults_and_validation():
    pool = ipam.make_pool("10.77.0.0/24")
    assert pool == ipam.Pool(N("10.77.0.0/24"), A("10.77.0.1"))
    pool = ipam.make_pool("10.77.0.0/16", "10.77.0.254", "10.77.5.0/24", aux=["10.77.0.2"])
    assert pool.gateway == A("10.77.0.254") and pool.ip_range == N("10.77.5.0/24")
    assert pool.aux == (A("10.77.0.2"),)


@pytest.mark.parametrize("args, message", [
    (("10.0.0/24",), "invalid CIDR address: 10.0.0/24"),
    (("10.0.0.0",), "invalid CIDR address: 10.0.0.0"),
    (("10.0.0.0/24", "10.1.0.1"), "no matching subnet for gateway 10.1.0.1"),
    (("10.0.0.0/24", "bogus"), "no matching subnet for gateway bogus"),
    (("10.0.0.0/24", None, "10.1.0.0/24"), "no matching subnet for range 10.1.0.0/24"),
    (("10.0.0.0/24", None, "10.0.0.0/23"), "no matching subnet for range 10.0.0.0/23"),
    (("10.0.0.0/24", "10.0.0.0"), "failed to allocate gateway (10.0.0.0): Address already in use"),
])
def test_make_pool_errors(args, message):
    with pytest.raises(InvalidArgument) as exc:
        ipam.make_pool(*args)
    assert str(exc.value) == message


def test_pool_from_bip():
    pool = ipam.pool_from_bip("192.168.100.1/24", "192.168.100.128/25")
    assert pool.subnet == N("192.168.100.0/24") and pool.gateway == A("192.168.100.1")
    assert pool.ip_range == N("192.168.100.128/25")
    assert ipam.first_free(pool, set()) == A("192.168.100.128")
    with pytest.raises(InvalidArgument):
        ipam.pool_from_bip("192.168.100.1/24", "10.0.0.0/24")


def test_candidates_and_first_free():
    pool = ipam.make_pool("172.17.0.0/16")
    assert list(ipam.candidates(ipam.make_pool("10.0.0.0/29"))) == [
        A("10.0.0.2"), A("10.0.0.3"), A("10.0.0.4"), A("10.0.0.5"), A("10.0.0.6")]
    assert ipam.first_free(pool, set()) == A("172.17.0.2")
    assert ipam.first_free(pool, {A("172.17.0.2")}) == A("172.17.0.3")
    # freed addresses are reused at once; str items are accepted too
    assert ipam.first_free(pool, {"172.17.0.3"}) == A("172.17.0.2")


def test_first_free_skips_aux_and_gateway_anywhere():
    pool = ipam.make_pool("10.0.0.0/29", "10.0.0.3", aux=["10.0.0.1"])
    assert list(ipam.candidates(pool)) == [A("10.0.0.2"), A("10.0.0.4"), A("10.0.0.5"),
                                           A("10.0.0.6")]


def test_full_pool():
    pool = ipam.make_pool("10.0.0.0/30")
    assert ipam.first_free(pool, {A("10.0.0.2")}) is None
    err = ipam.exhausted("net1", "abc")
    assert str(err) == "no available IPv4 addresses on this network's address pools: net1 (abc)"


def test_first_free_on_big_pool():
    # correctness only: tests never assert on timings (bench/ measures those)
    pool = ipam.make_pool("172.17.0.0/16")
    taken = {A(int(A("172.17.0.2")) + i) for i in range(60000)}
    assert ipam.first_free(pool, taken) == A(int(A("172.17.0.2")) + 60000)


def test_check_requested():
    pool = ipam.make_pool("10.77.0.0/24", ip_range="10.77.0.128/25")
    assert ipam.check_requested(pool, "10.77.0.5", set()) == A("10.77.0.5")  # outside range ok
    cases = [("10.77.1.5", InvalidArgument,
              "Invalid address 10.77.1.5: It does not belong to any of this network's subnets"),
             ("10.77.0.1", Conflict, "Address already in use: 10.77.0.1"),
             ("10.77.0.0", Conflict, "Address already in use: 10.77.0.0"),
             ("10.77.0.255", Conflict, "Address already in use: 10.77.0.255"),
             ("10.77.0.9", Conflict, "Address already in use: 10.77.0.9"),
             ("nope", InvalidArgument, "invalid IPv4 address: nope"),
             ("::1", InvalidArgument, "invalid IPv4 address: ::1")]
    for addr, kind, message in cases:
        with pytest.raises(kind) as exc:
            ipam.check_requested(pool, addr, {A("10.77.0.9")})
        assert str(exc.value) == message


def test_mac_and_overlaps():
    assert ipam.mac_for(A("172.17.0.2")) == "02:42:ac:11:00:02"
    assert ipam.mac_for(A("10.77.0.255")) == "02:42:0a:4d:00:ff"
    assert ipam.overlaps(N("10.0.0.0/8"), N("10.1.0.0/16"))
    assert not ipam.overlaps(N("10.0.0.0/16"), N("10.1.0.0/16"))
    assert ipam.overlaps(A("10.0.0.5"), N("10.0.0.0/24"))
    assert ipam.overlaps("10.0.0.0/24", "10.0.0.5")
