"""The network controller (libnetwork.New + the daemon's initNetworkController):
the networks themselves — initialise, create, remove, list, inspect, prune.

Initialisation, as the article orders it: the controller, the predefined `none` (null)
and `host` (host) networks, then the default `bridge` network unless the daemon option
`bridge` is "none". It is lazy and cheap: the first network command or `run` of a boot
does it, and writes a marker `<exec-root>/network-init` (net/boot.py) holding the daemon options it
applied; later calls read that one small file and stop. When the options change, the
next call re-applies them, unless containers still use the default bridge (then the
old setup stays and the marker is not rewritten, so the change applies once they are
gone). A file lock serialises concurrent first calls.

The default bridge keeps the IPv4 address of an existing bridge of its name (as
docker0 does); otherwise `bip`, or the first predefined pool overlapping no host route
and no nameserver. User networks take `--subnet`, or pools round-robin after the last
one handed out (the position is kept in the store, kind "netmeta").
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

from minidock import ids
from minidock.errors import Conflict, Forbidden, InvalidArgument
from minidock.net import boot
from minidock.net.files import _read
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.driver import get_driver
from minidock.pipeline import Pipeline

@contextmanager
def _init_lock(ctx: Any) -> Iterator[None]:
    import fcntl
    os.makedirs(ctx.exec_root, exist_ok=True)
    fd = os.open(os.path.join(ctx.exec_root, "network.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_initialized(ctx: Any) -> None:
    """Initialise networking for this boot if not done yet (idempotent, cheap when done)."""
    from minidock.net import fwcheck
    want = boot.fingerprint(ctx.config)
    if ctx.config.cluster_store:    # a killed overlay agent is restarted (it re-syncs)
        from minidock.net.drivers.overlay import agent
        agent.ensure(ctx)
    if boot.read_marker(ctx) == want:
        fwcheck.check(ctx)
        return
    with _init_lock(ctx):
        if boot.read_marker(ctx) == want:
            return
        if _initialize(ctx):
            boot.write_marker(ctx, want)
            fwcheck.check(ctx)




def _initialize(ctx: Any) -> bool:
    """Predefined networks, driver init, default bridge, then every user bridge
    (after a reboot the kernel objects are gone). False if a change must wait."""
    store, cfg = ctx.store, ctx.config
    for name, driver in (("none", "null"), ("host", "host")):
        if store.get_by_name("network", name) is None:
            net = nw.Net(id=ids.new_id(), name=name, driver=driver)
            store.put("network", net.id, nw.new_doc(net, []), name=name)
    with Pipeline("network_init") as p:
        get_driver("bridge").init_driver(ctx, p)
        applied = True
        if cfg.default_bridge_enabled:
            applied = _ensure_default_bridge(ctx, p)
        elif (hit := store.get_by_name("network", "bridge")) is not None:
            if not eps.of_network(store, hit[0]):
                _delete_network(ctx, hit[0], hit[1])
        for nid, doc in store.list("network"):
            if doc["Driver"] == "bridge" and not doc["_net"].get("default"):
                net = nw.from_doc(doc)
                doc["_net"]["rules"] = _rules_data(get_driver("bridge").create_network(ctx, net, p))
                store.put("network", nid, doc, name=net.name)
        p.commit()
    return applied


def _rules_data(rules: list[Any]) -> list[Any]:
    from minidock.net.iptables import to_data
    return to_data(rules)


def _ensure_default_bridge(ctx: Any, p: Pipeline) -> bool:
    store, cfg = ctx.store, ctx.config
    hit = store.get_by_name("network", "bridge")
    if hit is not None and eps.of_network(store, hit[0]):
        old = nw.from_doc(hit[1])
        if _default_bridge_unchanged(cfg, old):
            get_driver("bridge").create_network(ctx, old, p)
            return True
        import sys
        print("minidock: warning: daemon network options changed; they apply once no "
              "container uses the default bridge", file=sys.stderr)
        return False
    net, ipam_cfg = _default_bridge_net(ctx, hit[0] if hit else ids.new_id(),
                                        nw.from_doc(hit[1]) if hit else None)
    if hit is not None and hit[1]["_net"].get("rules") and _changed(hit[1], net):
        from minidock.net.iptables import from_data, remove
        if cfg.iptables:
            remove(from_data(hit[1]["_net"]["rules"]))
        if hit[1]["_net"]["bridge"] != net.bridge and not cfg.bridge:
            from minidock.net.drivers.bridge import nl_del_link
            nl_del_link(hit[1]["_net"]["bridge"])
    doc = nw.new_doc(net, ipam_cfg)
    if hit is not None:
        doc["Created"] = hit[1]["Created"]
    doc["_net"]["rules"] = _rules_data(get_driver("bridge").create_network(ctx, net, p))
    store.put("network", net.id, doc, name="bridge")
    return True


def _changed(doc: dict[str, Any], net: nw.Net) -> bool:
    return nw.from_doc(doc) != net


def _default_bridge_unchanged(cfg: Any, net: nw.Net) -> bool:
    return (net.bridge == cfg.bridge_name and net.icc == cfg.icc and net.mtu == (cfg.mtu or 1500)
            and net.masquerade == cfg.masquerade and net.host_ip == cfg.ip
            and (not cfg.bip or _bip_matches(cfg.bip, net)))


def _bip_matches(bip: str, net: nw.Net) -> bool:
    from minidock.net import ipam
    pool = ipam.pool_from_bip(bip)
    return str(pool.subnet) == net.subnet and str(pool.gateway) == net.gateway


def _default_bridge_net(ctx: Any, nid: str, old: nw.Net | None) -> tuple[nw.Net, list[Any]]:
    """The default bridge's Net: its pool from bip, the existing bridge, or the pools."""
    from minidock.net import ipam
    cfg = ctx.config
    name = cfg.bridge_name
    existing = _bridge_address(name)
    if cfg.bridge and cfg.bridge != "minidock0" and existing is None and not _link_exists(name):
        raise InvalidArgument(f"bridge device with non default name {name} must be created manually")
    if cfg.bip:
        pool = ipam.pool_from_bip(cfg.bip, cfg.fixed_cidr)
    elif existing is not None:
        pool = ipam.pool_from_bip(existing, cfg.fixed_cidr)
    else:
        subnet = ipam.pick_pool(ipam.default_pools(cfg.default_address_pools),
                                _subnets_in_use(ctx.store, exclude=nid), _host_routes(),
                                _nameservers())
        pool = ipam.pool_from_bip(f"{subnet.network_address + 1}/{subnet.prefixlen}",
                                  cfg.fixed_cidr)
    mtu = cfg.mtu or 1500
    opts = {nw.OPT_DEFAULT: "true", nw.OPT_ICC: _b(cfg.icc), nw.OPT_MASQ: _b(cfg.ip_masq),
            nw.OPT_HOST_IP: cfg.ip, nw.OPT_BRIDGE_NAME: name, nw.OPT_MTU: str(mtu)}
    net = nw.Net(id=nid, name="bridge", driver="bridge", subnet=str(pool.subnet),
                 gateway=str(pool.gateway), ip_range=str(pool.ip_range or ""),
                 bridge=name, mtu=mtu, icc=cfg.icc, masquerade=cfg.masquerade,
                 host_ip=cfg.ip, default=True, options=opts)
    ipam_cfg: dict[str, str] = {"Subnet": str(pool.subnet)}
    if pool.ip_range:
        ipam_cfg["IPRange"] = str(pool.ip_range)
    return net, [ipam_cfg]


