"""A container's endpoints: allocate them, join them into its sandbox, release them
(the article's allocateNetwork / connectToNetwork / sbJoin / sbLeave, daemonless).

    allocate_endpoint   record + address claim (+ host port claims on the gateway
                        endpoint), before the container's process exists
    join_endpoints      in the prestart hook: the driver's join (veth made inside the
                        sandbox), then external connectivity (port rules, proxy)
    release_endpoint    revoke connectivity, give back ports and address, drop the record
                        (best-effort, idempotent: works when the netns or veth is gone)

Every step registers its undo in the caller's Pipeline.
"""

from __future__ import annotations

import os
from typing import Any

from minidock import ids
from minidock.net import endpoint as eps
from minidock.net import network as nw
from minidock.net.driver import get_driver

Container = dict[str, Any]


def container_name(ctr: Container) -> str:
    return ctr["Name"].lstrip("/")


def gateway_network(nets: list[nw.Net]) -> nw.Net | None:
    """Docker's pick: non-internal first, then one with a gateway, then by name."""
    cands = [n for n in nets if n.driver == "bridge"]
    if not cands:
        return None
    return sorted(cands, key=lambda n: (n.internal, not n.gateway, n.name))[0]


def allocate_endpoint(ctx: Any, ctr: Container, net: nw.Net, ifname: str, wish: dict[str, Any],
                      with_ports: bool, p: Any) -> eps.Endpoint:
    """Create the endpoint record of `ctr` on `net` with its address (and host ports).

    The record is stored in the transaction that claims its address (and updated in
    the one that claims its ports), so every claim has an owner record at all times;
    the record names its starter (this CLI) and sandbox key for reconciliation.
    A conflict whose holder may be dead is checked (reconcile) and retried once.
    """
    from minidock.net import portmap
    store = ctx.store
    ep_id = ids.new_id()
    requested = ((wish.get("IPAMConfig") or {}).get("IPv4Address") or "")
    ep = p.step("allocate_address", _retry_stale, ctx, f"ip:{net.id}",
                [requested] if requested else None, _claim_address, ctx, ctr, net, ep_id,
                ifname, wish, requested)
    p.undo("allocate_address", _drop_endpoint, store, ep_id)
    if with_ports:
        wanted = portmap.requested_bindings(ctr, net.host_ip)
        if wanted:
            label = f"{ep.name} ({ep.id})"
            spaces = sorted({f"port:{b['proto']}" for b in wanted})
            ports = [str(b["host_port"]) for b in wanted if b["host_port"]] or None
            ep = p.step("allocate_ports", _retry_stale, ctx, spaces, ports, _claim_ports,
                        store, ep, net, wanted, label)
            p.undo("allocate_ports", portmap.release, store, ep_id)
    return ep


def _retry_stale(ctx: Any, spaces: Any, keys: list[str] | None, fn: Any, *args: Any) -> Any:
    """Run `fn`; on a conflict, release claims in `spaces` whose owner is dead, and
    retry once if any was."""
    from minidock.errors import Conflict, InvalidArgument
    try:
        return fn(*args)
    except (Conflict, InvalidArgument):
        from minidock import reconcile
        found = False
        for space in ([spaces] if isinstance(spaces, str) else spaces):
            found = reconcile.reap_claim_owner(ctx, space, keys) or found
        if not found:
            raise
    return fn(*args)


def _claim_address(ctx: Any, ctr: Container, net: nw.Net, ep_id: str, ifname: str,
                   wish: dict[str, Any], requested: str) -> eps.Endpoint:
    from ipaddress import IPv4Address

    from minidock import reconcile
    from minidock.net import ipam
    store = ctx.store
    mac = ctr["Config"].get("MacAddress") if ifname == "eth0" else ""
    with store.transaction():
        addr = eps.allocate_address(store, net, ep_id, requested)
        ep = eps.Endpoint(
            id=ep_id, network_id=net.id, container_id=ctr["Id"], name=container_name(ctr),
            ip=str(addr), prefixlen=net.prefixlen, mac=mac or ipam.mac_for(IPv4Address(addr)),
            gateway=net.gateway, ifname=ifname, host_veth="veth" + os.urandom(4).hex()[:7],
            aliases=tuple(wish.get("Aliases") or ()), requested_ip=requested,
            extra={"starter": reconcile.starter_mark(),
                   "sandbox": (ctr.get("NetworkSettings") or {}).get("SandboxKey") or ""})
        eps.save(store, ep, net)
    return ep


def _claim_ports(store: Any, ep: eps.Endpoint, net: nw.Net, wanted: list[dict[str, Any]],
                 label: str) -> eps.Endpoint:
    from minidock.net import portmap
    with store.transaction():
        bound = portmap.allocate(store, ep.id, wanted, label)
        ep = ep.with_(ports=tuple(bound))
        eps.save(store, ep, net)
    return ep


def _drop_endpoint(store: Any, ep_id: str) -> None:
    """Undo of allocate_address: the record and every claim it owns."""
    with store.transaction():
        store.release_owner(ep_id)
        store.delete("endpoint", ep_id)


