"""The seam between the runtime's start pipeline and the network controller.

The runtime calls exactly these functions, in this order (the article's names):

    validate(ctx, ctr)                         create: check every network flag
                                               before any side effect
    netns_mode(ctx, ctr) -> (mode, path)       start: "new" (own netns), "host", or
                                               "join" (path of another netns)
    initialize_networking(ctx, ctr, p)         start, before the process exists:
                                               hostname, allocate_network /
                                               connect_to_network (endpoints), the
                                               hostname / hosts / resolv.conf files
    prestart(ctx, ctr, pid, p)                 the prestart hook, while the process is
                                               held on its sync pipe:
                                               set_network_namespace_key(pid) and
                                               populate_network_resources
    release_networking(ctx, ctr)               exit (monitor), stop, rm: idempotent

`ctr` is the container document (Docker's inspect shape, see runtime/container.py);
these functions update `ctr["NetworkSettings"]`, `ctr["Config"]["Hostname"]` and the
`HostnamePath` / `HostsPath` / `ResolvConfPath` keys in place; the caller saves it.
`p` is the caller's Pipeline: each step registers its undo there.

Modes: `default`/`bridge` and user networks (a sandbox with one endpoint per network,
eth0 for the first), `none` (a sandbox with only lo), `host` (the host's netns and
files), `container:<x>` (the donor's netns and the very same files). Endpoints' kernel
side is made in the prestart hook, when the sandbox's netns exists (the driver's
`join`, driverapi.py).
Nothing heavy is imported at module level: this is the hot path of every start.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Conflict, InvalidArgument

if TYPE_CHECKING:
    from minidock.context import Container, Context
    from minidock.pipeline import Pipeline


def _mode(ctr: Container) -> str:
    return ctr["HostConfig"].get("NetworkMode") or "default"


# Modes whose container uses no firewall rule and no embedded DNS (`network connect`
# refuses both any other network): their start skips the firewall drift check, their
# teardown the rule and resolver work.
NO_NETWORKING = ("none", "host")


def mode_kind(mode: str) -> str:
    """"bridge" (default bridge), "none", "host", "container" or "user"."""
    if mode in ("default", "bridge"):
        return "bridge"
    if mode in ("none", "host"):
        return mode
    if mode.startswith("container:"):
        return "container"
    return "user"


def preload(ctr: Container) -> None:
    """Import now what the prestart hook will import for this container.

    The runtime calls it before forking an attached run's monitor: the monitor then
    inherits these modules instead of importing them again for its teardown while
    `run --rm` waits for it. The CLI imports them anyway, only earlier."""
    kind = mode_kind(_mode(ctr))
    if kind not in ("bridge", "user", "none"):
        return
    from minidock.net import sandbox  # noqa: F401
    from minidock.net.kernel import netlink, netns  # noqa: F401
    if kind == "bridge":
        from minidock.net.driverapi import get_driver
        hook = getattr(get_driver("bridge"), "preload", None)   # optional for a driver
        if hook is not None:
            hook()


def validate(ctx: Context, ctr: Container) -> None:
    """Every network flag of create, with Docker's messages; changes nothing."""
    from minidock.net import validate as v
    kind = mode_kind(_mode(ctr))
    v.validate_container(ctx, ctr, kind)
    if ctr["HostConfig"].get("Links"):
        from minidock.net.links import links
        links.normalize(ctx, ctr, kind == "bridge")


def _donor(ctx: Context, ctr: Container) -> Container:
    ref = _mode(ctr).split(":", 1)[1]
    did, donor = ctx.store.lookup("container", ref, "container")
    if did == ctr["Id"]:
        raise InvalidArgument("cannot join own network")
    if not donor["State"].get("Running"):
        raise Conflict(f"cannot join network of a non running container: {ref}")
    return donor


def netns_mode(ctx: Context, ctr: Container) -> tuple[str, str | None]:
    kind = mode_kind(_mode(ctr))
    if kind == "host":
        return ("host", None)
    if kind == "container":
        donor = _donor(ctx, ctr)
        if mode_kind(_mode(donor)) == "host":
            return ("host", None)
        from minidock.net.sandbox import reachable_netns
        return ("join", reachable_netns(donor))
    return ("new", None)