def _b(value: bool) -> str:
    return "true" if value else "false"


def _bridge_address(name: str) -> str | None:
    from minidock.net.netlink import Netlink
    with Netlink() as nl:
        link = nl.link_get(name)
        if link is None:
            return None
        addrs = nl.addr_list(link.index)
    return f"{addrs[0].address}/{addrs[0].prefixlen}" if addrs else None


def _link_exists(name: str) -> bool:
    from minidock.net.netlink import Netlink
    with Netlink() as nl:
        return nl.link_get(name) is not None


def _host_routes() -> list[Any]:
    from ipaddress import IPv4Network
    from minidock.net.netlink import Netlink
    with Netlink() as nl:
        return [IPv4Network(r.dst, strict=False) for r in nl.route_list(table=0)
                if not r.dst.endswith("/0")]


def _nameservers() -> list[Any]:
    from ipaddress import ip_address
    out = []
    for line in _read("/etc/resolv.conf").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                out.append(ip_address(parts[1]))
            except ValueError:
                pass
    return out


def _subnets_in_use(store: Any, exclude: str = "") -> list[Any]:
    from ipaddress import IPv4Network
    return [IPv4Network(d["_net"]["subnet"]) for i, d in store.list("network")
            if i != exclude and d.get("_net", {}).get("subnet")]


