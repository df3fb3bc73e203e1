"""The network controller (libnetwork.New + the daemon's initNetworkController): the
networks of the CNM — initialise, create, remove, list, inspect, prune — through the
driver API only (driverapi.py): a network's pool and gateway come from its IPAM
driver, its kernel objects from its network driver, whose opaque state the record
keeps. No concrete driver is imported here.

Initialisation, as the article orders it: the controller, every registered driver's
`init`, the predefined `none` (null) and `host` (host) networks, then the default
`bridge` network unless the daemon option `bridge` is "none", then every other
network's `create_network` again (after a reboot the kernel objects are gone; the
drivers' create is idempotent). It is lazy and cheap: the first network command or
`run` of a boot does it, and writes a marker `<exec-root>/network-init` (boot.py)
holding the daemon options it applied; later calls read that one small file and
stop. When the options change, the next call re-applies them, unless containers still
use the default bridge (then the old setup stays and the marker is not rewritten, so
the change applies once they are gone). A file lock serialises concurrent first calls.

The default bridge keeps the IPv4 address of an existing bridge of its name (as
docker0 does); otherwise `bip`, or the first predefined pool overlapping no host route
and no nameserver. User networks take `--subnet`, or pools round-robin after the last
one handed out (the default IPAM driver, net/ipams/default.py).
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock import ids
from minidock.errors import Conflict, Forbidden, InvalidArgument
from minidock.locks import busy, file_lock
from minidock.net import boot
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net import pools
from minidock.net.driverapi import driver_names, get_driver, get_ipam
from minidock.pipeline import Pipeline

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.config import DaemonConfig

INIT_LOCK = "network.lock"


def ensure_initialized(ctx: Context) -> None:
    """Initialise networking for this boot if not done yet (idempotent, cheap when done)."""
    want = boot.fingerprint(ctx.config)
    if ctx.config.cluster_store:    # a killed overlay agent is restarted (it re-syncs)
        from minidock.cluster import agent
        agent.ensure(ctx)
    if boot.read_marker(ctx) == want:
        boot.check_firewall(ctx)
        return
    with _init_lock(ctx):
        if boot.read_marker(ctx) == want:
            return
        if _initialize(ctx):
            boot.write_marker(ctx, want)
            boot.check_firewall(ctx)


def reinitialize(ctx: Context) -> None:
    """Run the idempotent initialisation again (chains, driver rules, every network's
    objects in their places) and record it: the repair of a flushed firewall."""
    with _init_lock(ctx):
        _initialize(ctx)
        boot.write_marker(ctx, boot.fingerprint(ctx.config))


def _init_lock(ctx: Context) -> Any:
    import os
    return file_lock(os.path.join(ctx.exec_root, INIT_LOCK))


def _initialize(ctx: Context) -> bool:
    """Predefined networks, every driver's init, the default bridge, then every other
    network's objects (after a reboot the kernel's are gone). False if a change must
    wait."""
    store, cfg = ctx.store, ctx.config
    for name, driver in (("none", "null"), ("host", "host")):
        if store.get_by_name("network", name) is None:
            net = nw.Net(id=ids.new_id(), name=name, driver=driver)
            store.put("network", net.id, nw.new_doc(net, []), name=name)
    with Pipeline("network_init") as p:
        for name in driver_names():
            get_driver(name).init(ctx, p)
        applied = True
        if cfg.default_bridge_enabled:
            applied = _ensure_default_bridge(ctx, p)
        elif (hit := store.get_by_name("network", "bridge")) is not None:
            if not eps.of_network(store, hit[0]):
                delete_network(ctx, hit[0], hit[1])
        for nid, doc in store.list("network"):
            net = nw.from_doc(doc)
            if net.name not in nw.PREDEFINED:
                _create_in_driver(ctx, net, doc, p)
        p.commit()
    return applied


def _create_in_driver(ctx: Context, net: nw.Net, doc: dict[str, Any], p: Pipeline) -> None:
    """The driver's create_network; its state recorded with the network."""
    info = net.info()
    get_driver(net.driver).create_network(ctx, info, p)
    doc["_net"]["state"] = info.state
    ctx.store.put("network", net.id, doc, name=net.name)


