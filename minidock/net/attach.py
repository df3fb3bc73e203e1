"""A container's endpoints: allocate them, join them into its sandbox, release them
(the article's allocateNetwork / connectToNetwork / sbJoin / sbLeave, daemonless).

    allocate_endpoint   record + address claim (+ host port claims on the gateway
                        endpoint), before the container's process exists
    join_endpoint       in the prestart hook: the driver's join, the sandbox configures
                        the interface it answers (JoinInfo), then external connectivity
                        (published ports) on the gateway endpoint
    release_endpoint    revoke connectivity, give back ports and address, drop the record
                        (best-effort, idempotent: works when the netns or veth is gone);
                        delete_endpoints once the sandbox is gone

Drivers and IPAM drivers are reached only through net/driverapi.py.

Every step registers its undo in the caller's Pipeline.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock import ids
from minidock.identity import mark_alive, starter_mark
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.driverapi import get_driver, get_ipam

if TYPE_CHECKING:
    from minidock.context import Context, Container
    from minidock.pipeline import Pipeline


def container_name(ctr: "Container") -> str:
    return ctr["Name"].lstrip("/")


def gateway_network(nets: list[nw.Net]) -> nw.Net | None:
    """The network that gives the sandbox its default route and published ports:
    one whose driver has external connectivity; Docker's pick among them: not
    internal first, then with a gateway, then by name."""
    cands = [n for n in nets if get_driver(n.driver).capability.external_connectivity]
    if not cands:
        return None
    return sorted(cands, key=lambda n: (n.internal, not n.gateway, n.name))[0]


def allocate_endpoint(ctx: Context, ctr: Container, net: nw.Net, ifname: str,
                      wish: dict[str, Any], with_ports: bool, p: Pipeline) -> eps.Endpoint:
    """Create the endpoint of `ctr` on `net`: its address from the network's IPAM
    driver, its record, the driver's create_endpoint (and host ports).

    The record is stored in the transaction that claims its address (and updated in
    the one that claims its ports), so every claim has an owner record at all times;
    the record names its starter (this CLI) and sandbox key for reconciliation.
    A conflict whose holder may be dead is checked and retried once.
    """
    from minidock.net.ports import portmap
    store = ctx.store
    ep_id = ids.new_id()
    requested = ((wish.get("IPAMConfig") or {}).get("IPv4Address") or "")
    ep = p.step("CreateEndpoint", _retry_stale,
                lambda: _reap_network(ctx, net.id, requested), _claim_address, ctx, ctr, net,
                ep_id, ifname, wish, requested, p)
    p.undo("CreateEndpoint", _drop_endpoint, ctx, net, ep)
    p.undo("driverCreateEndpoint", _delete_endpoint, ctx, net, ep)
    if with_ports:
        wanted = portmap.requested_bindings(ctr, net.host_ip)
        if wanted:
            label = f"{ep.name} ({ep.id})"
            spaces = sorted({f"port:{b.proto}" for b in wanted})
            ports = [str(b.host_port) for b in wanted if b.host_port] or None
            ep = p.step("allocatePorts", _retry_stale,
                        lambda: _reap_claims(ctx, spaces, ports), _claim_ports,
                        store, ep, net, wanted, label)
            p.undo("allocatePorts", portmap.release, store, ep_id)
    return ep


def _retry_stale(reap: Any, fn: Any, *args: Any) -> Any:
    """Run `fn`; on a conflict, `reap` releases what no live process or container
    owns any more, and `fn` is retried once if anything was."""
    from minidock.errors import Conflict, InvalidArgument
    try:
        return fn(*args)
    except (Conflict, InvalidArgument):
        if not reap():
            raise
    return fn(*args)


def _reap_network(ctx: Context, network_id: str, ip: str = "") -> bool:
    """Release the network's endpoints (holding `ip`, if given) that are not
    legitimate (endpoint.legit): whatever its IPAM driver, their addresses go back."""
    found = False
    for ep in eps.of_network(ctx.store, network_id):
        if ip and ep.ip != ip:
            continue
        if _stale(ctx, ep):
            release_endpoint(ctx, ep, leave=True)
            found = True
    return found


def _reap_claims(ctx: Context, spaces: list[str], keys: list[str] | None) -> bool:
    found = False
    for space in spaces:
        found = reap_claim_owners(ctx, space, keys) or found
    return found


def _stale(ctx: Context, ep: eps.Endpoint, again: bool = True) -> bool:
    ctr = ctx.store.get("container", ep.container_id)
    if ctr is not None and ctr.get("_Starter") and mark_alive(ctr["_Starter"]):
        return False
    if eps.legit(ep, ctr):
        return False
    if not again:
        return True
    # judged on records read before the liveness checks: a starter that finished and
    # exited in between left newer ones (it writes no more), so judge those
    doc = ctx.store.get("endpoint", ep.id)
    return doc is not None and _stale(ctx, eps.from_doc(doc), again=False)


def reap_claim_owners(ctx: Context, space: str, keys: list[str] | None = None) -> bool:
    """Release the endpoints holding claims in `space` (only `keys`, if given) that
    are not legitimate (endpoint.legit); True if any was."""
    store = ctx.store
    found = False
    for key, owner in store.claimed(space).items():
        if keys is not None and not any(key == k or key.endswith(":" + k) for k in keys):
            continue
        doc = store.get("endpoint", owner)
        if doc is None:
            continue                  # in flight (claim and record share a transaction)
        ep = eps.from_doc(doc)
        if _stale(ctx, ep):
            release_endpoint(ctx, ep, leave=True)
            found = True
    return found


def _claim_address(ctx: Context, ctr: Container, net: nw.Net, ep_id: str, ifname: str,
                   wish: dict[str, Any], requested: str, p: Pipeline) -> eps.Endpoint:
    """One transaction: the address, the record, the driver's create_endpoint (which
    may answer its own MAC or address: recorded as answered)."""
    store = ctx.store
    mac = ctr["Config"].get("MacAddress") if ifname == "eth0" else ""
    opts = None
    if get_ipam(net.ipam_driver).requires_mac_address:
        from minidock.net.driverapi import OPT_MAC_ADDRESS
        mac = mac or random_mac()
        opts = {OPT_MAC_ADDRESS: mac}
    with store.transaction():
        addr = _request_address(ctx, net, ep_id, requested, opts)
        try:
            return _record_endpoint(ctx, ctr, net, ep_id, ifname, wish, requested, mac,
                                    addr, p)
        except BaseException:       # a remote IPAM's address is not in our transaction
            from minidock.pipeline import best_effort
            best_effort([("ReleaseAddress", lambda: get_ipam(net.ipam_driver).release_address(
                ctx, net.pool_id, addr))])
            raise


def _record_endpoint(ctx: Context, ctr: Container, net: nw.Net, ep_id: str, ifname: str,
                     wish: dict[str, Any], requested: str, mac: str, addr: str,
                     p: Pipeline) -> eps.Endpoint:
    """The record with the address, then the driver's create_endpoint (which may
    answer its own MAC or address: recorded as answered)."""
    from minidock.net import ipam
    store = ctx.store
    ip, _, plen = addr.partition("/")
    mac = mac or ipam.mac_for(ip)
    requested6 = ((wish.get("IPAMConfig") or {}).get("IPv6Address") or "")
    ip6 = eps.allocate_address6(store, net, ep_id, mac, requested6)
    ep = eps.Endpoint(
        id=ep_id, network_id=net.id, container_id=ctr["Id"], name=container_name(ctr),
        ip=ip, prefixlen=int(plen), mac=mac,
        ip6=ip6, prefixlen6=int(net.subnet6.split("/")[1]) if ip6 else 0,
        gateway6=(net.default_gw6 or net.gateway6) if ip6 else "",
        gateway=net.default_gw or net.gateway, ifname=ifname,
        aliases=tuple(wish.get("Aliases") or ()),
        requested_ip=requested,
        extra={"starter": starter_mark(),
               "sandbox": (ctr.get("NetworkSettings") or {}).get("SandboxKey") or ""})
    eps.save(store, ep, net)
    info = ep.info()
    get_driver(net.driver).create_endpoint(ctx, net.info(), info, p)
    ep = _answered(ep, info)
    eps.save(store, ep, net)
    return ep


def random_mac() -> str:
    """libnetwork's GenerateRandomMAC: 02:42 and four random bytes (for an IPAM driver
    that requires the MAC before the address)."""
    import os
    return "02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4))


def _request_address(ctx: Context, net: nw.Net, owner: str, requested: str,
                     options: dict[str, str] | None = None) -> str:
    from minidock.errors import InvalidArgument, NoAddress
    try:
        return get_ipam(net.ipam_driver).request_address(ctx, net.pool_id, owner, requested,
                                                         options)
    except NoAddress:
        raise InvalidArgument("no available IPv4 addresses on this network's address "
                              f"pools: {net.name} ({net.id})") from None


def _answered(ep: eps.Endpoint, info: Any) -> eps.Endpoint:
    """The record with what the driver answered: its state, and its MAC or address."""
    ip, _, plen = info.address.partition("/")
    return ep.with_(state=info.state, mac=info.mac or ep.mac, ip=ip or ep.ip,
                    prefixlen=int(plen) if plen else ep.prefixlen)


def _claim_ports(store: Any, ep: eps.Endpoint, net: nw.Net, wanted: list[Any],
                 label: str) -> eps.Endpoint:
    from minidock.net.ports import portmap
    with store.transaction():
        bound = portmap.allocate(store, ep.id, wanted, label)
        ep = ep.with_(ports=tuple(bound))
        eps.save(store, ep, net)
    return ep


def _drop_endpoint(ctx: Context, net: nw.Net, ep: eps.Endpoint) -> None:
    """Undo of allocate_address: the address, every claim the record owns, the record."""
    store = ctx.store
    with store.transaction():
        get_ipam(net.ipam_driver).release_address(ctx, net.pool_id, ep.ip)
        store.release_owner(ep.id)
        store.delete("endpoint", ep.id)


def _delete_endpoint(ctx: Context, net: nw.Net, ep: eps.Endpoint) -> None:
    get_driver(net.driver).delete_endpoint(ctx, net.info(), ep.info())


def join_endpoint(ctx: Context, net: nw.Net, ep: eps.Endpoint, pl: Any, gateway: bool,
                  p: Pipeline) -> eps.Endpoint:
    """The driver joins the endpoint into the sandbox and the sandbox configures the
    interface it answered; the gateway endpoint also gets external connectivity
    (published ports). What the driver wrote in its state, and the interface's name
    when the driver's DstPrefix chose it, are recorded."""
    from minidock.net.driverapi import SandboxInfo
    drv = get_driver(net.driver)
    nwi, info = net.info(), ep.info()
    p.step("Join", _join, ctx, drv, nwi, info, SandboxInfo(pl.key, pl.fd), pl, gateway, p)
    p.undo("Join", drv.leave, ctx, nwi, info)
    if gateway and not net.internal:      # libnetwork's sbJoin: never on an internal one
        p.step("ProgramExternalConnectivity", drv.program_external_connectivity,
               ctx, nwi, info, p)
        p.undo("ProgramExternalConnectivity", drv.revoke_external_connectivity,
               ctx, nwi, info)
    if info.state != ep.state or info.ifname != ep.ifname:
        ep = ep.with_(state=info.state, ifname=info.ifname)
        ctx.store.put("endpoint", ep.id, eps.to_doc(ep),
                      name=eps.record_name(ep.network_id, ep.name))
    _dns_set(ctx, net, ep)
    return ep