# -- user networks -----------------------------------------------------------------
def create_network(ctx: Any, name: str, driver: str = "bridge", subnet: str = "",
                   gateway: str = "", ip_range: str = "", internal: bool = False,
                   options: dict[str, str] | None = None,
                   labels: dict[str, str] | None = None) -> str:
    """`network create`: validate everything, then record and build; returns the id.

    The checks (name, subnet overlap, pool pick) and the insert are one transaction,
    so parallel creates cannot both win. The record carries `_Starter` until its last
    write: a create whose CLI died is removed by the next one that conflicts with it.
    """
    from minidock import reconcile
    ensure_initialized(ctx)
    if driver == "overlay":
        from minidock.net import globalnet
        return globalnet.create_network(ctx, name, driver, subnet, gateway, ip_range,
                                        internal, options or {}, labels)
    store = ctx.store
    args = (ctx, name, driver, subnet, gateway, ip_range, internal, options or {}, labels)
    with reconcile.busy(ctx), Pipeline("network_create") as p:
        try:
            net, doc = p.step("store_network", _plan_and_store, *args)
        except (Conflict, InvalidArgument):
            if not reconcile.reap_networks(ctx):
                raise
            net, doc = p.step("store_network", _plan_and_store, *args)
        p.undo("store_network", store.delete, "network", net.id)
        rules = get_driver(driver).create_network(ctx, net, p)
        doc["_net"]["rules"] = _rules_data(rules)
        doc.pop("_Starter", None)
        with store.transaction():
            store.put("network", net.id, doc, name=name)
            if not subnet:
                store.put("netmeta", "last_pool", {"subnet": net.subnet}, name="last_pool")
        p.commit()
    return net.id


def _plan_and_store(ctx: Any, name: str, driver: str, subnet: str, gateway: str,
                    ip_range: str, internal: bool, options: dict[str, str],
                    labels: dict[str, str] | None) -> tuple[nw.Net, dict[str, Any]]:
    from minidock import reconcile
    store = ctx.store
    with store.transaction():
        net, ipam_cfg = _plan_network(ctx, name, driver, subnet, gateway, ip_range, internal,
                                      options)
        doc = nw.new_doc(net, ipam_cfg, labels)
        doc["_Starter"] = reconcile.starter_mark()
        store.put("network", net.id, doc, name)
    return net, doc


def _plan_network(ctx: Any, name: str, driver: str, subnet: str, gateway: str,
                  ip_range: str, internal: bool, options: dict[str, str]
                  ) -> tuple[nw.Net, list[dict[str, str]]]:
    """Every check of `network create`, before any side effect (pure but for reads)."""
    from ipaddress import IPv4Network
    from minidock.net import ipam
    store = ctx.store
    if name in nw.PREDEFINED:
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    if store.get_by_name("network", name) is not None:
        raise Conflict(f"network with name {name} already exists")
    drv = get_driver(driver)
    if not drv.creatable:
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if (gateway or ip_range) and not subnet:
        raise InvalidArgument("cannot specify gateway or ip-range without subnet")
    nid = ids.new_id()
    in_use = _subnets_in_use(store)
    if subnet:
        pool = ipam.make_pool(subnet, gateway or None, ip_range or None)
        for other in in_use:
            if pool.subnet.overlaps(other):
                raise Conflict(f"Pool overlaps with other one on this address space: {subnet}")
        ipam_cfg = {"Subnet": subnet}
        if ip_range:
            ipam_cfg["IPRange"] = ip_range
        if gateway:
            ipam_cfg["Gateway"] = gateway
    else:
        last = store.get("netmeta", "last_pool")
        picked = ipam.pick_pool(ipam.default_pools(ctx.config.default_address_pools), in_use,
                                _host_routes(), _nameservers(),
                                start_after=IPv4Network(last["subnet"]) if last else None)
        pool = ipam.make_pool(str(picked))
        ipam_cfg = {"Subnet": str(pool.subnet), "Gateway": str(pool.gateway)}
    mtu = _int_opt(options, nw.OPT_MTU, 1500)
    bridge = options.get(nw.OPT_BRIDGE_NAME) or f"br-{nid[:12]}"
    if len(bridge) > 15:
        raise InvalidArgument(f"invalid bridge name {bridge}: longer than 15 characters")
    net = nw.Net(id=nid, name=name, driver=driver, subnet=str(pool.subnet),
                 gateway=str(pool.gateway), ip_range=str(pool.ip_range or ""),
                 user_subnet=bool(subnet), bridge=bridge, internal=internal, mtu=mtu,
                 icc=_bool_opt(options, nw.OPT_ICC), masquerade=_bool_opt(options, nw.OPT_MASQ),
                 host_ip=options.get(nw.OPT_HOST_IP, ctx.config.ip), options=dict(options))
    return net, [ipam_cfg]


def _int_opt(options: dict[str, str], key: str, default: int) -> int:
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError as err:
        raise InvalidArgument(f"invalid value for {key}: {options[key]}") from err
    if value and not 68 <= value <= 65535:
        raise InvalidArgument(f"invalid MTU number: {value}")
    return value or default


def _bool_opt(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "true").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid value for {key}: {options[key]}")
    return value in ("true", "1")


