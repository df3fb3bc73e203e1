"""The global-scope store: overlay networks, their addresses and endpoints in etcd.

The network code calls these with the CLI's context; each call is a few short
requests to etcd (cluster/etcd.py), and each decision one transaction (layout.py).
The local SQLite store keeps a copy of every global network (`sync_networks`), so that
`run`, `inspect` and the resolver find them by name without asking etcd; etcd stays
the truth: a copy whose network left etcd is dropped at the next sync.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from minidock.hints import Any

from minidock.cluster import etcd as E
from minidock.cluster.layout import Keys, first_free_vni, next_global_subnet, subnet_of_key
from minidock.errors import Conflict, Forbidden, InvalidArgument

ATTEMPTS = 8


class GStore:
    def __init__(self, url: str) -> None:
        self.etcd = E.Etcd(url)
        self.keys = Keys(self.etcd.path)


def open_gstore(ctx: Any) -> GStore:
    """The cluster store of this host's daemon.json (InvalidArgument without one)."""
    url = ctx.config.cluster_store
    if not url:
        raise InvalidArgument("overlay networks need a cluster store: set \"cluster-store\" "
                              "(and \"cluster-advertise\") in daemon.json")
    provider = url.partition("://")[0]
    if provider != "etcd":
        raise InvalidArgument(f"cluster store provider {provider} is not supported (etcd only)")
    return GStore(url)


# -- networks --------------------------------------------------------------------------
def create_network(gs: GStore, doc: dict[str, Any], subnet: str) -> dict[str, Any]:
    """Claim name, VNI and pool, then store `doc` (its subnet/VNI filled in when chosen
    here); Conflict if the name or pool is taken. Returns the stored document."""
    k = gs.keys
    for _attempt in range(ATTEMPTS):
        kvs, rev = gs.etcd.get_range(k.netname(""), E.prefix_end(k.vni()))  # names..VNIs
        names = {kv.key for kv in kvs if kv.key.startswith(k.netname(""))}
        if k.netname(doc["Name"]) in names:
            raise Conflict(f"network with name {doc['Name']} already exists")
        pools = [subnet_of_key(k, kv.key) for kv in kvs if kv.key.startswith(k.subnet())]
        vnis = [int(kv.key[len(k.vni()):]) for kv in kvs if kv.key.startswith(k.vni())]
        planned = _with_pool_and_vni(doc, subnet, pools, vnis)   # afresh on each try
        net = planned["_net"]
        ok, _r = gs.etcd.txn(
            [E.cmp_absent(k.netname(doc["Name"])), E.cmp_absent(k.vni(net["state"]["vni"])),
             E.cmp_unchanged_since(k.subnet(), rev), E.cmp_unchanged_since(k.vni(), rev)],
            [E.op_put(k.network(doc["Id"]), json.dumps(planned)),
             E.op_put(k.netname(doc["Name"]), doc["Id"]),
             E.op_put(k.subnet(net["subnet"]), doc["Id"]),
             E.op_put(k.vni(net["state"]["vni"]), doc["Id"]),
             E.op_put(k.ip(doc["Id"], net["gateway"]), "gateway")])
        if ok:
            return planned
    raise Conflict(f"network {doc['Name']}: the cluster store kept changing; try again")


def _with_pool_and_vni(doc: dict[str, Any], subnet: str, pools: list[IPv4Network],
                       vnis: list[int]) -> dict[str, Any]:
    from minidock.net import ipam
    doc = json.loads(json.dumps(doc))
    net = doc["_net"]
    if subnet:
        want = IPv4Network(subnet)
        if any(want.overlaps(p) for p in pools):
            raise Conflict(f"Pool overlaps with other one on this address space: {subnet}")
    else:
        picked = next_global_subnet(pools)
        if picked is None:
            raise InvalidArgument("could not find an available, non-overlapping IPv4 address "
                                  "pool among the defaults to assign to the network")
        pool = ipam.make_pool(str(picked))
        net.update(subnet=str(pool.subnet), gateway=str(pool.gateway))
        doc["IPAM"]["Config"] = [{"Subnet": str(pool.subnet), "Gateway": str(pool.gateway)}]
    forced = doc["Options"].get("com.docker.network.driver.overlay.vxlanid_list")
    vni = int(forced) if forced else first_free_vni(vnis)
    if vni in vnis:
        raise Conflict(f"VXLAN id {vni} is already in use")
    net.setdefault("state", {})["vni"] = vni
    doc["Options"]["com.docker.network.driver.overlay.vxlanid_list"] = str(vni)
    return doc