def _ensure_default_bridge(ctx: Context, p: Pipeline) -> bool:
    """The default `bridge` network from the daemon options (Docker's
    initBridgeDriver): kept while containers use it, re-planned otherwise."""
    store, cfg = ctx.store, ctx.config
    hit = store.get_by_name("network", "bridge")
    if hit is not None and eps.of_network(store, hit[0]):
        old = nw.from_doc(hit[1])
        if _default_bridge_unchanged(cfg, old):
            _create_in_driver(ctx, old, hit[1], p)
            return True
        import sys
        print("minidock: warning: daemon network options changed; they apply once no "
              "container uses the default bridge", file=sys.stderr)
        return False
    with store.transaction():
        old = nw.from_doc(hit[1]) if hit else None
        if old is not None and old.pool_id:
            get_ipam(old.ipam_driver).release_pool(ctx, old.pool_id)
        net, ipam_cfg = _default_bridge_net(ctx, hit[0] if hit else ids.new_id(), old)
        doc = nw.new_doc(net, ipam_cfg)
        if hit is not None:
            doc["Created"] = hit[1]["Created"]
        store.put("network", net.id, doc, name="bridge")
    _create_in_driver(ctx, net, doc, p)
    return True


def _default_bridge_options(cfg: DaemonConfig) -> dict[str, str]:
    """The default bridge's driver options (Docker's, from the daemon options)."""
    return {nw.OPT_DEFAULT: "true", nw.OPT_ICC: _b(cfg.icc), nw.OPT_MASQ: _b(cfg.ip_masq),
            nw.OPT_HOST_IP: cfg.ip, nw.OPT_BRIDGE_NAME: cfg.bridge_name,
            nw.OPT_MTU: str(cfg.mtu or 1500)}


def _default_bridge_unchanged(cfg: DaemonConfig, net: nw.Net) -> bool:
    return net.options == _default_bridge_options(cfg) and net.host_ip == cfg.ip and \
        (not cfg.bip or _bip_matches(cfg.bip, net)) and \
        net.enable_ipv6 == cfg.ipv6 and net.default_gw == cfg.default_gateway and \
        net.default_gw6 == cfg.default_gateway_v6 and \
        (not cfg.ipv6 or net.subnet6 == _fixed6(cfg))


def _fixed6(cfg: DaemonConfig) -> str:
    from minidock.net import ipam6
    return str(ipam6.parse_cidr6(cfg.fixed_cidr_v6)) if cfg.fixed_cidr_v6 else ""


def _subnets6_in_use(store: Any) -> list[Any]:
    from ipaddress import IPv6Network
    return [IPv6Network(d["_net"]["subnet6"]) for _i, d in store.list("network")
            if d.get("_net", {}).get("subnet6")]


def _bip_matches(bip: str, net: nw.Net) -> bool:
    from minidock.net import ipam
    pool = ipam.pool_from_bip(bip)
    return str(pool.subnet) == net.subnet and str(pool.gateway) == net.gateway


