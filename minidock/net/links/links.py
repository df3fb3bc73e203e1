"""Legacy links (`--link name[:alias]`): the article's last section, end to end.

A link joins a receiving container (the *parent*, e.g. `web`) to a source container
(the *child*, `db`) on the default bridge. It does three things, each built by a pure
function and applied here:

1. environment: `WEBDB_NAME=/web/webdb`, `WEBDB_PORT_5432_TCP=...`, `WEBDB_ENV_doc=...`
   (net/links/env.py) — set once, when the parent starts; stale after a child restart, as
   in Docker;
2. `/etc/hosts` of the parent: `<childIP>\\t<alias> <childHostname> <childName>`
   (net/links/env.py `link_hosts_entry`); when the child restarts with a new address every
   running parent's hosts file is patched (the article's updateParentHosts);
3. with `icc: false`, for every exposed port of the child the ACCEPT pair
   (net/links/rules.py): parent -> child `--dport`, child -> parent `--sport`.

Lifecycle (every verb has its inverse):

    create   normalize()        specs resolved: HostConfig.Links = ["/db:/web/webdb"]
    start    on_parent_start()  checks, env, hosts entries, link records
             program()          ACCEPT pairs (icc=false) once the parent has its address
             on_child_start()   parents' hosts patched, their pairs follow the new address
    stop/rm  release()          pairs removed on either side; records of a parent go on rm

Records: store kind "link", id "<parentId>/<alias>", doc {Parent, Child, Alias, Rules}
where Rules is the exact list that was applied, so removal deletes precisely those.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Conflict, InvalidArgument, NotFound

if TYPE_CHECKING:
    from minidock.context import Container, Context

KIND = "link"


def _name(ctr: Container) -> str:
    return ctr["Name"].lstrip("/")


def _bridge_ip(ctr: Container) -> str:
    nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
    return (nets.get("bridge") or {}).get("IPAddress") or ""


def _bridge_ip6(ctr: Container) -> str:
    nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
    return (nets.get("bridge") or {}).get("GlobalIPv6Address") or ""


def _exposed(ctr: Container) -> list[tuple[int, str]]:
    out = []
    for key in (ctr["Config"].get("ExposedPorts") or {}):
        port, _, proto = key.partition("/")
        out.append((int(port), proto or "tcp"))
    return out


def parse_stored(value: str) -> tuple[str, str]:
    """'/db:/web/webdb' -> ('db', 'webdb')."""
    child, _, link = value.partition(":")
    return child.lstrip("/"), link.rsplit("/", 1)[-1]


def normalize(ctx: Context, ctr: Container, on_default_bridge: bool) -> None:
    """Resolve every `--link` spec at create; store them as Docker shows them.

    On a user-defined network a link is only a DNS alias the linker sees (no env, no
    hosts line, no rules); the child must exist either way.
    """
    from minidock.net.links.env import parse_link
    specs = ctr["HostConfig"].get("Links") or []
    out = []
    for spec in specs:
        if spec.startswith("/") and ":/" in spec:
            out.append(spec)
            continue
        name, alias = parse_link(spec)
        try:
            cid, child = ctx.store.lookup("container", name, "container")
        except NotFound as err:
            raise NotFound(f"could not get container for {name}: No such container: {name}") from err
        if cid == ctr["Id"]:
            raise InvalidArgument(f"cannot link to itself: {name}")
        out.append(f"/{_name(child)}:/{_name(ctr)}/{alias}")
    if out:
        ctr["HostConfig"]["Links"] = out


def _children(ctx: Context, ctr: Container) -> list[tuple[str, str, Container]]:
    """(alias, child id, child doc) for every link of `ctr`, checked as at start."""
    out = []
    for value in ctr["HostConfig"].get("Links") or []:
        name, alias = parse_stored(value)
        try:
            cid, child = ctx.store.lookup("container", name, "container")
        except NotFound as err:
            raise NotFound(f"could not get container for {name}: No such container: {name}") from err
        if not child["State"].get("Running"):
            raise Conflict(f"Cannot link to a non running container: /{name} AS "
                           f"/{_name(ctr)}/{alias}")
        if not _bridge_ip(child):
            raise Conflict(f"Cannot link to /{name}, as it does not belong to the default network")
        out.append((alias, cid, child))
    return out


def on_parent_start(ctx: Context, ctr: Container, p: Any) -> list[tuple[str, str]]:
    """Check the links, set the link env (ctr["_LinkEnv"]), record them; hosts entries out."""
    from minidock.net.links.env import link_env, link_hosts_entry
    children = _children(ctx, ctr)
    env: list[str] = []
    hosts: list[tuple[str, str]] = []
    for alias, cid, child in children:
        ip = _bridge_ip(child)
        env += link_env(_name(ctr), alias, _name(child), ip, _exposed(child),
                        list(child["Config"].get("Env") or []))
        hosts.append(link_hosts_entry(alias, child["Config"]["Hostname"], _name(child), ip))
        if _bridge_ip6(child):      # Docker writes the child's IPv6 line too (no env)
            hosts.append(link_hosts_entry(alias, child["Config"]["Hostname"], _name(child),
                                          _bridge_ip6(child)))
    ctr["_LinkEnv"] = env
    from minidock import pipeline
    if pipeline.TRACING:
        for alias, cid, child in children:
            pipeline.note("+", "link", f"{_name(ctr)} -> {_name(child)} as {alias} "
                                       f"({alias.upper().replace('-', '_')}_* env, hosts entry)")
    if children:
        with ctx.store.transaction() as st:
            for alias, cid, _child in children:
                st.put(KIND, f"{ctr['Id']}/{alias}",
                       {"Parent": ctr["Id"], "Child": cid, "Alias": alias, "Rules": []})
        p.undo("link_records", _drop_rules_of, ctx, ctr["Id"], "Parent")
    return hosts


def _rules_enabled(ctx: Context) -> bool:
    cfg = ctx.config
    return cfg.iptables and not cfg.icc


def program(ctx: Context, ctr: Container, p: Any) -> None:
    """Add the ACCEPT pairs of every link of the starting parent (icc=false only)."""
    if not _rules_enabled(ctx):
        return
    records = [(lid, doc) for lid, doc in _records(ctx, "Parent", ctr["Id"])]
    if not records:
        return
    parent_ip = _bridge_ip(ctr)
    for lid, doc in records:
        child = ctx.store.get("container", doc["Child"])
        if child and parent_ip and _bridge_ip(child):
            _set_rules(ctx, lid, doc, parent_ip, _bridge_ip(child), _exposed(child))
    p.undo("link_rules", _drop_rules_of, ctx, ctr["Id"], "Parent")


def _set_rules(ctx: Context, lid: str, doc: dict[str, Any], parent_ip: str, child_ip: str,
               exposed: list[tuple[int, str]]) -> None:
    """Replace the link's applied pair with the one for these addresses."""
    from minidock.net.links.rules import link_rules
    from minidock.net.firewall import iptables
    old = iptables.from_data(doc.get("Rules") or [])
    new = link_rules(ctx.config.bridge_name, parent_ip, child_ip, exposed)
    if old == new:
        return
    if old:
        iptables.remove(old)
    if new:
        iptables.apply(new)
    doc["Rules"] = iptables.to_data(new)
    with ctx.store.transaction() as st:
        st.put(KIND, lid, doc)


