"""Rebuilding after a flushed or changed firewall: the expected rules are what the
drivers' states say (driverapi `expected_rules`) plus the links' ACCEPT pairs;
net/firewall/fwcheck.py re-adds the missing ones (through the controller's idempotent
initialisation for chains, driver and network rules) and, for `system prune`, removes
the unowned ones. boot.check_firewall calls it when the cheap drift check fails.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.identity import container_live
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.driverapi import driver_names, get_driver

if TYPE_CHECKING:
    from minidock.context import Context


def repair_firewall(ctx: Context, force: bool = False) -> list[str]:
    """Re-add the missing expected rules; with `force`, drop unowned ones too."""
    from minidock.net import controller
    from minidock.net.firewall import fwcheck
    from ipaddress import IPv4Network
    base, per = expected_rules(ctx)
    subnets = [IPv4Network(n.subnet) for n in _networks(ctx) if n.subnet]
    return fwcheck.repair(ctx.exec_root, base, per, subnets,
                          lambda: controller.reinitialize(ctx), force)


def expected_rules(ctx: Context) -> tuple[list[Any], list[Any]]:
    """(driver-wide + network rules, rules of live endpoints and links) that the
    drivers' states and the link records say exist."""
    from minidock.net.firewall import iptables
    store = ctx.store
    base: list[Any] = []
    for name in driver_names():
        base += get_driver(name).expected_rules(ctx, None, [])[0]
    per: list[Any] = []
    live = [ep for ep in _endpoints(ctx)        # a releasing one's rules are going
            if eps.legit(ep, store.get("container", ep.container_id))]
    for net in _networks(ctx):
        mine = [ep.info() for ep in live if ep.network_id == net.id]
        net_rules, ep_rules = get_driver(net.driver).expected_rules(ctx, net.info(), mine)
        base += net_rules
        per += ep_rules
    for _lid, doc in store.list("link"):
        if doc.get("Rules"):
            parent = store.get("container", doc.get("Parent", ""))
            if parent is not None and container_live(parent):
                per += iptables.from_data(doc["Rules"])
    return base, per


def _networks(ctx: Context) -> list[nw.Net]:
    return [nw.from_doc(d) for _i, d in ctx.store.list("network")]


def _endpoints(ctx: Context) -> list[eps.Endpoint]:
    return [eps.from_doc(d) for _i, d in ctx.store.list("endpoint")]
