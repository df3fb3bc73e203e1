"""`volume create | ls | inspect | rm | prune`, with Docker's output formats.

The logic is in minidock.runtime.volumes; this module parses and prints.
"""

from __future__ import annotations

import json
import sys
from minidock.hints import TYPE_CHECKING, Any

from minidock.cli.containers import parser
from minidock.cli.networks import table
from minidock.errors import InvalidArgument, MinidockError

if TYPE_CHECKING:
    from minidock.context import Context

USAGE = """Usage:  minidock volume COMMAND

Manage volumes

Commands:
  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove all unused local volumes
  rm          Remove one or more volumes
"""


def cmd_volume(ctx: Context, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 1
    sub, rest = argv[0], argv[1:]
    fn = {"create": _create, "ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm,
          "remove": _rm, "prune": _prune}.get(sub)
    if fn is None:
        print(f"minidock: 'volume {sub}' is not a minidock command.\nSee 'minidock volume --help'",
              file=sys.stderr)
        return 1
    return fn(ctx, rest)


def _create(ctx: Context, argv: list[str]) -> int:
    from minidock import ids
    from minidock.runtime import volumes
    ap = parser("volume create", "Create a volume")
    ap.add_argument("-d", "--driver", default="local")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("-o", "--opt", action="append", default=[])
    ap.add_argument("name", nargs="?")
    args = ap.parse_args(argv)
    if args.driver != "local":
        raise InvalidArgument(f'create {args.name or ""}: error looking up volume plugin '
                              f'{args.driver}: plugin "{args.driver}" not found')
    if args.opt:
        raise InvalidArgument(f"create {args.name or ''}: options of the local driver "
                              f"are not supported: {', '.join(args.opt)}")
    name = args.name or ids.new_id()
    labels = dict(item.partition("=")[::2] for item in args.label)
    volumes.ensure(ctx, name, labels)
    print(name)
    return 0


def _ls(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import volumes
    ap = parser("volume ls", "List volumes")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("-f", "--filter", action="append", default=[])
    ap.add_argument("--format", default="")
    args = ap.parse_args(argv)
    docs = volumes.listing(ctx)
    for flt in args.filter:
        docs = _filter(ctx, docs, flt)
    if args.quiet:
        sys.stdout.write("".join(d["Name"] + "\n" for d in docs))
    elif args.format:
        from minidock.runtime.template import render
        for d in docs:
            print(render(args.format, d))
    else:
        sys.stdout.write(table([["DRIVER", "VOLUME NAME"],
                                *[[d["Driver"], d["Name"]] for d in docs]]))
    return 0


def _filter(ctx: Context, docs: list[dict[str, Any]], flt: str) -> list[dict[str, Any]]:
    """Docker's filters dangling=, name=, driver=, label=."""
    from minidock.runtime import volumes
    key, _, value = flt.partition("=")
    if key == "dangling":
        want = value.lower() in ("true", "1")
        return [d for d in docs if (not volumes.users(ctx, d["Name"])) == want]
    if key == "name":
        return [d for d in docs if value in d["Name"]]
    if key == "driver":
        return [d for d in docs if d["Driver"] == value]
    if key == "label":
        k, eq, v = value.partition("=")
        return [d for d in docs if k in (d.get("Labels") or {})
                and (not eq or d["Labels"][k] == v)]
    raise InvalidArgument(f"Invalid filter '{key}'")


def _inspect(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import volumes
    ap = parser("volume inspect", "Display detailed information on one or more volumes")
    ap.add_argument("-f", "--format", default="")
    ap.add_argument("volumes", nargs="+")
    args = ap.parse_args(argv)
    docs, status = [], 0
    for name in args.volumes:
        try:
            docs.append(volumes.inspect(ctx, name))
        except MinidockError as err:
            print(f"Error: {err}", file=sys.stderr)
            status = 1
    if args.format:
        from minidock.runtime.template import render
        for d in docs:
            print(render(args.format, d))
    elif docs or not status:
        print(json.dumps(docs, indent=4))
    return status


def _rm(ctx: Context, argv: list[str]) -> int:
    from minidock.cli.parser import for_each
    from minidock.runtime import volumes
    ap = parser("volume rm", "Remove one or more volumes")
    ap.add_argument("-f", "--force", action="store_true")
    ap.add_argument("volumes", nargs="+")
    args = ap.parse_args(argv)

    def one(name: str) -> None:
        volumes.remove(ctx, name, args.force)
        print(name)
    return for_each(args.volumes, one)


def _prune(ctx: Context, argv: list[str]) -> int:
    from minidock.cli.parser import confirm
    from minidock.image.humanize import human_size
    from minidock.runtime import volumes
    ap = parser("volume prune", "Remove all unused local volumes")
    ap.add_argument("-f", "--force", action="store_true")
    args = ap.parse_args(argv)
    if not args.force and not confirm(
            "This will remove all local volumes not used by at least one container."):
        return 0
    gone = volumes.prune(ctx)
    if gone:
        sys.stdout.write("Deleted Volumes:\n" + "".join(n + "\n" for n, _ in gone) + "\n")
    print(f"Total reclaimed space: {human_size(sum(s for _, s in gone))}")
    return 0