def _records(ctx: Context, role: str, cid: str) -> list[tuple[str, dict[str, Any]]]:
    return [(lid, doc) for lid, doc in ctx.store.list(KIND) if doc.get(role) == cid]


def _drop_rules_of(ctx: Context, cid: str, role: str) -> None:
    """Remove the applied pairs of every link where `cid` plays `role` (idempotent,
    best-effort: one link's failure does not keep the others' rules in place)."""
    from minidock.net.firewall import iptables
    from minidock.pipeline import best_effort

    def drop(lid: str, doc: dict[str, Any]) -> None:
        rules = iptables.from_data(doc.get("Rules") or [])
        if rules:
            iptables.remove(rules)
            doc["Rules"] = []
            with ctx.store.transaction() as st:
                st.put(KIND, lid, doc)
    errors = best_effort([("drop_link_rules", lambda lid=lid, doc=doc: drop(lid, doc))
                          for lid, doc in _records(ctx, role, cid)], "link")
    if errors:
        from minidock.errors import Internal
        raise Internal("; ".join(errors))


def on_child_start(ctx: Context, child: Container) -> None:
    """updateParentHosts: every running parent sees the child's new address at once."""
    records = _records(ctx, "Child", child["Id"])
    if not records:
        return
    from minidock.net.dns.etchosts import update_parent_hosts
    ip = _bridge_ip(child)
    for lid, doc in records:
        parent = ctx.store.get("container", doc["Parent"])
        if not parent or not parent["State"].get("Running") or not ip:
            continue
        path = parent.get("HostsPath")
        if path and os.path.exists(path):
            with open(path) as fh:
                old = fh.read()
            new = update_parent_hosts(old, doc["Alias"], ip)
            if _bridge_ip6(child):
                new = update_parent_hosts(new, doc["Alias"], _bridge_ip6(child))
            rewrite_in_place(path, old, new)
            from minidock import pipeline
            if pipeline.TRACING:
                pipeline.note("+", "hosts", f"{ip} {doc['Alias']} in {_name(parent)}'s {path}")
        if _rules_enabled(ctx) and _bridge_ip(parent):
            _set_rules(ctx, lid, doc, _bridge_ip(parent), ip, _exposed(child))


