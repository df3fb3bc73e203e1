"""Networking's own repairs: what a crash, a reboot or a flushed firewall leaves, and
how to put it right (the net part of reconciliation; reconcile.py and sweep.py only
orchestrate these for `system prune` and the first command after a boot).

    release_container                  everything networking of a container that is
                                       not live (idempotent)
    after_reboot                       endpoints, their claims, DNS records dropped
    sweep_*                            orphans in store, kernel and exec-root, one
                                       pass each, each returning one line per repair

Ownership: an address or port claim's owner is an endpoint (a gateway address's, its
network; a pool's, its pool id); an endpoint names its container and sandbox key; so
every claim and kernel object traces to a record or is an orphan. Drivers' own kernel
objects are swept by the drivers (driverapi `sweep`).
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING

from minidock.identity import container_live
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.driverapi import get_driver

if TYPE_CHECKING:
    from minidock.context import Container, Context

Fixed = list[str]


def _networks(ctx: Context) -> list[nw.Net]:
    return [nw.from_doc(d) for _i, d in ctx.store.list("network")]


def _endpoints(ctx: Context) -> list[eps.Endpoint]:
    return [eps.from_doc(d) for _i, d in ctx.store.list("endpoint")]


# -- containers ---------------------------------------------------------------------------
def release_container(ctx: Context, ctr: Container) -> list[str]:
    """Everything networking of a container that is not live (idempotent); the
    teardown errors, each already reported on stderr."""
    from minidock.net import api, attach
    from minidock.pipeline import report
    endpoints = eps.of_container(ctx.store, ctr["Id"])
    errors: list[str] = []
    for ep in endpoints:      # leave: the veth goes now, even if a process pins the netns
        errors += report(attach.release_endpoint(ctx, ep, leave=True), "release_endpoint")
    errors += api.release_networking(ctx, ctr)
    for key in {k for ep in endpoints if (k := (ep.extra or {}).get("sandbox"))}:
        destroy_key(key)
    return errors


def release_stale_endpoints(ctx: Context, ctr: Container) -> None:
    """A live container's endpoints that a killed connect left behind."""
    from minidock.net import attach
    for ep in eps.of_container(ctx.store, ctr["Id"]):
        if not eps.legit(ep, ctr):
            attach.release_endpoint(ctx, ep, leave=True)


def destroy_key(key: str) -> None:
    """Unpin a sandbox key and its /run/netns link (idempotent)."""
    from minidock.net.kernel import netns
    from minidock.net.sandbox import RUN_NETNS
    try:
        for name in os.listdir(RUN_NETNS):
            netns.unlink_name(name, key, RUN_NETNS)
    except OSError:
        pass
    netns.unbind_key(key)


def after_reboot(ctx: Context) -> None:
    """Nothing of the previous boot runs: endpoints and their claims and DNS records
    go (networks stay: their kernel objects are rebuilt by the next initialisation)."""
    from minidock.net.dns import dnsrecords
    store = ctx.store
    with store.transaction():
        for eid, _doc in store.list("endpoint"):
            store.release_owner(eid)
            store.delete("endpoint", eid)
    dnsrecords.clear(store)


# -- orphan sweep (system prune, under locks.exclusive) ------------------------------------
def sweep_endpoints(ctx: Context) -> Fixed:
    from minidock.net import attach
    store, out = ctx.store, []
    for ep in _endpoints(ctx):
        if store.get("container", ep.container_id) is None or \
                store.get("network", ep.network_id) is None:
            attach.release_endpoint(ctx, ep, leave=True)
            out.append(f"endpoint {ep.id[:12]}: owner gone")
    return out


def sweep_claims(ctx: Context) -> Fixed:
    """Claims whose owner record is gone: ports and addresses of endpoints, gateways
    and pools of networks."""
    store, out = ctx.store, []
    endpoints = {eid for eid, _d in store.list("endpoint")}
    networks = _networks(ctx)
    pools = {n.pool_id for n in networks if n.pool_id}
    with store.transaction():
        for space, key, owner in store.all_claims():
            kind, _, rest = space.partition(":")
            orphan = (kind == "port" and owner not in endpoints) or \
                     (kind == "ip" and (rest not in pools or owner not in endpoints)) or \
                     (kind == "gw" and rest not in pools) or \
                     (kind == "pool" and owner not in pools)
            if orphan:
                store.release(space, key, owner)
                out.append(f"claim {space} {key}: owner gone")
    return out


def sweep_dns(ctx: Context) -> Fixed:
    from minidock.net.dns import dnsrecords
    store = ctx.store
    have = {(d["network_id"], d["container_id"]) for _i, d in store.list("endpoint")}
    out = []
    for nid, cid in sorted(dnsrecords.attachments(store)):
        if (nid, cid) not in have:
            dnsrecords.remove_endpoint(store, nid, cid)
            out.append(f"dns {cid[:12]} on {nid[:12]}: endpoint gone")
    return out


def sweep_proxy(ctx: Context) -> Fixed:
    from minidock.net.ports import proxy
    endpoints = {eid for eid, _d in ctx.store.list("endpoint")}
    out = []
    for owner in proxy.owners(ctx):
        if owner not in endpoints:
            proxy.unpublish(ctx, owner)
            out.append(f"proxy forward {owner[:12]}: endpoint gone")
    return out


def sweep_resolver(ctx: Context) -> Fixed:
    from minidock.net.dns.resolver import Paths, detach
    out = []
    for cid, _path in Paths(ctx.exec_root).records():
        ctr = ctx.store.get("container", cid)
        if ctr is None or not container_live(ctr):
            detach(ctx, cid)
            out.append(f"resolver attachment {cid[:12]}: container not running")
    return out


def sweep_keys(ctx: Context) -> Fixed:
    from minidock.net.sandbox import RUN_NETNS
    wanted = {(ctr.get("NetworkSettings") or {}).get("SandboxKey") or ""
              for _i, ctr in ctx.store.list("container") if container_live(ctr)}
    out = []
    nsdir = ctx.netns_dir()
    for name in _listdir(nsdir):
        key = os.path.join(nsdir, name)
        if key not in wanted and name != "default":
            destroy_key(key)
            out.append(f"netns key {name}: no running owner")
    for name in _listdir(RUN_NETNS):
        path = os.path.join(RUN_NETNS, name)
        try:
            target = os.readlink(path)
        except OSError:
            continue
        if target.startswith(nsdir + os.sep) and not os.path.exists(target):
            os.unlink(path)
            out.append(f"/run/netns/{name}: dangling")
    return out


def sweep_drivers(ctx: Context) -> Fixed:
    """Every driver's sweep, given the records of its networks and endpoints."""
    from minidock.net.driverapi import driver_names
    networks = _networks(ctx)
    endpoints = _endpoints(ctx)
    out: Fixed = []
    for name in driver_names():
        mine = [n for n in networks if n.driver == name]
        ids = {n.id for n in mine}
        out += get_driver(name).sweep(ctx, [n.info() for n in mine],
                                      [e.info() for e in endpoints if e.network_id in ids])
    return out


def sweep_firewall(ctx: Context) -> Fixed:
    if not ctx.config.iptables:
        return []
    from minidock.net.restore import repair_firewall
    return repair_firewall(ctx, force=True)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