def _default_bridge_net(ctx: Context, nid: str, old: nw.Net | None
                        ) -> tuple[nw.Net, list[dict[str, str]]]:
    """The default bridge's Net: its pool from bip, the existing bridge, or the
    predefined pools (through the IPAM driver, inside the caller's transaction);
    IPv6 from fixed-cidr-v6 (gateway: its first address) when `ipv6` is on."""
    from minidock.net import ipam, ipam6
    from minidock.net.driverapi import GATEWAY, OPT_FROM_START, REQUEST_ADDRESS_TYPE
    from minidock.net.kernel import hostinfo
    cfg = ctx.config
    name = cfg.bridge_name
    existing = hostinfo.link_address(name)
    if cfg.bridge and cfg.bridge != "minidock0" and existing is None and \
            not hostinfo.link_exists(name):
        raise InvalidArgument(f"unable to configure minidock with file {ctx.daemon_json}: key "
                              f'"bridge": bridge device with non default name {name} must be '
                              "created manually")
    allocator = get_ipam("default")
    space = allocator.get_default_address_spaces(ctx)[0]
    bip = cfg.bip or existing
    if bip:
        pool = ipam.pool_from_bip(bip, cfg.fixed_cidr)
        pool_id, _cidr, _data = allocator.request_pool(
            ctx, space, str(pool.subnet), str(pool.ip_range or ""))
        gateway = str(pool.gateway)
    else:
        pool_id, cidr, _data = allocator.request_pool(ctx, space, "", cfg.fixed_cidr,
                                                      {OPT_FROM_START: "1"})
        pool = ipam.pool_from_bip(f"{ipam.make_pool(cidr).gateway}/{cidr.split('/')[1]}",
                                  cfg.fixed_cidr)
        gateway = str(pool.gateway)
    allocator.request_address(ctx, pool_id, nid, gateway, {REQUEST_ADDRESS_TYPE: GATEWAY})
    if cfg.default_gateway:
        ipam6.check_default_gateway(pool.subnet, pool.gateway, cfg.default_gateway, 4)
    subnet6 = _fixed6(cfg) if cfg.ipv6 else ""
    gateway6 = str(ipam6.parse_cidr6(subnet6).network_address + 1) if subnet6 else ""
    net = nw.Net(id=nid, name="bridge", driver="bridge", subnet=str(pool.subnet),
                 gateway=gateway, ip_range=str(pool.ip_range or ""), host_ip=cfg.ip,
                 default=True, options=_default_bridge_options(cfg), pool_id=pool_id,
                 state=old.state if old is not None else {}, enable_ipv6=bool(subnet6),
                 subnet6=subnet6, gateway6=gateway6, default_gw=cfg.default_gateway,
                 default_gw6=cfg.default_gateway_v6 if subnet6 else "")
    ipam_cfg: dict[str, Any] = {"Subnet": str(pool.subnet)}
    if pool.ip_range:
        ipam_cfg["IPRange"] = str(pool.ip_range)
    if cfg.default_gateway:
        ipam_cfg["AuxiliaryAddresses"] = {"DefaultGatewayIPv4": cfg.default_gateway}
    configs = [ipam_cfg]
    if subnet6:
        configs.append({"Subnet": subnet6})
        if net.default_gw6:
            configs[-1]["AuxiliaryAddresses"] = {"DefaultGatewayIPv6": net.default_gw6}
    return net, configs


def _b(value: bool) -> str:
    return "true" if value else "false"


# -- user networks -----------------------------------------------------------------
def create_network(ctx: Context, name: str, driver: str = "bridge", subnet: str = "",
                   gateway: str = "", ip_range: str = "", internal: bool = False,
                   options: dict[str, str] | None = None,
                   labels: dict[str, str] | None = None, ipam_driver: str = "default",
                   ipam_options: dict[str, str] | None = None,
                   aux_addresses: dict[str, str] | None = None, ipv6: bool = False,
                   subnet6: str = "", gateway6: str = "", ip_range6: str = "") -> str:
    """`network create`: validate, then record with its pool (one transaction), then
    the driver's create_network; returns the id.

    The checks (name, pool overlap or pick) and the insert are one transaction, so
    parallel creates cannot both win. The record carries `_Starter` until its last
    write: a create whose CLI died is removed by the next one that conflicts with it.
    Docker's order of driver calls: the network driver is resolved (a plugin is
    activated and asked its capabilities), then the IPAM driver gives the pool, the
    gateway and the aux addresses, then the network driver creates the network.
    """
    ensure_initialized(ctx)
    if get_driver(driver).capability.data_scope == "global":   # the cluster store
        from minidock.net import globalnet
        return globalnet.create_network(ctx, name, driver, subnet, gateway, ip_range,
                                        internal, options or {}, labels)
    ipam_req = pools.IpamRequest(subnet, gateway, ip_range, dict(ipam_options or {}),
                           dict(aux_addresses or {}))
    args = (ctx, name, driver, internal, options or {}, labels, ipam_driver, ipam_req,
            (ipv6, subnet6, gateway6, ip_range6))
    with busy(ctx), Pipeline("network_create") as p:
        try:
            net, doc = p.step("store_network", _plan_and_store, *args)
        except (Conflict, InvalidArgument):
            if not reap_networks(ctx):
                raise
            net, doc = p.step("store_network", _plan_and_store, *args)
        p.undo("store_network", _forget_network, ctx, net)
        info = net.info()
        get_driver(driver).create_network(ctx, info, p)
        doc["_net"]["state"] = info.state
        doc.pop("_Starter", None)
        ctx.store.put("network", net.id, doc, name=name)
        p.commit()
    return net.id


