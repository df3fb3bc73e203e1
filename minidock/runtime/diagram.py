"""`minidock network diagram`: the host's container network as a picture.

`gather(ctx, refs)` reads networks, endpoints and containers into plain data; `text`
draws it as a tree for the terminal and `dot` as Graphviz source (`--format svg` pipes
that through `dot -Tsvg`). Both renderers are pure:

    bridge  bridge minidock0  172.17.0.0/16  gateway 172.17.0.1
    ├─ db   veth1a2b3c4 ⇄ eth0  172.17.0.2/16  02:42:ac:11:00:02
    └─ web  veth5d6e7f8 ⇄ eth0  172.17.0.3/16  02:42:ac:11:00:03
         ports  0.0.0.0:8080->80/tcp
         link   db as al  (web's /etc/hosts: al db)

Each bridge network is drawn with its device, subnet and gateway; each container's
interface with its host-side veth and its end inside the container (ethN), address and
MAC; then its published ports, its legacy links (alias arrows: parent → child) and,
on user networks, the names the embedded DNS answers for it.
"""

from __future__ import annotations

from minidock.hints import Any

Model = dict[str, Any]


# -- reading the state ----------------------------------------------------------------

def gather(ctx: Any, refs: list[str] | None = None) -> Model:
    """Networks (all, or those `refs` name) with their endpoints and containers."""
    from minidock.net import controller
    from minidock.runtime import container as records
    docs = controller.list_networks(ctx)
    if refs:
        wanted = {controller.inspect_network(ctx, r)["Id"] for r in refs}
        docs = [d for d in docs if d["Id"] in wanted]
    ctrs = {c["Id"]: c for c in records.all_containers(ctx)}
    nets = [_network(ctx, doc, ctrs) for doc in docs]
    return {"networks": [n for n in nets if n["driver"] == "bridge" or n["containers"]]}


def _network(ctx: Any, doc: dict[str, Any], ctrs: dict[str, Any]) -> Model:
    from minidock.net import network as nw
    net = nw.from_doc(ctx.store.get("network", doc["Id"]) or {})
    cfg = ((doc.get("IPAM") or {}).get("Config") or [{}])[0]
    members = []
    for cid, ctr in sorted(ctrs.items(), key=lambda kv: kv[1]["Name"]):
        entry = ((ctr.get("NetworkSettings") or {}).get("Networks") or {}).get(doc["Name"])
        if entry is None or not ctr["State"].get("Running"):
            continue
        members.append(_member(ctx, doc, ctr, entry, ctrs))
    return {"name": doc["Name"], "id": doc["Id"], "driver": doc["Driver"],
            "device": _device(net) if doc["Driver"] == "bridge" else "",
            "subnet": cfg.get("Subnet", "") or net.subnet,
            "gateway": cfg.get("Gateway", "") or net.gateway,
            "internal": bool(doc.get("Internal")), "user": doc["Name"] not in (
                "bridge", "host", "none"), "containers": members}


def _device(net: Any) -> str:
    """The bridge device, from the bridge driver's state (br-<id> when none recorded)."""
    from minidock.net.network import OPT_BRIDGE_NAME
    return (net.state.get("bridge") or net.options.get(OPT_BRIDGE_NAME)
            or ("" if net.default else f"br-{net.id[:12]}"))


def _member(ctx: Any, doc: dict[str, Any], ctr: dict[str, Any], entry: dict[str, Any],
            ctrs: dict[str, Any]) -> Model:
    name = ctr["Name"].lstrip("/")
    veth, ifname = "", ""
    if entry.get("EndpointID"):
        ep = ctx.store.get("endpoint", entry["EndpointID"]) or {}
        veth, ifname = _endpoint_names(ep)
    ip = entry.get("IPAddress", "")
    user = doc["Name"] not in ("bridge", "host", "none")
    dns = [name, ctr["Id"][:12]] + [a for a in entry.get("Aliases") or []
                                   if a not in (name, ctr["Id"][:12])] if user and ip else []
    return {"name": name, "id": ctr["Id"], "ip": ip, "prefixlen": entry.get("IPPrefixLen", 0),
            "mac": entry.get("MacAddress", ""), "host_veth": veth, "ifname": ifname,
            "ports": _ports(ctr) if _gateway_entry(ctr, doc["Name"]) else [],
            "links": _links(ctr) if doc["Name"] == "bridge" else [], "dns": dns}


def _endpoint_names(doc: dict[str, Any]) -> tuple[str, str]:
    """(host veth, name inside the container) from a stored endpoint record."""
    from minidock.net import endpoint as eps
    try:
        ep = eps.from_doc(doc)
    except (KeyError, TypeError):
        return "", ""
    return str(ep.state.get("host_veth") or ""), ep.ifname


def _gateway_entry(ctr: dict[str, Any], net_name: str) -> bool:
    """Published ports belong to the network that gives the container its gateway."""
    nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
    with_gw = [n for n, e in nets.items() if e.get("Gateway")]
    return bool(with_gw) and with_gw[0] == net_name