def _join(ctx: Context, drv: Any, nwi: Any, info: Any, sb: Any, pl: Any, gateway: bool,
          p: Pipeline) -> None:
    from minidock.net.sandbox import configure_interface
    ji = drv.join(ctx, nwi, info, sb, p)
    try:
        configure_interface(pl, info, ji, gateway and not ji.disable_gateway_service)
    except BaseException:
        drv.leave(ctx, nwi, info)
        raise


def release_endpoint(ctx: Context, ep: eps.Endpoint, leave: bool = False) -> list[str]:
    """Undo everything of one endpoint; errors are collected, not raised.

    With `leave`, the driver removes the interface and deletes the endpoint now (the
    sandbox outlives it); without, the sandbox is about to go: the caller destroys it,
    then calls delete_endpoints (the interfaces go with the netns)."""
    from minidock.net.ports import portmap
    from minidock.pipeline import best_effort
    store = ctx.store
    doc = store.get("network", ep.network_id)
    net = nw.from_doc(doc) if doc else None
    steps: list[tuple[str, Any]] = []
    drv = _driver_or_none(net)
    if net is not None and drv is None:      # a plugin gone: the rest is still released
        steps.append(("driver", lambda: get_driver(net.driver)))
    elif net is not None:
        nwi, info = net.info(), ep.info()
        steps.append(("RevokeExternalConnectivity",
                      lambda: drv.revoke_external_connectivity(ctx, nwi, info)))
        if leave or _leaves_itself(net):
            steps.append(("Leave", lambda: drv.leave(ctx, nwi, info)))
            steps.append(("DeleteEndpoint", lambda: drv.delete_endpoint(ctx, nwi, info)))
    steps += [
        ("deleteSvcRecords", lambda: _dns_remove(ctx, ep, net)),
        ("releasePorts", lambda: portmap.release(store, ep.id)),
        ("ReleaseAddress", lambda: _release_address(ctx, net, ep)),
        ("delete_endpoint_record", lambda: store.delete("endpoint", ep.id)),
    ]
    return best_effort(steps)