def list_networks(gs: GStore) -> list[dict[str, Any]]:
    kvs, _rev = gs.etcd.get_prefix(gs.keys.network())
    return [json.loads(kv.value) for kv in kvs]


def delete_network(gs: GStore, doc: dict[str, Any]) -> None:
    """Remove the network and all its claims, unless an endpoint is left anywhere."""
    k, nid = gs.keys, doc["Id"]
    for _attempt in range(ATTEMPTS):
        eps, rev = gs.etcd.get_prefix(k.endpoints(nid))
        if eps:
            raise Forbidden(f"error while removing network: network {doc['Name']} id {nid} "
                            "has active endpoints")
        net = doc["_net"]
        ok, _r = gs.etcd.txn(
            [E.cmp_unchanged_since(k.endpoints(nid), rev)],
            [E.op_delete(k.ips(nid), prefix=True), E.op_delete(k.netname(doc["Name"])),
             E.op_delete(k.subnet(net["subnet"])), E.op_delete(k.vni(net["state"]["vni"])),
             E.op_delete(k.network(nid))])
        if ok:
            return
    raise Conflict(f"network {doc['Name']}: the cluster store kept changing; try again")


def sync_networks(ctx: Any, gs: GStore | None = None) -> None:
    """Make the local copies of global networks match etcd (adds, updates, drops the
    copies of networks gone from etcd that no local endpoint uses)."""
    gs = gs or open_gstore(ctx)
    store = ctx.store
    remote = {d["Id"]: d for d in list_networks(gs)}
    local = {nid: d for nid, d in store.list("network") if d.get("Scope") == "global"}
    if local == remote:
        return      # the common case writes nothing (no SQLite write lock taken)
    with store.transaction():
        for nid, doc in store.list("network"):
            if doc.get("Scope") == "global" and nid not in remote:
                if not any(d["network_id"] == nid for _i, d in store.list("endpoint")):
                    store.delete("network", nid)
        for nid, doc in remote.items():
            if store.get("network", nid) != doc:
                try:
                    store.put("network", nid, doc, name=doc["Name"])
                except Conflict:
                    pass   # a local network of that name hides it on this host


# -- addresses and endpoints -------------------------------------------------------------
def claim_address(gs: GStore, nid: str, pool: Any, owner: str, requested: str,
                  lease: int, name: str) -> IPv4Address:
    """Take `requested` or the lowest free address of the network for `owner`, on
    `lease` (the host's), in one transaction per try."""
    from minidock.net import ipam
    k = gs.keys
    for _attempt in range(ATTEMPTS * 4):
        kvs, _rev = gs.etcd.get_prefix(k.ips(nid))
        taken = {IPv4Address(kv.key[len(k.ips(nid)):]) for kv in kvs}
        if requested:
            addr = ipam.check_requested(pool, requested, taken)
        else:
            addr = ipam.first_free(pool, taken)
            if addr is None:
                raise InvalidArgument("no available IPv4 addresses on this network's "
                                      f"address pools: {name} ({nid})")
        ok, _r = gs.etcd.txn(
            [E.cmp_absent(k.ip(nid, str(addr))),
             {"key": E.b64(k.network(nid)), "target": "CREATE", "result": "GREATER",
              "create_revision": "0"}],
            [E.op_put(k.ip(nid, str(addr)), owner, lease)])
        if ok:
            return addr
        if gs.etcd.get(k.network(nid)) is None:
            raise Conflict(f"network {name} id {nid} was removed")
        if requested:
            raise Conflict(f"Address already in use: {addr}")
    raise Conflict(f"network {name}: could not claim an address (too much contention)")


def release_endpoint(gs: GStore, nid: str, owner: str) -> None:
    """Drop the endpoint's record and every address it holds (idempotent)."""
    k = gs.keys
    kvs, _rev = gs.etcd.get_prefix(k.ips(nid))
    ops = [E.op_delete(kv.key) for kv in kvs if kv.value == owner]
    ops.append(E.op_delete(k.endpoint(nid, owner)))
    gs.etcd.txn([], ops)


def put_endpoint(gs: GStore, nid: str, eid: str, record: dict[str, Any], lease: int) -> None:
    gs.etcd.put(gs.keys.endpoint(nid, eid), json.dumps(record, sort_keys=True), lease)


def list_endpoints(gs: GStore) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    """{(nid, eid): record} of every endpoint of every host, and the revision read."""
    kvs, rev = gs.etcd.get_prefix(gs.keys.endpoints())
    return {gs.keys.parse_endpoint(kv.key): json.loads(kv.value) for kv in kvs}, rev