def initialize_networking(ctx: Context, ctr: Container, p: Pipeline) -> None:
    """Hostname, sandbox, endpoints and files, before the container's process exists."""
    from minidock.net.dns import files
    kind = mode_kind(_mode(ctr))
    ns = ctr.setdefault("NetworkSettings", {})
    if kind == "container":
        files.share_files(ctr, _donor(ctx, ctr))
        ns.update(SandboxID="", SandboxKey="", Networks={})
        return
    from minidock import ids
    from minidock.net.boot import ensure_initialized
    ensure_initialized(ctx, firewall=kind not in NO_NETWORKING)
    ns["Bridge"] = ctx.config.bridge if ctx.config.bridge != "none" else ""
    sid = ids.new_id()
    ns["SandboxID"] = sid
    if kind == "host":
        files.host_mode_files(ctx, ctr)
        ns["SandboxKey"] = os.path.join(ctx.netns_dir(), "default")
        _set_builtin_entry(ctx, ctr, "host")
        return
    ns["SandboxKey"] = os.path.join(ctx.netns_dir(), sid[:12])
    if kind == "none":
        _set_builtin_entry(ctx, ctr, "none")
        p.step("setupResolutionFiles", _write_files, ctx, ctr, [], False)
        return
    from minidock.net import sandbox
    if kind == "user":
        _resolver_start(ctx)
    p.undo("NewSandbox", sandbox.destroy, _sandbox(ctx, ctr))
    ips = p.step("allocateNetwork", _allocate_network, ctx, ctr, p)
    link_hosts = p.step("setupLinkedContainers", _setup_links, ctx, ctr, kind, p)
    p.step("setupResolutionFiles", _write_files, ctx, ctr, ips, kind == "user", link_hosts)


def _setup_links(ctx: Context, ctr: Container, kind: str, p: Pipeline) -> list[tuple[str, str]]:
    """Legacy links: env + hosts entries on the default bridge, DNS aliases elsewhere."""
    if not ctr["HostConfig"].get("Links"):
        return []
    from minidock.net.links import links
    if kind == "bridge":
        return links.on_parent_start(ctx, ctr, p)
    links.user_network_aliases(ctx, ctr)
    return []


def _sandbox(ctx: Context, ctr: Container) -> Any:
    from minidock.net.sandbox import Sandbox, link_name_for
    ns = ctr["NetworkSettings"]
    return Sandbox(ns["SandboxID"], ns["SandboxKey"], link_name_for(ctx, ctr["Name"].lstrip("/")))


def _set_builtin_entry(ctx: Context, ctr: Container, name: str) -> None:
    from minidock.net import attach
    from minidock.net import network as nw
    _nid, doc = nw.lookup_ctx(ctx, name)
    wish = (ctr["NetworkSettings"].get("Networks") or {}).get(name)
    entry = attach.settings_entry(nw.from_doc(doc), None, wish, ctr["Id"], "")
    ctr["NetworkSettings"]["Networks"] = {name: entry}
    ctr["NetworkSettings"]["Ports"] = {}