def _release_address(ctx: Context, net: nw.Net | None, ep: eps.Endpoint) -> None:
    if net is not None and ep.ip:
        get_ipam(net.ipam_driver).release_address(ctx, net.pool_id, ep.ip)
    ctx.store.release_owner(ep.id, "ip:")
    ctx.store.release_owner(ep.id, "ip6:")


def _driver_or_none(net: nw.Net | None) -> Any:
    """The network's driver, None when it cannot be found (a plugin that is gone)."""
    from minidock.errors import NotFound
    if net is None:
        return None
    try:
        return get_driver(net.driver)
    except NotFound:
        return None


def _leaves_itself(net: nw.Net) -> bool:
    """Whether the network's driver is told leave and delete_endpoint before the
    sandbox goes (`leave_on_teardown`, as libnetwork tells every driver: a plugin
    must hear Leave), rather than delete_endpoint after it; a driver that cannot be
    found is told nothing."""
    drv = _driver_or_none(net)
    return drv is None or bool(getattr(drv, "leave_on_teardown", False))


def delete_endpoints(ctx: Context, endpoints: list[tuple[nw.Net | None, eps.Endpoint]]
                     ) -> list[str]:
    """The drivers' delete_endpoint once the sandbox is gone (best-effort); drivers
    that leave on teardown were told already (release_endpoint)."""
    from minidock.pipeline import best_effort
    steps = []
    for net, ep in endpoints:
        if net is not None and not _leaves_itself(net):
            steps.append(("DeleteEndpoint", lambda net=net, ep=ep: _delete_endpoint(ctx, net, ep)))
    return best_effort(steps)


