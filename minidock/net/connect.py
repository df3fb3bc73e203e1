"""`network connect` / `network disconnect`: change a container's networks.

A running container joins at once (a new endpoint, its veth made inside the sandbox as
eth<N>, a hosts line, DNS records); a stopped one only records the wish in
NetworkSettings.Networks and joins at its next start. Disconnect is the inverse, and
`-f` removes an endpoint record even when the container is gone. Docker's messages
(docker-facts section 6).
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING

from minidock.errors import Conflict, Forbidden, InvalidArgument, NotFound
from minidock.net import attach
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.api import mode_kind

if TYPE_CHECKING:
    from minidock.context import Container, Context
    from minidock.pipeline import Pipeline


def _container(ctx: Context, ref: str) -> tuple[str, Container]:
    return ctx.store.lookup("container", ref, "container")


def _save(ctx: Context, ctr: Container) -> None:
    ctx.store.put("container", ctr["Id"], ctr, name=ctr["Name"].lstrip("/"))


def _check_connect(ctr: Container, net: nw.Net, alias: list[str], ip: str) -> None:
    kind = mode_kind(ctr["HostConfig"].get("NetworkMode") or "default")
    if kind == "container":
        raise Forbidden("container sharing network namespace with another container or host "
                        "cannot be connected to any other network")
    if kind == "host" or net.name == "host":
        raise Forbidden("container cannot be disconnected from host network or connected to "
                        "host network")
    if kind == "none" or net.name == "none":
        raise Forbidden("container cannot be connected to multiple networks with one of the "
                        "networks in private (none) mode")
    if net.name in ctr["NetworkSettings"].get("Networks", {}):
        raise Conflict(f"endpoint with name {ctr['Name'].lstrip('/')} already exists in "
                       f"network {net.name}")
    if not net.user_defined and alias:
        raise InvalidArgument("network-scoped alias is supported only for containers in user "
                              "defined networks")
    if ip and not net.user_defined:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    if ip and not net.user_subnet:
        raise InvalidArgument("user specified IP address is supported only when connecting to "
                              "networks with user configured subnets")


def connect(ctx: Context, net_ref: str, ctr_ref: str, alias: list[str], ip: str = "") -> None:
    from minidock.net.controller import ensure_initialized
    from minidock.pipeline import Pipeline
    ensure_initialized(ctx)
    _nid, ndoc = nw.lookup_ctx(ctx, net_ref)
    net = nw.from_doc(ndoc)
    _cid, ctr = _container(ctx, ctr_ref)
    _check_connect(ctr, net, alias, ip)
    wish = {"IPAMConfig": {"IPv4Address": ip} if ip else None, "Aliases": alias or None}
    nets = ctr["NetworkSettings"].setdefault("Networks", {})
    if not ctr["State"].get("Running"):
        nets[net.name] = attach.settings_entry(net, None, wish, ctr["Id"], "")
        _save(ctx, ctr)
        return
    from minidock.locks import busy
    from minidock.net.sandbox import reachable_netns
    path = reachable_netns(ctr)               # before any side effect
    with busy(ctx), Pipeline("network_connect") as p:
        used = {e.ifname for e in eps.of_container(ctx.store, ctr["Id"])}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        ep = attach.allocate_endpoint(ctx, ctr, net, ifname, wish, False, p)
        _join_running(ctx, ctr, net, ep, p, path)
        nets[net.name] = attach.settings_entry(net, ep, wish, ctr["Id"], ctr["Config"]["Hostname"])
        from minidock.net.dns import files
        files.add_hosts_entry(ctr, ep.ip)
        if ep.ip6:
            files.add_hosts_entry(ctr, ep.ip6)
        _save(ctx, ctr)
        p.commit()


def _join_running(ctx: Context, ctr: Container, net: nw.Net, ep: eps.Endpoint, p: Pipeline,
                  key: str) -> None:
    """Join a running container's sandbox through `key` (its key or, under `ip netns
    exec`, its checked /proc/<pid>/ns/net: sandbox.reachable_netns)."""
    from minidock.net.sandbox import Plumbing
    with Plumbing(key) as pl:
        attach.join_endpoint(ctx, net, ep, pl, False, p)
    if net.user_defined:
        from minidock.net.dns import resolver
        resolver.attach(ctx, ctr["Id"], key, f"/proc/{ctr['State']['Pid']}/ns/net")


def disconnect(ctx: Context, net_ref: str, ctr_ref: str, force: bool = False) -> None:
    from minidock.net.controller import ensure_initialized
    ensure_initialized(ctx)
    nid, ndoc = nw.lookup_ctx(ctx, net_ref)
    net = nw.from_doc(ndoc)
    try:
        _cid, ctr = _container(ctx, ctr_ref)
    except NotFound:
        if not force:
            raise
        _force_remove(ctx, nid, ctr_ref)
        return
    kind = mode_kind(ctr["HostConfig"].get("NetworkMode") or "default")
    if kind == "host" or net.name == "host":
        raise Forbidden("container cannot be disconnected from host network or connected to "
                        "host network")
    nets = ctr["NetworkSettings"].get("Networks") or {}
    if net.name not in nets:
        raise NotFound(f"container {ctr['Id']} is not connected to network {net.name}")
    from minidock.pipeline import report
    from minidock.pipeline import best_effort
    errors: list[str] = []
    for ep in eps.of_container(ctx.store, ctr["Id"]):
        if ep.network_id == nid:
            errors += attach.release_endpoint(ctx, ep, leave=True)
            from minidock.net.dns import files
            errors += best_effort([("remove_hosts_entry",
                                    lambda: [files.remove_hosts_entry(ctr, a)
                                             for a in (ep.ip, ep.ip6) if a])],
                                  "network_disconnect")
    del nets[net.name]
    _save(ctx, ctr)
    _fail_if(report(errors, "network disconnect"), ctr["Id"], net.name)


def _fail_if(errors: list[str], cid: str, network: str) -> None:
    """Teardown errors (already on stderr) make the command's status non-zero."""
    if errors:
        from minidock.errors import Internal
        raise Internal(f"container {cid[:12]} disconnected from network {network}, but "
                       f"{len(errors)} teardown step(s) failed")


def _force_remove(ctx: Context, nid: str, name: str) -> None:
    """`disconnect -f` of a container that no longer exists: drop its endpoint by name."""
    hit = ctx.store.get_by_name("endpoint", eps.record_name(nid, name))
    if hit is None:
        raise NotFound(f"No such container: {name}")
    from minidock.pipeline import report
    _fail_if(report(attach.release_endpoint(ctx, eps.from_doc(hit[1]), leave=True),
                    "network disconnect"), name, nid[:12])
