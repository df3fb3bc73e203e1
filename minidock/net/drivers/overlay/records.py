"""What an overlay endpoint looks like in the cluster store, shared by CLI and agent.

An endpoint record (`endpoint/<nid>/<eid>`, on its host's lease) carries what the other
hosts need: the address and MAC for their neighbour and FDB entries, the host's VTEP
address, and the names their resolvers answer. `mirror_dns` copies the other hosts'
records into this host's DNS tables (net/dns/dnsrecords.py), so the embedded resolver,
which reads the local store, answers them like local ones.
"""

from __future__ import annotations

from minidock.hints import Any

from minidock.errors import InvalidArgument

DEFAULT_TTL = 20
TTL_OPT = "discovery.ttl"


def lease_ttl(cfg: Any) -> int:
    """The host lease's TTL in seconds (`cluster-store-opts` {"discovery.ttl": "5"})."""
    raw = dict(cfg.cluster_store_opts).get(TTL_OPT, "")
    if not raw:
        return DEFAULT_TTL
    try:
        ttl = int(str(raw).rstrip("s"))
    except ValueError:
        raise InvalidArgument(f"invalid {TTL_OPT}: {raw}") from None
    if ttl < 2:
        raise InvalidArgument(f"invalid {TTL_OPT}: {raw} (at least 2 seconds)")
    return ttl


def advertise_address(cfg: Any) -> str:
    """This host's VTEP address: `cluster-advertise` (an address or an interface name,
    optionally with a port, which VXLAN does not use)."""
    from ipaddress import IPv4Address
    value = cfg.cluster_advertise
    if not value:
        raise InvalidArgument("overlay networks need \"cluster-advertise\" in daemon.json "
                              "(this host's address on the underlay)")
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    try:
        return str(IPv4Address(host))
    except ValueError:
        pass
    from minidock.net.kernel.netlink import Netlink
    with Netlink() as nl:
        link = nl.link_get(host)
        addrs = nl.addr_list(link.index) if link is not None else []
    if not addrs:
        raise InvalidArgument(f"cluster-advertise: no IPv4 address on interface {host}")
    return addrs[0].address


def endpoint_record(ctx: Any, ep: Any, vtep: str) -> dict[str, Any]:
    """The record of endpoint `ep` (its local record, or the driver's EndpointInfo:
    aliases then come from the local record)."""
    ctr = ctx.store.get("container", ep.container_id) or {}
    hostname = (ctr.get("Config") or {}).get("Hostname", "")
    aliases = getattr(ep, "aliases", None)
    if aliases is None:
        aliases = (ctx.store.get("endpoint", ep.id) or {}).get("aliases") or ()
    prefixlen = getattr(ep, "prefixlen", None)
    if prefixlen is None:
        prefixlen = int(ep.address.partition("/")[2] or 0)
    names = [ep.name, *aliases, ep.container_id[:12]] + ([hostname] if hostname else [])
    return {"ip": ep.ip, "prefixlen": prefixlen, "mac": ep.mac, "vtep": vtep,
            "container_id": ep.container_id, "name": ep.name, "names": names}


def local_endpoints(store: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(endpoint, network doc) of this host's endpoints on global networks (the
    endpoint's record as attributes: id, network_id, ip, mac, aliases...)."""
    from types import SimpleNamespace
    nets = {nid: d for nid, d in store.list("network") if d.get("Scope") == "global"}
    out = []
    for _i, doc in store.list("endpoint"):
        if doc["network_id"] in nets:
            out.append((SimpleNamespace(**doc), nets[doc["network_id"]]))
    return out


def publish(gs: Any, ctx: Any, ep: Any, vtep: str, lease: int) -> None:
    """Put the endpoint's address claim and record on `lease` (idempotent)."""
    from minidock.cluster import etcd as E
    k = gs.keys
    key = k.ip(ep.network_id, ep.ip)
    ok, _r = gs.etcd.txn([E.cmp_value(key, ep.id)], [E.op_put(key, ep.id, lease)])
    if not ok:
        gs.etcd.txn([E.cmp_absent(key)], [E.op_put(key, ep.id, lease)])
    from minidock.cluster.gstore import put_endpoint
    put_endpoint(gs, ep.network_id, ep.id, endpoint_record(ctx, ep, vtep), lease)


def mirror_dns(store: Any, eps: dict[tuple[str, str], dict[str, Any]], vtep: str,
               nets: set[str]) -> None:
    """This host's DNS tables hold exactly the other hosts' endpoints on `nets`."""
    from minidock.net.dns import dnsrecords
    local = {cid for cid, _d in store.list("container")}
    want = {(nid, r["container_id"]): r for (nid, _e), r in eps.items()
            if nid in nets and r["vtep"] != vtep and r["container_id"] not in local}
    db = dnsrecords._db(store)
    have = {(n, c): ip for n, c, ip in
            db.execute("SELECT network_id, container_id, ip FROM dns_endpoints")
            if c not in local}
    for nid, cid in set(have) - set(want):
        dnsrecords.remove_endpoint(store, nid, cid)
    for (nid, cid), r in want.items():
        if have.get((nid, cid)) != r["ip"]:
            dnsrecords.set_endpoint(store, nid, cid, r["ip"], r["names"])