def join_endpoint(ctx: Any, net: nw.Net, ep: eps.Endpoint, pl: Any, gateway: bool,
                  p: Any) -> eps.Endpoint:
    """The driver joins the endpoint into the sandbox; the gateway endpoint also gets
    external connectivity (published ports)."""
    drv = get_driver(net.driver)
    p.step("join", drv.join, ctx, net, ep, pl, gateway)
    p.undo("join", drv.leave, ctx, net, ep)
    if gateway and ep.ports:
        rules = p.step("program_external_connectivity", drv.program_external_connectivity,
                       ctx, net, ep)
        from minidock.net.iptables import to_data
        ep = ep.with_(rules=tuple((r[0], r[1], tuple(r[2]), r[3]) for r in to_data(rules)))
        p.undo("program_external_connectivity", drv.revoke_external_connectivity, ctx, net, ep)
        ctx.store.put("endpoint", ep.id, eps.to_doc(ep),
                      name=eps.record_name(ep.network_id, ep.name))
    _dns_set(ctx, net, ep)
    return ep


_later: list[Any] | None = None
_waits: list[Any] | None = None


def _now_or_later(fn: Any) -> None:
    if _later is None:
        fn()
    else:
        _later.append(fn)


def wait_later(fn: Any) -> bool:
    """Queue a wait for the kernel's asynchronous teardown (a netns's veths going) to
    the end of the active deferred_kernel_cleanup(waits=True) block; False (the caller
    waits now) outside one."""
    if _waits is None:
        return False
    _waits.append(fn)
    return True


class deferred_kernel_cleanup:
    """Inside it, release_endpoint queues its kernel-only tail instead of running it.

    Removing a veth's anti-spoofing elements is one netlink batch whose commit waits
    for an RCU grace period (~15 ms). It touches no record and no name, address or
    port, so a monitor tearing down a `--rm` container can tell the waiting CLI first
    and run the queue right after (on exit of this block), off the CLI's wait.

    `waits=True` (rm): the wait for the kernel's removal of the sandbox's veths
    (another RCU-bound step, run by the kernel once the key is unmounted) is queued
    too, after the unguard, so both grace periods and the rest of the removal overlap
    instead of following each other; both are done when the block ends.
    """

    def __init__(self, waits: bool = False) -> None:
        self.waits = waits

    def __enter__(self) -> "deferred_kernel_cleanup":
        global _later, _waits
        _later = []
        if self.waits:
            _waits = []
        return self

    def __exit__(self, *exc: object) -> None:
        global _later, _waits
        queue, _later = _later or [], None
        waits, _waits = (_waits or [], None) if self.waits else ([], _waits)
        from minidock.pipeline import best_effort
        best_effort([("unguard", fn) for fn in queue], "teardown")
        best_effort([("sandbox_destroy", fn) for fn in waits], "teardown")


def release_endpoint(ctx: Any, ep: eps.Endpoint, leave: bool = False) -> list[str]:
    """Undo everything of one endpoint; errors are collected, not raised."""
    from minidock.net import portmap
    from minidock.pipeline import best_effort
    store = ctx.store
    doc = store.get("network", ep.network_id)
    net = nw.from_doc(doc) if doc else None
    steps = []
    if net is not None:
        drv = get_driver(net.driver)
        steps.append(("revoke_external_connectivity",
                      lambda: drv.revoke_external_connectivity(ctx, net, ep)))
        if leave:
            steps.append(("leave", lambda: drv.leave(ctx, net, ep)))
        elif hasattr(drv, "unguard"):   # the veth goes with the netns; its guard stays
            steps.append(("unguard", lambda: _now_or_later(lambda: drv.unguard(ep))))
    steps += [
        ("dns_remove", lambda: _dns_remove(ctx, ep, net)),
        ("release_ports", lambda: portmap.release(store, ep.id)),
        ("release_address", lambda: eps.release_address(store, ep.network_id, ep.id)),
        ("delete_endpoint", lambda: store.delete("endpoint", ep.id)),
    ]
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
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": ep.mac if ep else "", "DriverOpts": wish.get("DriverOpts"),
    }


def _dns_set(ctx: Any, net: nw.Net, ep: eps.Endpoint) -> None:
    if not net.user_defined:
        return
    try:
        from minidock.net import dnsrecords
    except ImportError:
        return
    ctr = ctx.store.get("container", ep.container_id) or {}
    hostname = (ctr.get("Config") or {}).get("Hostname", "")
    names = [ep.name, *ep.aliases, ep.container_id[:12]] + ([hostname] if hostname else [])
    dnsrecords.set_endpoint(ctx.store, net.id, ep.container_id, ep.ip, names)


def _dns_remove(ctx: Any, ep: eps.Endpoint, net: nw.Net | None) -> None:
    if net is not None and not net.user_defined:
        return
    try:
        from minidock.net import dnsrecords
    except ImportError:
        return
    dnsrecords.remove_endpoint(ctx.store, ep.network_id, ep.container_id)
