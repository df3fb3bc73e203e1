"""`ps`: Docker's flags, filters and templates over the container listing.

A plain `ps` (-a, -q, --no-trunc) is the listing benchmarked at 3,000 containers
(README "Performance"): it reads the store's briefs table (runtime/listing.py), parses
its flags by hand and imports neither argparse nor the container commands' module;
filters and templates read whole documents.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from minidock.context import Container, Context


def _ps_documents(ctx: Context, all_: bool, filters: dict[str, list[str]]) -> list[Container]:
    """Containers for a filtered or templated `ps`, newest first, as whole records."""
    from minidock.runtime.lifecycle import refresh_all
    from minidock.runtime import psformat
    ctrs = refresh_all(ctx)
    if not (all_ or "status" in filters or "exited" in filters):
        ctrs = [c for c in ctrs if c["State"].get("Running") or c["State"].get("Restarting")]
    if filters:
        ctrs = psformat.filter_containers(ctrs, filters)
    ctrs.sort(key=lambda c: c["Created"], reverse=True)
    return ctrs


def plain_ps_flags(argv: list[str]) -> tuple[bool, bool, bool] | None:
    """(all, quiet, no_trunc) of a `ps` that has only those flags (-a, -q, --all,
    --quiet, --no-trunc, bundles like -aq), parsed without argparse: its import, its
    parser and its first gettext call (which imports locale) are ~5 ms of a plain
    `ps`. None for anything else (filters, templates, help, errors): argparse."""
    flags = {"all": False, "quiet": False, "no_trunc": False}
    for arg in argv:
        if arg in ("--all", "--quiet", "--no-trunc"):
            flags[arg[2:].replace("-", "_")] = True
        elif arg[:1] == "-" and arg[1:2] not in ("", "-") and not arg[1:].strip("aq"):
            flags["all"] = flags["all"] or "a" in arg
            flags["quiet"] = flags["quiet"] or "q" in arg
        else:
            return None
    return flags["all"], flags["quiet"], flags["no_trunc"]


def cmd_ps(ctx: Context, argv: list[str]) -> int:
    plain = plain_ps_flags(argv)
    if plain is not None:
        return _plain_ps(ctx, *plain)
    from minidock.cli.containers import parser
    from minidock.runtime import psformat
    p = parser("ps", "List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output (id, name, label, status, exited, ancestor, network)")
    p.add_argument("--format", default="", help="Go template, 'table TEMPLATE' or 'json'")
    ns = p.parse_args(argv)
    filters = {}
    if ns.filter:
        from minidock.runtime.listformat import parse_filters
        filters = parse_filters(ns.filter, psformat.PS_FILTERS)
    if not (filters or ns.format):
        return _plain_ps(ctx, ns.all, ns.quiet, ns.no_trunc)
    ctrs = _ps_documents(ctx, ns.all, filters)     # any field may be read: documents
    if ns.quiet:
        sys.stdout.write("".join((c["Id"] if ns.no_trunc else c["Id"][:12]) + "\n"
                                 for c in ctrs))
        return 0
    if not ns.format:
        sys.stdout.write(psformat.ps_table(ctrs, no_trunc=ns.no_trunc))
        return 0
    import time
    from minidock.runtime.listformat import render
    now = time.time()
    rows = [psformat.ps_row(c, now, ns.no_trunc) for c in ctrs]
    sys.stdout.write(render(ns.format, rows, psformat.PS_HEADERS,
                            lambda _r: psformat.ps_table(ctrs, no_trunc=ns.no_trunc, now=now)))
    return 0


def _plain_ps(ctx: Context, all_: bool, quiet: bool, no_trunc: bool) -> int:
    """`ps` without filters or template: from the store's briefs table, no document
    decoded; `-q` reads its columns alone (no brief)."""
    from minidock.runtime import listing
    if quiet:
        ids = listing.container_ids(ctx, all_)
        sys.stdout.write("".join((i if no_trunc else i[:12]) + "\n" for i in ids))
        return 0
    from minidock.runtime.psformat import brief_table
    sys.stdout.write(brief_table(listing.containers(ctx, all_), no_trunc))
    return 0