def _ports(ctr: dict[str, Any]) -> list[str]:
    from minidock.runtime.psformat import ports_text
    text = ports_text(ctr)
    return [p for p in text.split(", ") if "->" in p]


def _links(ctr: dict[str, Any]) -> list[tuple[str, str]]:
    """(child name, alias) of each legacy link `ctr` holds ("/db:/web/al"); legacy
    links live on the default bridge only (elsewhere --link is a DNS alias)."""
    out = []
    for link in ctr["HostConfig"].get("Links") or []:
        child, _, alias_path = link.partition(":")
        out.append((child.lstrip("/"), alias_path.rsplit("/", 1)[-1]))
    return out


# -- text -------------------------------------------------------------------------------

def text(model: Model) -> str:
    out: list[str] = []
    for net in model["networks"]:
        out.append(_net_line(net))
        members = net["containers"]
        width = max((len(m["name"]) for m in members), default=0)
        for i, m in enumerate(members):
            last = i == len(members) - 1
            out.append(("└─ " if last else "├─ ") + _member_line(net, m, width))
            pad = "   " if last else "│  "
            out += [pad + "  " + line for line in _member_details(m)]
    return "\n".join(out) + ("\n" if out else "")


def _net_line(net: Model) -> str:
    if net["driver"] != "bridge":
        return f"{net['name']}  {net['driver']}"
    parts = [net["name"], f"bridge {net['device']}", net["subnet"],
             f"gateway {net['gateway']}" if net["gateway"] else ""]
    if net["internal"]:
        parts.append("internal")
    return "  ".join(p for p in parts if p)


def _member_line(net: Model, m: Model, width: int) -> str:
    if net["driver"] != "bridge":
        return m["name"]
    wire = f"{m['host_veth'] or '?'} ⇄ {m['ifname'] or '?'}"
    addr = f"{m['ip']}/{m['prefixlen']}" if m["ip"] else ""
    return "  ".join(p for p in [m["name"].ljust(width), wire, addr, m["mac"]] if p)


def _member_details(m: Model) -> list[str]:
    lines = []
    if m["ports"]:
        lines.append("ports  " + ", ".join(m["ports"]))
    for child, alias in m["links"]:
        lines.append(f"link   {child} as {alias}  ({m['name']}'s /etc/hosts: {alias} {child})"
                     if alias != child else f"link   {child}")
    if m["dns"]:
        lines.append("dns    " + ", ".join(m["dns"]))
    return lines


# -- Graphviz -------------------------------------------------------------------------

def _q(text: str) -> str:
    """A DOT string; `\\n` in `text` stays a line break (names never hold backslashes)."""
    return '"' + text.replace('"', '\\"') + '"'


def dot(model: Model) -> str:
    """Graphviz source: a cluster per network (its bridge a node inside), containers
    as boxes, one edge per interface, dashed arrows for links, ports as notes."""
    out = ["digraph minidock {", "  rankdir=LR;", '  node [fontname="monospace"];',
           '  edge [fontname="monospace", fontsize=10];']
    seen: set[str] = set()
    edges: list[str] = []
    for net in model["networks"]:
        nid = f"net_{net['id'][:12]}"
        label = "\\n".join(p for p in [net["name"], net["device"], net["subnet"],
                                      f"gateway {net['gateway']}" if net["gateway"] else ""] if p)
        out.append(f"  subgraph cluster_{net['id'][:12]} {{")
        out.append(f"    label={_q(net['name'] + ' (' + net['driver'] + ')')};")
        out.append(f"    {nid} [shape=ellipse, label={_q(label)}];")
        out.append("  }")
        for m in net["containers"]:
            cid = f"ctr_{m['id'][:12]}"
            if cid not in seen:
                seen.add(cid)
                out.append(f"  {cid} [shape=box, label={_q(m['name'])}];")
                edges += _container_edges(m, cid, model)
            wire = "\\n".join(p for p in [
                f"{m['host_veth']} ⇄ {m['ifname']}" if m["host_veth"] else "",
                m["ip"], "dns: " + ", ".join(m["dns"]) if m["dns"] else ""] if p)
            edges.append(f"  {nid} -> {cid} [dir=both, label={_q(wire)}];")
    out += edges
    out.append("}")
    return "\n".join(out) + "\n"


def _container_edges(m: Model, cid: str, model: Model) -> list[str]:
    ids = {c["name"]: f"ctr_{c['id'][:12]}" for n in model["networks"]
           for c in n["containers"]}
    edges = []
    for i, port in enumerate(m["ports"]):
        pid = f"{cid}_port{i}"
        host, _, inner = port.partition("->")
        edges.append(f"  {pid} [shape=note, label={_q(host)}];")
        edges.append(f"  {pid} -> {cid} [label={_q(inner)}];")
    for child, alias in m["links"]:
        if child in ids:
            edges.append(f"  {cid} -> {ids[child]} [style=dashed, label={_q('link ' + alias)}];")
    return edges
