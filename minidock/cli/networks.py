"""`minidock network ...`: parse, call the controller, print (no logic here).

Output formats are Docker's: `network ls` columns as reference/network-ls.txt (a
tabwriter with min width 10 and padding 3), `create` prints the id, `rm` the names,
`prune` "Deleted Networks:" and the names, `inspect` a JSON array.
"""

from __future__ import annotations

import json
import sys
from minidock.hints import TYPE_CHECKING, Any

from minidock.cli.parser import confirm, parser
from minidock.errors import InvalidArgument, MinidockError

if TYPE_CHECKING:
    from minidock.context import Context

USAGE = """Usage:  minidock network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  diagram     Draw the networks, their containers, ports and links
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks
"""


def cmd_network(ctx: Context, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 1
    sub, rest = argv[0], argv[1:]
    fn = {"ls": _ls, "list": _ls, "create": _create, "rm": _rm, "remove": _rm,
          "inspect": _inspect, "prune": _prune, "connect": _connect,
          "disconnect": _disconnect, "diagram": _diagram}.get(sub)
    if fn is None:
        print(f"minidock: 'network {sub}' is not a minidock command.\nSee 'minidock network --help'",
              file=sys.stderr)
        return 1
    return fn(ctx, rest)


def table(rows: list[list[str]]) -> str:
    """Docker's tabwriter: each column but the last padded to max(10, widest + 3)."""
    if not rows:
        return ""
    widths = [max(10, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n" for r in rows)


NET_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
               "CreatedAt": "CREATED AT"}
NET_FILTERS = ("name", "id", "driver", "type", "label", "scope")


def _ls(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.listformat import parse_filters
    from minidock.net import controller
    ap = parser("network ls", "List networks")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("--no-trunc", action="store_true")
    ap.add_argument("-f", "--filter", action="append", default=[],
                    help="filter output (name, id, driver, type, label, scope)")
    ap.add_argument("--format", default="", help="Go template, 'table TEMPLATE' or 'json'")
    args = ap.parse_args(argv)
    filters = parse_filters(args.filter, NET_FILTERS)
    # filters and templates may read any field; the plain listing reads only briefs
    full = bool(filters or args.format)
    nets = [d for d in controller.list_networks(ctx, brief=not full) if _matches(d, filters)]
    ident = (lambda d: d["Id"]) if args.no_trunc else (lambda d: d["Id"][:12])
    if args.quiet:
        sys.stdout.write("".join(ident(d) + "\n" for d in nets))
        return 0

    def default(_rows: list[Any]) -> str:
        rows = [["NETWORK ID", "NAME", "DRIVER", "SCOPE"]]
        rows += [[ident(d), d["Name"], d["Driver"], d["Scope"]] for d in nets]
        return table(rows)
    if not args.format:
        sys.stdout.write(default([]))
        return 0
    from minidock.runtime.listformat import render
    sys.stdout.write(render(args.format, [net_row(d, ident(d)) for d in nets], NET_HEADERS,
                            default))
    return 0


def net_row(doc: dict[str, Any], ident: str) -> dict[str, str]:
    """The fields of a `network ls --format` template (docker/cli's networkContext)."""
    from minidock.runtime.listformat import labels_text
    from minidock.runtime.psformat import created_at
    return {"CreatedAt": created_at(doc["Created"]) if doc.get("Created") else "",
            "Driver": doc["Driver"], "ID": ident,
            "IPv6": "true" if doc.get("EnableIPv6") else "false",
            "Internal": "true" if doc.get("Internal") else "false",
            "Labels": labels_text(doc.get("Labels")), "Name": doc["Name"],
            "Scope": doc["Scope"]}


def _matches(doc: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's network filters: one key's values are alternatives, keys all apply."""
    from minidock.runtime.listformat import labels_match, matches_text
    for value in filters.get("type", []):
        if value not in ("builtin", "custom"):
            raise InvalidArgument(f"invalid filter: 'type'='{value}'")
    builtin = doc["Name"] in ("bridge", "host", "none")
    tests = {
        "name": lambda v: matches_text(v, doc["Name"]),
        "id": lambda v: doc["Id"].startswith(v),
        "driver": lambda v: doc["Driver"] == v,
        "scope": lambda v: doc["Scope"] == v,
        "type": lambda v: (v == "builtin") == builtin,
    }
    if "label" in filters and not labels_match(doc.get("Labels"), filters["label"]):
        return False
    return all(any(tests[k](v) for v in vs) for k, vs in filters.items() if k in tests)


def _create(ctx: Context, argv: list[str]) -> int:
    from minidock.net import controller
    ap = parser("network create", "Create a network")
    ap.add_argument("-d", "--driver", default="bridge",
                    help='Driver to manage the Network (default "bridge"; "overlay" spans hosts, '
                         'with "cluster-store" and "cluster-advertise" in daemon.json)')
    ap.add_argument("--subnet", action="append", default=[])
    ap.add_argument("--gateway", action="append", default=[])
    ap.add_argument("--ip-range", action="append", default=[])
    ap.add_argument("--internal", action="store_true")
    ap.add_argument("--ipv6", action="store_true", help="Enable IPv6 networking")
    ap.add_argument("-o", "--opt", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--ipam-driver", default="default",
                    help="IP address management driver (a plugin name, or default)")
    ap.add_argument("--ipam-opt", action="append", default=[],
                    help="set IPAM driver specific options (key=value)")
    ap.add_argument("--aux-address", action="append", default=[],
                    help="auxiliary IPv4 address used by the network driver (name=ip)")
    ap.add_argument("name")
    args = ap.parse_args(argv)
    from minidock.net.ipam6 import split_families
    (s4, g4, r4), (s6, g6, r6) = split_families(args.subnet, args.gateway, args.ip_range)
    nid = controller.create_network(
        ctx, args.name, args.driver, s4, g4, r4, args.internal, _kv(args.opt), _kv(args.label),
        args.ipam_driver, _kv(args.ipam_opt), _kv(args.aux_address),
        ipv6=args.ipv6, subnet6=s6, gateway6=g6, ip_range6=r6)
    print(nid)
    return 0


def _kv(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _rm(ctx: Context, argv: list[str]) -> int:
    from minidock.net import controller
    ap = parser("network rm", "Remove one or more networks")
    ap.add_argument("networks", nargs="+")
    args = ap.parse_args(argv)
    from minidock.cli.parser import for_each

    def one(ref: str) -> None:
        controller.remove_network(ctx, ref)
        print(ref)
    return for_each(args.networks, one)


def _inspect(ctx: Context, argv: list[str]) -> int:
    from minidock.net import controller
    ap = parser("network inspect", "Display detailed information on one or more networks")
    ap.add_argument("-f", "--format", default="")
    ap.add_argument("networks", nargs="+")
    args = ap.parse_args(argv)
    docs, status = [], 0
    for ref in args.networks:
        try:
            docs.append(controller.inspect_network(ctx, ref))
        except MinidockError as err:
            print(f"Error: {err}", file=sys.stderr)
            status = 1
    if args.format:
        render = _template()
        for doc in docs:
            print(render(args.format, doc))
    elif docs or not status:
        print(json.dumps(docs, indent=4))
    return status


def _template() -> Any:
    from minidock.runtime.template import render
    return render


def _prune(ctx: Context, argv: list[str]) -> int:
    from minidock.net import controller
    ap = parser("network prune", "Remove all unused networks")
    ap.add_argument("-f", "--force", action="store_true")
    args = ap.parse_args(argv)
    if not args.force and not confirm(
            "This will remove all custom networks not used by at least one container."):
        return 0
    names = controller.prune_networks(ctx)
    if names:
        sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in names))
    return 0


def _connect(ctx: Context, argv: list[str]) -> int:
    from minidock.net import connect
    ap = parser("network connect", "Connect a container to a network")
    ap.add_argument("--alias", action="append", default=[])
    ap.add_argument("--ip", default="")
    ap.add_argument("network")
    ap.add_argument("container")
    args = ap.parse_args(argv)
    connect.connect(ctx, args.network, args.container, args.alias, args.ip)
    return 0


def _disconnect(ctx: Context, argv: list[str]) -> int:
    from minidock.net import connect
    ap = parser("network disconnect", "Disconnect a container from a network")
    ap.add_argument("-f", "--force", action="store_true")
    ap.add_argument("network")
    ap.add_argument("container")
    args = ap.parse_args(argv)
    connect.disconnect(ctx, args.network, args.container, args.force)
    return 0


def _diagram(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import diagram
    ap = parser("network diagram", "Draw the networks, their containers, ports and links "
                "(a tree; Graphviz with --format dot or svg)")
    ap.add_argument("--format", choices=["text", "dot", "svg"], default="text")
    ap.add_argument("networks", nargs="*")
    args = ap.parse_args(argv)
    model = diagram.gather(ctx, args.networks)
    if args.format == "text":
        sys.stdout.write(diagram.text(model))
        return 0
    source = diagram.dot(model)
    if args.format == "dot":
        sys.stdout.write(source)
        return 0
    import shutil
    import subprocess
    exe = shutil.which("dot")
    if exe is None:
        raise InvalidArgument("--format svg needs Graphviz's dot: install the graphviz "
                              "package, or use --format dot")
    out = subprocess.run([exe, "-Tsvg"], input=source.encode(), capture_output=True)
    if out.returncode != 0:
        raise MinidockError(f"dot: {out.stderr.decode(errors='replace').strip()}")
    sys.stdout.buffer.write(out.stdout)
    return 0
