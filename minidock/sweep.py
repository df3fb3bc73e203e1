"""The full orphan sweep of `system prune`: every record repaired, then every
leftover that no record owns removed, in the store, the kernel and the exec-root.

Runs under locks.exclusive(): no creating pipeline is in flight, so "no record
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
    drivers      each driver's own orphans (the bridge: host ends on its bridges
                 that no endpoint names)
    dirs         container directories without a record
    cgroups      container cgroups (below this root's parent) of no live container
    montpl       the monitor template stopped if it serves no monitor (its files
                 removed if it was killed): the next detached start starts it again
    firewall     rebuilt to exactly the expected rules (net/repair.py)

The passes are the subsystems' own repair functions (runtime/repair.py,
net/repair.py, net/links/links.py); this module only orders them.
"""

from __future__ import annotations

import os
import shutil
import sys
from minidock.hints import TYPE_CHECKING, Callable

from minidock.identity import container_live
from minidock.net import repair as net
from minidock.runtime import repair as runtime

if TYPE_CHECKING:
    from minidock.context import Context

Fixed = list[str]


def run(ctx: Context) -> Fixed:
    """Every pass, in order; returns one line per repair. A pass that fails is
    reported (one line on stderr) and the others still run."""
    fixed: Fixed = []
    passes: list[tuple[str, Callable[[Context], Fixed]]] = [
        ("containers", _containers), ("networks", _networks),
        ("endpoints", net.sweep_endpoints), ("claims", net.sweep_claims),
        ("dns", net.sweep_dns), ("links", _links), ("proxy", net.sweep_proxy),
        ("resolver", net.sweep_resolver), ("keys", net.sweep_keys),
        ("drivers", net.sweep_drivers), ("dirs", _dirs), ("cgroups", runtime.sweep_cgroups),
        ("montpl", _montemplate),
        ("firewall", net.sweep_firewall)]
    for name, fn in passes:
        try:
            fixed += fn(ctx)
        except Exception as err:  # best-effort: report, keep going
            print(f"minidock: reconcile {name}: {err}", file=sys.stderr)
            if os.environ.get("MINIDOCK_DEBUG"):
                raise
    return fixed


def _containers(ctx: Context) -> Fixed:
    from minidock.runtime import container as records
    from minidock.runtime.repair import reconcile_container
    out = []
    for ctr in records.all_containers(ctx):
        if reconcile_container(ctx, ctr) is None:
            out.append(f"container {ctr['Id'][:12]}: failed start removed")
    return out


def _networks(ctx: Context) -> Fixed:
    from minidock.net.controller import reap_networks
    return ["networks: failed create removed"] if reap_networks(ctx) else []


def _links(ctx: Context) -> Fixed:
    from minidock.net.links import links
    store, out = ctx.store, []
    for lid, doc in store.list("link"):
        parent = store.get("container", doc.get("Parent", ""))
        child = store.get("container", doc.get("Child", ""))
        if parent is None:
            links.forget(ctx, doc.get("Parent", ""))
            store.delete("link", lid)
            out.append(f"link {lid[:12]}: parent gone")
        elif doc.get("Rules") and (child is None or not container_live(parent)
                                   or not container_live(child)):
            links.release(ctx, parent)
            out.append(f"link {lid[:12]}: rules of a stopped pair")
    return out


def _montemplate(ctx: Context) -> Fixed:
    from minidock.runtime import montemplate
    montemplate.stop(ctx)
    return []


def _dirs(ctx: Context) -> Fixed:
    store, out = ctx.store, []
    for base in (os.path.join(ctx.root, "containers"), os.path.join(ctx.exec_root, "containers")):
        for cid in runtime.listdir(base):
            if store.get("container", cid) is None:
                shutil.rmtree(os.path.join(base, cid), ignore_errors=True)
                out.append(f"dir {base}/{cid[:12]}: no record")
    return out