def settings_entry(net: nw.Net, ep: eps.Endpoint | None, wish: dict[str, Any] | None,
                   ctr_id: str, hostname: str) -> dict[str, Any]:
    """NetworkSettings.Networks[<name>] in Docker's shape (runtime fields empty
    when `ep` is None: a stopped container keeps its entries)."""
    wish = wish or {}
    aliases = list(wish.get("Aliases") or [])
    if ep is not None and net.user_defined:
        aliases = [a for a in aliases if a not in (ctr_id[:12], hostname)]
        aliases += [ctr_id[:12]] + ([hostname] if hostname != ctr_id[:12] else [])
    return {
        "IPAMConfig": wish.get("IPAMConfig"), "Links": wish.get("Links"),
        "Aliases": aliases or None, "NetworkID": net.id,
        "EndpointID": ep.id if ep else "", "Gateway": ep.gateway if ep else "",
        "IPAddress": ep.ip if ep else "", "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": ep.gateway6 if ep else "",
        "GlobalIPv6Address": ep.ip6 if ep else "",
        "GlobalIPv6PrefixLen": ep.prefixlen6 if ep else 0,
        "MacAddress": ep.mac if ep else "", "DriverOpts": wish.get("DriverOpts"),
    }


def _dns_set(ctx: Context, net: nw.Net, ep: eps.Endpoint) -> None:
    if not net.user_defined or net.name == "minidock_gwbridge":   # net/gwbridge.py
        return
    from minidock.net.dns import dnsrecords
    ctr = ctx.store.get("container", ep.container_id) or {}
    hostname = (ctr.get("Config") or {}).get("Hostname", "")
    names = [ep.name, *ep.aliases, ep.container_id[:12]] + ([hostname] if hostname else [])
    dnsrecords.set_endpoint(ctx.store, net.id, ep.container_id, ep.ip, names, ep.ip6)


def _dns_remove(ctx: Context, ep: eps.Endpoint, net: nw.Net | None) -> None:
    if net is not None and not net.user_defined:
        return
    from minidock.net.dns import dnsrecords
    dnsrecords.remove_endpoint(ctx.store, ep.network_id, ep.container_id)