def _write_files(ctx: Context, ctr: Container, ips: list[str], user: bool,
                 link_hosts: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
    from minidock.net.dns import files
    files.write_files(ctx, ctr, ctr["Config"]["Hostname"],
                      files.hosts_text(ctr, ips, link_hosts), files.resolv_text(ctx, ctr, user))


def _wishes(ctr: Container) -> dict[str, Any]:
    nets = dict(ctr["NetworkSettings"].get("Networks") or {})
    if not nets:
        mode = _mode(ctr)
        nets = {"bridge" if mode == "default" else mode: {}}
    return nets


def _allocate_network(ctx: Context, ctr: Container, p: Pipeline) -> list[str]:
    """One endpoint per network (the primary one first), ports on the gateway one."""
    from minidock.net import attach
    from minidock.net.ports import portmap
    from minidock.net import network as nw
    wishes = _wishes(ctr)
    nets = [nw.from_doc(nw.lookup(ctx.store, name)[1]) for name in wishes]
    if any(n.driver not in ("bridge", "host", "null") for n in nets):
        from minidock.net import gwbridge
        if gwbridge.wanted(nets):       # e.g. the overlay's way out (docker_gwbridge)
            gwnet = gwbridge.ensure(ctx)
            wishes[gwnet.name] = {}
            nets.append(gwnet)
    gw = attach.gateway_network(nets)
    out, ips, bindings = {}, [], []
    for i, (name, net) in enumerate(zip(wishes, nets)):
        ep = _connect_to_network(ctx, ctr, net, f"eth{i}", wishes[name] or {}, net is gw, p)
        out[net.name] = attach.settings_entry(net, ep, wishes[name], ctr["Id"],
                                              ctr["Config"]["Hostname"])
        ips += [ep.ip, ep.ip6] if ep.ip6 else [ep.ip]
        if net is gw:
            bindings = list(ep.ports)
    ns = ctr["NetworkSettings"]
    ns["Networks"] = out
    ns["Ports"] = portmap.inspect_ports(ctr, bindings)
    _set_top_level(ns)
    return ips


def _connect_to_network(ctx: Context, ctr: Container, net: Any, ifname: str,
                        wish: dict[str, Any], gateway: bool, p: Pipeline) -> Any:
    """The article's connectToNetwork: this network's endpoint (CreateEndpoint)."""
    from minidock import pipeline
    from minidock.net import attach
    with pipeline.group("connectToNetwork", net.name):
        ep = attach.allocate_endpoint(ctx, ctr, net, ifname, wish, gateway, p)
        if pipeline.TRACING:
            pipeline.note("+", "endpoint", f"{ep.id[:12]} {ep.ip}/{ep.prefixlen} mac {ep.mac} "
                                           f"as {ep.ifname}" + (f" (host end {ep.state['host_veth']})"
                                                                if ep.state.get("host_veth") else ""))
    return ep


def _set_top_level(ns: dict[str, Any]) -> None:
    """Top-level EndpointID/Gateway/IPAddress... come only from the `bridge` entry."""
    b = (ns.get("Networks") or {}).get("bridge") or {}
    ns.update(
        LinkLocalIPv6Address="", LinkLocalIPv6PrefixLen=0, SecondaryIPAddresses=None,
        SecondaryIPv6Addresses=None, EndpointID=b.get("EndpointID", ""),
        Gateway=b.get("Gateway", ""), GlobalIPv6Address=b.get("GlobalIPv6Address", ""),
        GlobalIPv6PrefixLen=b.get("GlobalIPv6PrefixLen", 0),
        IPAddress=b.get("IPAddress", ""), IPPrefixLen=b.get("IPPrefixLen", 0),
        IPv6Gateway=b.get("IPv6Gateway", ""), MacAddress=b.get("MacAddress", ""))


def prestart(ctx: Context, ctr: Container, pid: int, p: Pipeline) -> None:
    """set_network_namespace_key(pid), then populate_network_resources."""
    kind = mode_kind(_mode(ctr))
    if kind in ("host", "container"):
        return
    from minidock.net import sandbox
    sb = _sandbox(ctx, ctr)
    p.step("SetKey", sandbox.set_network_namespace_key, sb, pid)
    p.undo("SetKey", sandbox.destroy, sb)
    p.step("populateNetworkResources", _populate, ctx, ctr, sb, p)
    if kind == "user":
        _resolver_attach(ctx, ctr, sb, p, pid)
    if kind == "bridge" and ctx.store.count("link"):
        from minidock.net.links import links
        p.step("enableLinks", links.program, ctx, ctr, p)
        p.step("updateParentHosts", links.on_child_start, ctx, ctr)


def _populate(ctx: Context, ctr: Container, sb: Any, p: Pipeline) -> None:
    from minidock.net import attach
    from minidock.net import endpoint as eps
    from minidock.net import network as nw
    from minidock.net.sandbox import Plumbing, loopback_up
    entries = ctr["NetworkSettings"].get("Networks") or {}
    joined = []
    for entry in entries.values():
        if entry.get("EndpointID"):
            ep = eps.from_doc(ctx.store.get("endpoint", entry["EndpointID"]))
            joined.append((nw.from_doc(ctx.store.get("network", ep.network_id)), ep))
    gw = attach.gateway_network([n for n, _e in joined])
    with Plumbing(sb.key) as pl:
        loopback_up(pl)
        for net, ep in joined:
            attach.join_endpoint(ctx, net, ep, pl, gw is not None and net.id == gw.id, p)


def _resolver_attach(ctx: Context, ctr: Container, sb: Any, p: Pipeline, pid: int) -> None:
    from minidock.net.dns import resolver
    p.step("startResolver", resolver.attach, ctx, ctr["Id"], sb.key, f"/proc/{pid}/ns/net")
    p.undo("startResolver", resolver.detach, ctx, ctr["Id"])


def release_networking(ctx: Context, ctr: Container) -> list[str]:
    """Give back everything of the container's networking (idempotent, best-effort):
    endpoints released, the sandbox destroyed, then the drivers delete the endpoints
    (their interfaces went with the netns). Every step is tried; the errors are
    reported (one line each on stderr) and returned, for the command's exit status."""
    from minidock.pipeline import group
    with group("releaseNetwork"):
        return _release_networking(ctx, ctr)


def _release_networking(ctx: Context, ctr: Container) -> list[str]:
    kind = mode_kind(_mode(ctr))
    if kind == "container":
        return []
    from minidock.net import attach
    from minidock.net import endpoint as eps
    from minidock.net import network as nw
    from minidock.net.kernel.netns import restore_pid_ns_for_children
    from minidock.pipeline import best_effort, report
    if kind not in NO_NETWORKING:
        from minidock.net.firewall import fwcheck
        fwcheck.bind(ctx.exec_root)   # our rule removals keep the firewall known-good
    errors = best_effort([("restore_pid_ns", restore_pid_ns_for_children)])
    if kind == "bridge" and ctx.store.count("link"):
        from minidock.net.links import links
        errors += best_effort([("disableLinks", lambda: links.release(ctx, ctr))])
    if kind not in NO_NETWORKING:  # a resolver socket would keep the netns alive
        errors += best_effort([("stopResolver", lambda: _resolver_detach(ctx, ctr))])
    released = []
    for ep in eps.of_container(ctx.store, ctr["Id"]):
        doc = ctx.store.get("network", ep.network_id)
        released.append((nw.from_doc(doc) if doc else None, ep))
        errors += attach.release_endpoint(ctx, ep)
    ns = ctr.get("NetworkSettings") or {}
    if kind != "host" and ns.get("SandboxKey"):
        from minidock.net import sandbox
        errors += best_effort([("deleteSandbox", lambda: sandbox.destroy(_sandbox(ctx, ctr)))])
    errors += attach.delete_endpoints(ctx, released)
    clear_runtime_fields(ns)
    errors += best_effort([("save_network_settings", lambda: _save_settings(ctx, ctr))])
    return report(errors, "release_networking")


def forget_container(ctx: Context, ctr: Container) -> None:
    """rm: drop what the network side records about a removed container (idempotent)."""
    if ctx.store.count("link"):
        from minidock.net.links import links
        links.forget(ctx, ctr["Id"])


def _resolver_start(ctx: Context) -> None:
    """Start the embedded DNS resolver early so its startup overlaps the container's."""
    from minidock.net.dns import resolver
    resolver.start(ctx)


def _resolver_detach(ctx: Context, ctr: Container) -> None:
    # (resolver.Paths) Nothing to do, and no import of the client, when no resolver
    # runs and the container has no record (the resolver writes it before binding).
    # A running one is told even so: one that was started for this container and
    # never got its attach leaves at once instead of after its grace period.
    rdir = os.path.join(ctx.exec_root, "resolver")
    if not (os.path.exists(os.path.join(rdir, "ctl.sock"))
            or os.path.exists(os.path.join(rdir, "sandboxes", ctr["Id"]))):
        return
    from minidock.net.dns import resolver
    resolver.detach(ctx, ctr["Id"])


def _save_settings(ctx: Context, ctr: Container) -> None:
    """Persist the cleared NetworkSettings even if the caller saved the record before
    calling us (the monitor does); only that key of the stored record is replaced."""
    store = ctx.store
    with store.transaction():
        doc = store.get("container", ctr["Id"])
        if doc is not None:
            doc["NetworkSettings"] = ctr.get("NetworkSettings") or {}
            store.put("container", ctr["Id"], doc, name=doc["Name"].lstrip("/"))


def clear_runtime_fields(ns: dict[str, Any]) -> None:
    for entry in (ns.get("Networks") or {}).values():
        entry.update(EndpointID="", Gateway="", IPAddress="", IPPrefixLen=0, MacAddress="")
    ns.update(SandboxID="", SandboxKey="", Ports={})
    if "IPAddress" in ns:
        _set_top_level(ns)


def ports_of(ctr: Container) -> list[str]:
    """`minidock port NAME` lines ("80/tcp -> 0.0.0.0:8080")."""
    from minidock.net.ports.portmap import ports_of as lines
    return lines(ctr)