def _forget_network(ctx: Context, net: nw.Net) -> None:
    """Undo of store_network: the addresses and pool back to the IPAM driver, the
    record gone."""
    with ctx.store.transaction():
        pools.release(ctx, net)
        ctx.store.delete("network", net.id)


def _plan_and_store(ctx: Context, name: str, driver: str, internal: bool,
                    options: dict[str, str], labels: dict[str, str] | None,
                    ipam_driver: str, req: pools.IpamRequest,
                    v6: tuple[bool, str, str, str]) -> tuple[nw.Net, dict[str, Any]]:
    from minidock.identity import starter_mark
    from minidock.net import ipam6
    store = ctx.store
    with store.transaction():
        net, ipam_cfg = _plan_network(ctx, name, driver, internal, options, ipam_driver, req)
        try:
            net, ipam_cfg = ipam6.plan_network6(net, ipam_cfg, _subnets6_in_use(store), *v6)
            doc = nw.new_doc(net, ipam_cfg, labels)
            doc["_Starter"] = starter_mark()
            store.put("network", net.id, doc, name)
        except BaseException:
            pools.release(ctx, net)
            raise
    return net, doc


def _plan_network(ctx: Context, name: str, driver: str, internal: bool,
                  options: dict[str, str], ipam_driver: str, req: pools.IpamRequest
                  ) -> tuple[nw.Net, list[dict[str, Any]]]:
    """Every check of `network create`, then the pool and gateway from the IPAM
    driver (inside the caller's transaction)."""
    store = ctx.store
    if name in nw.PREDEFINED:
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    if store.get_by_name("network", name) is not None:
        raise Conflict(f"network with name {name} already exists")
    drv = get_driver(driver)
    if not drv.capability.creatable:
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if (req.gateway or req.ip_range) and not req.subnet:
        raise InvalidArgument("cannot specify gateway or ip-range without subnet")
    if req.aux and not req.subnet:
        raise InvalidArgument(f"no matching subnet for aux-address {next(iter(req.aux.values()))}")
    nid = ids.new_id()
    got = pools.Pooled()
    if drv.capability.needs_addresses:
        got = pools.allocate(ctx, ipam_driver, nid, req)
    net = nw.Net(id=nid, name=name, driver=driver, subnet=got.pool, gateway=got.gateway,
                 ip_range=got.ip_range, user_subnet=bool(req.subnet), internal=internal,
                 host_ip=options.get(nw.OPT_HOST_IP, ctx.config.ip), options=dict(options),
                 pool_id=got.pool_id, ipam_driver=ipam_driver, address_space=got.space,
                 aux_addresses=got.aux, ipam_options=dict(req.options))
    return net, got.config


def remove_network(ctx: Context, ref: str) -> str:
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
    if delete_network(ctx, nid, doc):
        from minidock.errors import Internal
        raise Internal(f"network {doc['Name']} removed, but its teardown was incomplete")
    return doc["Name"]


