"""The full orphan sweep of `system prune`: every record repaired, then every
leftover that no record owns removed, in the store, the kernel and the exec-root.

Runs under reconcile.exclusive(): no creating pipeline is in flight, so "no record
owns it" means "orphan". Each pass is one small function returning what it fixed;
every removal is idempotent, and a pass that fails does not stop the others.

    containers   reconcile_container on each (dead runs removed, lost monitors,
                 leftover endpoints of containers that do not run)
    networks     networks whose `network create` died
    endpoints    of containers or networks that no longer exist
    claims       addresses and ports whose owner endpoint is gone
    dns, links   records of endpoints / containers that are gone
    proxy        forwards whose owner endpoint is gone
    resolver     attachments of containers that do not run
    keys         netns keys (and /run/netns links) no record names
    veths        host ends on minidock bridges that no endpoint names
    dirs         container directories without a record
    cgroups      container cgroups (below this root's parent) of no live container
    firewall     rebuilt to exactly the expected rules (net/fwcheck.py)
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Callable

Fixed = list[str]


def run(ctx: Any) -> Fixed:
    """Every pass, in order; returns one line per repair."""
    fixed: Fixed = []
    passes: list[tuple[str, Callable[[Any], Fixed]]] = [
        ("containers", _containers), ("networks", _networks), ("endpoints", _endpoints),
        ("claims", _claims), ("dns", _dns), ("links", _links), ("proxy", _proxy),
        ("resolver", _resolver), ("keys", _keys), ("veths", _veths), ("dirs", _dirs),
        ("cgroups", _cgroups), ("firewall", _firewall)]
    for name, fn in passes:
        try:
            fixed += fn(ctx)
        except Exception as err:  # best-effort: report, keep going
            print(f"minidock: reconcile {name}: {err}", file=sys.stderr)
            if os.environ.get("MINIDOCK_DEBUG"):
                raise
    return fixed


def _containers(ctx: Any) -> Fixed:
    from minidock.reconcile import reconcile_container
    from minidock.runtime import container as records
    out = []
    for ctr in records.all_containers(ctx):
        if reconcile_container(ctx, ctr) is None:
            out.append(f"container {ctr['Id'][:12]}: failed start removed")
    return out


def _networks(ctx: Any) -> Fixed:
    from minidock.reconcile import reap_networks
    return ["networks: failed create removed"] if reap_networks(ctx) else []


def _endpoints(ctx: Any) -> Fixed:
    from minidock.net import attach
    from minidock.net import endpoint as eps
    store, out = ctx.store, []
    for eid, doc in store.list("endpoint"):
        ep = eps.from_doc(doc)
        if store.get("container", ep.container_id) is None or \
                store.get("network", ep.network_id) is None:
            attach.release_endpoint(ctx, ep, leave=True)
            out.append(f"endpoint {eid[:12]}: owner gone")
    return out


def _claims(ctx: Any) -> Fixed:
    store, out = ctx.store, []
    endpoints = {eid for eid, _d in store.list("endpoint")}
    networks = {nid for nid, _d in store.list("network")}
    rows = store._db.execute("SELECT space, key, owner FROM claims").fetchall()
    with store.transaction():
        for space, key, owner in rows:
            kind, _, rest = space.partition(":")
            orphan = (kind == "port" and owner not in endpoints) or \
                     (kind == "ip" and (rest not in networks or owner not in endpoints))
            if orphan:
                store.release(space, key, owner)
                out.append(f"claim {space} {key}: owner gone")
    return out


def _dns(ctx: Any) -> Fixed:
    try:
        from minidock.net import dnsrecords
    except ImportError:
        return []
    store = ctx.store
    have = {(d["network_id"], d["container_id"]) for _i, d in store.list("endpoint")}
    db = dnsrecords._db(store)
    rows = db.execute("SELECT network_id, container_id FROM dns_endpoints").fetchall()
    rows += db.execute("SELECT network_id, container_id FROM dns_links").fetchall()
    out = []
    for nid, cid in set(rows):
        if (nid, cid) not in have:
            dnsrecords.remove_endpoint(store, nid, cid)
            out.append(f"dns {cid[:12]} on {nid[:12]}: endpoint gone")
    return out


def _links(ctx: Any) -> Fixed:
    from minidock.link import links
    store, out = ctx.store, []
    for lid, doc in store.list("link"):
        parent = store.get("container", doc.get("Parent", ""))
        child = store.get("container", doc.get("Child", ""))
        if parent is None:
            links.forget(ctx, doc.get("Parent", ""))
            store.delete("link", lid)
            out.append(f"link {lid[:12]}: parent gone")
        elif doc.get("Rules") and (child is None or not _running(parent) or not _running(child)):
            links.release(ctx, parent)
            out.append(f"link {lid[:12]}: rules of a stopped pair")
    return out


def _running(ctr: dict[str, Any]) -> bool:
    from minidock.reconcile import container_live
    return container_live(ctr)


def _proxy(ctx: Any) -> Fixed:
    try:
        from minidock.net import proxy
    except ImportError:
        return []
    endpoints = {eid for eid, _d in ctx.store.list("endpoint")}
    out = []
    for owner in list(proxy._read_table(ctx)):
        if owner not in endpoints:
            proxy.unpublish(ctx, owner)
            out.append(f"proxy forward {owner[:12]}: endpoint gone")
    return out


def _resolver(ctx: Any) -> Fixed:
    from minidock.net.resolver import Paths, detach
    out = []
    for cid, _path in Paths(ctx.exec_root).records():
        ctr = ctx.store.get("container", cid)
        if ctr is None or not _running(ctr):
            detach(ctx, cid)
            out.append(f"resolver attachment {cid[:12]}: container not running")
    return out


def _keys(ctx: Any) -> Fixed:
    from minidock.net.sandbox import RUN_NETNS
    from minidock.reconcile import destroy_key
    from minidock.runtime import container as records
    wanted = set()
    for ctr in records.all_containers(ctx):
        if _running(ctr):
            wanted.add((ctr.get("NetworkSettings") or {}).get("SandboxKey") or "")
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


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _veths(ctx: Any) -> Fixed:
    from minidock.net import network as nw
    from minidock.net.netlink import Netlink
    store = ctx.store
    bridges = {nw.from_doc(d).bridge for _i, d in store.list("network")} - {""}
    named = {d.get("host_veth") for _i, d in store.list("endpoint")}
    out = []
    with Netlink() as nl:
        links = nl.link_list()
        masters = {ln.index for ln in links if ln.name in bridges}
        for ln in links:
            if ln.kind == "veth" and ln.master in masters and ln.name not in named:
                nl.link_del_name(ln.name)
                out.append(f"veth {ln.name}: no endpoint")
    return out


def _dirs(ctx: Any) -> Fixed:
    store, out = ctx.store, []
    for base in (os.path.join(ctx.root, "containers"), os.path.join(ctx.exec_root, "containers")):
        for cid in _listdir(base):
            if store.get("container", cid) is None:
                shutil.rmtree(os.path.join(base, cid), ignore_errors=True)
                out.append(f"dir {base}/{cid[:12]}: no record")
    return out


def _cgroups(ctx: Any) -> Fixed:
    from minidock.reconcile import container_live
    from minidock.runtime import cgroups
    from minidock.runtime import container as records
    live = {c["Id"] for c in records.all_containers(ctx) if container_live(c)
            or c["State"].get("Restarting")}
    out = []
    for ctrl, path in cgroups.plan(ctx.root, "x").items():
        parent = os.path.dirname(path)
        for cid in _listdir(parent):
            if len(cid) == 64 and cid not in live and os.path.isdir(os.path.join(parent, cid)):
                cgroups.remove({ctrl: os.path.join(parent, cid)}, wait=0)
                out.append(f"cgroup {ctrl or 'unified'}/{cid[:12]}: removed")
    return out


def _firewall(ctx: Any) -> Fixed:
    if not ctx.config.iptables:
        return []
    from minidock.net import fwcheck
    return fwcheck.repair(ctx, force=True)
