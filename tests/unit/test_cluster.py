"""Pure parts of the cluster store and the overlay driver (no root, no etcd)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest

from minidock.cluster import etcd as E
from minidock.cluster import layout
from minidock.cluster.gstore import _with_pool_and_vni
from minidock.config import parse_config
from minidock.errors import Conflict, InvalidArgument
from minidock.net.drivers.overlay import records


def test_parse_url_members_ports_and_path():
    assert E.parse_url("etcd://a:2379,b,10.0.0.3:4001") == (
        [("a", 2379), ("b", 2379), ("10.0.0.3", 4001)], "")
    assert E.parse_url("etcd://a:2379/tenant1/") == ([("a", 2379)], "/tenant1")


def test_prefix_end_and_base64_round_trip():
    assert E.prefix_end("/minidock/") == "/minidock0"
    assert E.unb64(E.b64("/minidock/ip/x/10.0.0.2")) == "/minidock/ip/x/10.0.0.2"


def test_request_bodies_use_the_gateway_encoding():
    put = E.op_put("/k", "v", lease=42)["request_put"]
    assert put == {"key": E.b64("/k"), "value": E.b64("v"), "lease": "42"}
    assert "lease" not in E.op_put("/k", "v")["request_put"]
    rng = E.op_delete("/p/", prefix=True)["request_delete_range"]
    assert E.unb64(rng["range_end"]) == "/p0"
    assert E.cmp_absent("/k") == {"key": E.b64("/k"), "target": "CREATE", "result": "EQUAL",
                                  "create_revision": "0"}
    cmp = E.cmp_unchanged_since("/p/", 41)
    assert cmp["mod_revision"] == "42" and cmp["result"] == "LESS"


def test_decode_kvs_fills_defaults():
    kvs = E.decode_kvs([{"key": E.b64("/a"), "value": E.b64("1"), "mod_revision": "7"}])
    assert kvs == [E.KV("/a", "1", 0, 7, 0)]


def test_transient_answers_are_retried_elsewhere():
    assert E._transient(b'{"error": "etcdserver: leader changed"}')
    assert not E._transient(b'{"error": "etcdserver: requested lease not found"}')


def test_keys_layout():
    k = layout.Keys("/t")
    assert k.network("n1") == "/t/minidock/network/n1"
    assert k.subnet("10.0.0.0/24") == "/t/minidock/subnet/10.0.0.0_24"
    assert layout.subnet_of_key(k, k.subnet("10.0.0.0/24")) == IPv4Network("10.0.0.0/24")
    assert k.parse_endpoint(k.endpoint("n1", "e1")) == ("n1", "e1")
    assert layout.Keys().base == "/minidock/"


def test_first_free_vni_starts_at_256_and_fills_holes():
    assert layout.first_free_vni([]) == 256
    assert layout.first_free_vni([256, 257, 259]) == 258


def test_next_global_subnet_skips_overlaps():
    assert layout.next_global_subnet([]) == IPv4Network("10.0.0.0/24")
    taken = [IPv4Network("10.0.0.0/24"), IPv4Network("10.0.2.0/23")]
    assert layout.next_global_subnet(taken) == IPv4Network("10.0.1.0/24")
    taken.append(IPv4Network("10.0.1.0/24"))
    assert layout.next_global_subnet(taken) == IPv4Network("10.0.4.0/24")


def _doc(options=None):
    return {"Name": "ov", "Id": "n1", "IPAM": {"Config": []}, "Options": options or {},
            "_net": {"subnet": "", "gateway": ""}}


def test_pool_and_vni_chosen_for_a_create():
    doc = _with_pool_and_vni(_doc(), "", [IPv4Network("10.0.0.0/24")], [256])
    assert doc["_net"]["subnet"] == "10.0.1.0/24" and doc["_net"]["gateway"] == "10.0.1.1"
    assert doc["_net"]["state"]["vni"] == 257
    assert doc["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "257"
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]


def test_overlapping_pool_and_forced_vni_in_use_conflict():
    with pytest.raises(Conflict, match="Pool overlaps"):
        _with_pool_and_vni(_doc(), "10.0.0.0/16", [IPv4Network("10.0.5.0/24")], [])
    forced = _doc({"com.docker.network.driver.overlay.vxlanid_list": "300"})
    with pytest.raises(Conflict, match="VXLAN id 300"):
        _with_pool_and_vni(forced, "10.9.0.0/24", [], [300])


def test_cluster_store_opts_and_lease_ttl():
    cfg = parse_config({"cluster-store": "etcd://a:2379", "cluster-advertise": "192.0.2.1",
                        "cluster-store-opts": {"discovery.ttl": "5"}})
    assert records.lease_ttl(cfg) == 5
    assert records.advertise_address(cfg) == "192.0.2.1"
    assert records.lease_ttl(parse_config({})) == records.DEFAULT_TTL
    with pytest.raises(InvalidArgument):
        parse_config({"cluster-store-opts": ["x"]})
    bad = parse_config({"cluster-store": "etcd://a", "cluster-store-opts": {"discovery.ttl": "x"}})
    with pytest.raises(InvalidArgument, match="discovery.ttl"):
        records.lease_ttl(bad)


def test_advertise_address_with_port():
    cfg = parse_config({"cluster-store": "etcd://a", "cluster-advertise": "192.0.2.7:2376"})
    assert records.advertise_address(cfg) == "192.0.2.7"


class _FakeCtxStore:
    def __init__(self, ctrs):
        self.ctrs = ctrs

    def get(self, kind, cid):
        return self.ctrs.get(cid)


def test_endpoint_record_names():
    from minidock.net.endpoint import Endpoint
    ctx = type("Ctx", (), {})()
    ctx.store = _FakeCtxStore({"c" * 64: {"Config": {"Hostname": "web1"}}})
    ep = Endpoint(id="e1", network_id="n1", container_id="c" * 64, name="api",
                  ip="10.0.0.2", prefixlen=24, mac="02:42:0a:00:00:02", aliases=("db",))
    rec = records.endpoint_record(ctx, ep, "192.0.2.11")
    assert rec == {"ip": "10.0.0.2", "prefixlen": 24, "mac": "02:42:0a:00:00:02",
                   "vtep": "192.0.2.11", "container_id": "c" * 64, "name": "api",
                   "names": ["api", "db", "c" * 12, "web1"]}
    json.dumps(rec)


def test_a_retried_create_plans_afresh():
    doc = _doc()
    first = _with_pool_and_vni(doc, "", [], [])
    again = _with_pool_and_vni(doc, "", [IPv4Network(first["_net"]["subnet"])],
                               [first["_net"]["state"]["vni"]])
    assert again["_net"]["state"]["vni"] == 257 and again["_net"]["subnet"] == "10.0.1.0/24"
    assert doc["Options"] == {} and doc["_net"]["subnet"] == ""
