"""`system prune`, `system info` (also `info`) and `version`."""

from __future__ import annotations

import os
import sys
from minidock.hints import TYPE_CHECKING

from minidock.cli.parser import confirm, parser, report
from minidock.errors import MinidockError

if TYPE_CHECKING:
    from minidock.context import Context


def cmd_version(ctx: Context, argv: list[str]) -> int:
    from minidock import __version__
    print(f"minidock version {__version__}")
    return 0


def cmd_system(ctx: Context, argv: list[str]) -> int:
    if argv and argv[0] == "info":
        return cmd_info(ctx, argv[1:], "system info")
    p = parser("system", "Manage minidock")
    p.add_argument("action", choices=["prune", "info"])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    ns = p.parse_args(argv)
    if not ns.force and not confirm("This will remove all stopped containers."):
        return 0
    return _prune(ctx)


def cmd_info(ctx: Context, argv: list[str], prog: str = "info") -> int:
    """`docker info` for the network side: roots, default bridge, firewall, counts."""
    p = parser(prog, "Display system-wide information")
    p.add_argument("-f", "--format", default="", help="Go template ('{{json .}}' for all)")
    ns = p.parse_args(argv)
    from minidock import info
    doc = info.gather(ctx)
    if ns.format:
        from minidock.runtime.template import render
        print(render(ns.format.replace("\\t", "\t").replace("\\n", "\n"), doc))
    else:
        sys.stdout.write(info.text(doc))
    return 0


def _prune(ctx: Context) -> int:
    from minidock import reconcile
    from minidock.runtime import container as records
    from minidock.runtime.lifecycle import refresh, remove
    repaired = reconcile.reconcile_all(ctx)
    if os.environ.get("MINIDOCK_DEBUG"):
        for line in repaired:
            print(f"minidock: reconciled: {line}", file=sys.stderr)
    removed = []
    for ctr in records.all_containers(ctx):
        try:
            ctr = refresh(ctx, ctr)
        except MinidockError:
            continue
        if ctr["State"].get("Running"):
            continue
        try:
            remove(ctx, ctr, force=False)
            removed.append(ctr["Id"])
        except MinidockError as err:
            report(err)
    if removed:
        print("Deleted Containers:")
        for cid in removed:
            print(cid)
        print()
    print("Total reclaimed space: 0B")
    return 0