def _release_stale(ctx: Context, nid: str) -> bool:
    """Release the network's endpoints that no live container holds; True if any
    legitimate endpoint remains."""
    from minidock.net import attach
    left = False
    for ep in eps.of_network(ctx.store, nid):
        if eps.legit(ep, ctx.store.get("container", ep.container_id)):
            left = True
        else:
            attach.release_endpoint(ctx, ep, leave=True)
    return left


def delete_network(ctx: Context, nid: str, doc: dict[str, Any]) -> list[str]:
    """Tear down one network and forget it (idempotent: also a half-built one, whose
    driver state is partial: the driver removes what it would have made). The
    teardown errors, reported on stderr, are returned."""
    from minidock.pipeline import best_effort, report
    net = nw.from_doc(doc)

    def release_pool() -> None:
        pools.release(ctx, net)
        ctx.store.release_space(f"ip6:{nid}")
    errors = best_effort([("release_pool", release_pool),
                          ("delete_network",
                           lambda: get_driver(net.driver).delete_network(ctx, net.info()))],
                         "network_rm")
    ctx.store.delete("network", nid)
    return report(errors, "network rm")


def reap_networks(ctx: Context) -> bool:
    """Remove networks whose `network create` died half-way; True if any was."""
    from minidock.identity import mark_alive
    found = False
    for nid, doc in ctx.store.list("network"):
        mark = doc.get("_Starter")
        if mark and not mark_alive(mark):
            # read before the liveness check: its creator may have finished (and
            # exited) in between; a dead creator writes no more, so read again
            doc = ctx.store.get("network", nid)
            if doc is None or doc.get("_Starter") != mark:
                continue
            delete_network(ctx, nid, doc)
            found = True
    return found


def prune_networks(ctx: Context) -> list[str]:
    """`network prune`: remove every user network without endpoints; their names."""
    ensure_initialized(ctx)
    removed = []
    from minidock.identity import mark_alive
    for nid, doc in sorted(ctx.store.list("network"), key=lambda x: x[1]["Name"]):
        if doc["Name"] in nw.PREDEFINED or mark_alive(doc.get("_Starter")):
            continue
        if doc.get("Scope") == "global":
            continue    # other hosts may be about to use it: `network rm` removes it
        if eps.of_network(ctx.store, nid) and _release_stale(ctx, nid):
            continue
        delete_network(ctx, nid, doc)
        removed.append(doc["Name"])
    return removed


def _sync_global(ctx: Context) -> None:
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


def list_networks(ctx: Context, brief: bool = False) -> list[dict[str, Any]]:
    """Every network by name; with `brief`, the store's projections (Id, Name, Driver,
    Scope) instead of whole documents: `network ls` decodes no document."""
    ensure_initialized(ctx)
    _sync_global(ctx)
    docs = ctx.store.briefs("network") if brief else (d for _i, d in ctx.store.list("network"))
    return sorted(docs, key=lambda d: d["Name"])


def inspect_network(ctx: Context, ref: str) -> dict[str, Any]:
    """Docker's `network inspect` document, Containers from the live endpoints."""
    ensure_initialized(ctx)
    _sync_global(ctx)
    nid, doc = nw.lookup_ctx(ctx, ref)
    containers = {}
    for ep in sorted(eps.of_network(ctx.store, nid), key=lambda e: e.container_id):
        containers[ep.container_id] = {
            "Name": ep.name, "EndpointID": ep.id, "MacAddress": ep.mac,
            "IPv4Address": f"{ep.ip}/{ep.prefixlen}" if ep.ip else "",
            "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else ""}
    return nw.public_doc(doc, containers)


def lookup_network(ctx: Context, ref: str) -> nw.Net:
    """A network by name, id or id prefix (Docker's `network <x> not found`)."""
    ensure_initialized(ctx)
    return nw.from_doc(nw.lookup_ctx(ctx, ref)[1])