def rewrite_in_place(path: str, old: str, new: str) -> None:
    """Replace a bind-mounted file's content without ever exposing a partial file.

    The file is bind-mounted into a running container, so it cannot be renamed over
    (the mount pins the inode). One pwrite() of the new text, padded with newlines to
    at least the old length, changes it in a single call: readers see the old or the
    new hosts file, never a truncated one (blank lines are legal in /etc/hosts).
    """
    if new == old:
        return
    data = new.encode()
    pad = len(old.encode()) - len(data)
    if pad > 0:
        data += b"\n" * pad
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def release(ctx: Context, ctr: Container) -> None:
    """Stop/exit of either side: remove the pairs it takes part in (idempotent)."""
    if not ctx.store.count(KIND):
        return
    _drop_rules_of(ctx, ctr["Id"], "Parent")
    _drop_rules_of(ctx, ctr["Id"], "Child")


def forget(ctx: Context, cid: str) -> None:
    """rm: drop the link records of a removed parent (its rules are already gone)."""
    if not ctx.store.count(KIND):
        return
    _drop_rules_of(ctx, cid, "Parent")
    _drop_rules_of(ctx, cid, "Child")
    with ctx.store.transaction() as st:
        for lid, _doc in _records(ctx, "Parent", cid):
            st.delete(KIND, lid)


def forget_rules(ctx: Context) -> None:
    """After a reboot no rule of any link exists any more: the records say so."""
    with ctx.store.transaction() as st:
        for lid, doc in st.list(KIND):
            if doc.get("Rules"):
                doc["Rules"] = []
                st.put(KIND, lid, doc)


def user_network_aliases(ctx: Context, ctr: Container) -> None:
    """On a user-defined network a link is only a DNS alias that the linker resolves."""
    from minidock.net.dns import dnsrecords
    targets = {}
    for value in ctr["HostConfig"].get("Links") or []:
        name, alias = parse_stored(value)
        cid, _child = ctx.store.lookup("container", name, "container")
        targets[alias] = cid
    for entry in (ctr["NetworkSettings"].get("Networks") or {}).values():
        if entry.get("NetworkID"):
            dnsrecords.set_links(ctx.store, entry["NetworkID"], ctr["Id"], targets)