def remove_network(ctx: Any, ref: str) -> str:
    """`network rm`: refused for predefined networks and while endpoints exist
    (endpoints whose container is gone or not running are released first)."""
    ensure_initialized(ctx)
    nid, doc = nw.lookup_ctx(ctx, ref)
    if doc["Name"] in nw.PREDEFINED:
        raise Forbidden(f"{doc['Name']} is a pre-defined network and cannot be removed")
    if eps.of_network(ctx.store, nid) and _release_stale(ctx, nid):
        raise Forbidden(f"error while removing network: network {doc['Name']} id {nid} "
                        "has active endpoints")
    if doc.get("Scope") == "global":
        from minidock.net import globalnet
        globalnet.remove_network(ctx, doc)
    delete_network(ctx, nid, doc)
    return doc["Name"]


def _release_stale(ctx: Any, nid: str) -> bool:
    """Release the network's endpoints that no live container holds; True if any
    legitimate endpoint remains."""
    from minidock import reconcile
    from minidock.net import attach
    left = False
    for ep in eps.of_network(ctx.store, nid):
        if reconcile.endpoint_legit(ep, ctx.store.get("container", ep.container_id)):
            left = True
        else:
            attach.release_endpoint(ctx, ep, leave=True)
    return left


def delete_network(ctx: Any, nid: str, doc: dict[str, Any]) -> None:
    """Tear down one network and forget it (idempotent: also a half-built one, whose
    record has no rules yet: its planned rules are removed where present)."""
    from minidock.net.iptables import from_data
    from minidock.pipeline import best_effort
    net = nw.from_doc(doc)
    rules = from_data(doc["_net"].get("rules") or []) or _planned_rules(ctx, net)
    store = ctx.store

    def claims() -> None:
        with store.transaction():
            for key in store.claimed(f"ip:{nid}"):
                store.release(f"ip:{nid}", key)
    best_effort([("delete_bridge", lambda: get_driver(net.driver).delete_network(ctx, net, rules)),
                 ("release_addresses", claims)], "network_rm")
    store.delete("network", nid)


_delete_network = delete_network


def _planned_rules(ctx: Any, net: nw.Net) -> list[Any]:
    """The rules a bridge network's create would have added (pure)."""
    from ipaddress import IPv4Network
    from minidock.net import rules
    cfg = ctx.config
    if net.driver != "bridge" or not cfg.iptables or not net.subnet:
        return []
    subnet = IPv4Network(net.subnet)
    return rules.network_rules(net.bridge, subnet, icc=net.icc,
                               masquerade=net.masquerade and cfg.masquerade,
                               internal=net.internal, userland_proxy=cfg.userland_proxy) + \
        rules.isolation_rules(net.bridge, subnet, net.internal)


def prune_networks(ctx: Any) -> list[str]:
    """`network prune`: remove every user network without endpoints; their names."""
    ensure_initialized(ctx)
    removed = []
    from minidock.reconcile import mark_alive
    for nid, doc in sorted(ctx.store.list("network"), key=lambda x: x[1]["Name"]):
        if doc["Name"] in nw.PREDEFINED or mark_alive(doc.get("_Starter")):
            continue
        if doc.get("Scope") == "global":
            continue    # other hosts may be about to use it: `network rm` removes it
        if eps.of_network(ctx.store, nid) and _release_stale(ctx, nid):
            continue
        _delete_network(ctx, nid, doc)
        removed.append(doc["Name"])
    return removed


def _sync_global(ctx: Any) -> None:
    """Refresh the copies of global networks; an unreachable store leaves them as last
    seen, with a warning (listing and inspecting still work on one host)."""
    if not ctx.config.cluster_store:
        return
    from minidock.cluster import gstore
    from minidock.cluster.etcd import StoreUnavailable
    try:
        gstore.sync_networks(ctx)
    except StoreUnavailable as err:
        import sys
        print(f"minidock: warning: {err}; global networks as last seen", file=sys.stderr)


def list_networks(ctx: Any) -> list[dict[str, Any]]:
    ensure_initialized(ctx)
    _sync_global(ctx)
    return sorted((d for _i, d in ctx.store.list("network")), key=lambda d: d["Name"])


def inspect_network(ctx: Any, ref: str) -> dict[str, Any]:
    """Docker's `network inspect` document, Containers from the live endpoints."""
    ensure_initialized(ctx)
    _sync_global(ctx)
    nid, doc = nw.lookup_ctx(ctx, ref)
    containers = {}
    for ep in sorted(eps.of_network(ctx.store, nid), key=lambda e: e.container_id):
        containers[ep.container_id] = {
            "Name": ep.name, "EndpointID": ep.id, "MacAddress": ep.mac,
            "IPv4Address": f"{ep.ip}/{ep.prefixlen}" if ep.ip else "", "IPv6Address": ""}
    return nw.public_doc(doc, containers)


def lookup_network(ctx: Any, ref: str) -> nw.Net:
    """A network by name, id or id prefix (Docker's `network <x> not found`)."""
    ensure_initialized(ctx)
    return nw.from_doc(nw.lookup_ctx(ctx, ref)[1])
