"""`inspect [-f FORMAT] [--type T] NAME...`: containers, images, networks, volumes.

Docker tries each kind in that order for a bare name; `--type` restricts it. The
documents come from their owners (runtime records, image store, network controller);
this module only finds them and prints: a JSON array indented by 4, or with -f one
rendered template per object.
"""

from __future__ import annotations

import sys
from minidock.hints import TYPE_CHECKING, Any, Callable

from minidock.cli.containers import parser
from minidock.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from minidock.context import Context

_KINDS = ("container", "image", "network", "volume")


def _container(ctx: Context, ref: str) -> dict[str, Any]:
    from minidock.runtime import container as records
    from minidock.runtime.lifecycle import refresh
    return records.public(refresh(ctx, records.load(ctx, ref)))


def _image(ctx: Context, ref: str) -> dict[str, Any]:
    from minidock.image.store import inspect
    return inspect(ctx, ref)


def _network(ctx: Context, ref: str) -> dict[str, Any]:
    from minidock.net.controller import inspect_network
    return inspect_network(ctx, ref)


def _volume(ctx: Context, ref: str) -> dict[str, Any]:
    from minidock.runtime.volumes import inspect
    return inspect(ctx, ref)


FINDERS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "container": _container, "image": _image, "network": _network, "volume": _volume}


def find(ctx: Context, ref: str, kind: str | None) -> dict[str, Any]:
    """The first kind that knows `ref`; Docker's `No such object` otherwise."""
    for k in ([kind] if kind else _KINDS):
        try:
            return FINDERS[k](ctx, ref)
        except NotFound:
            continue
    raise NotFound(f"No such {kind or 'object'}: {ref}")


def cmd_inspect(ctx: Context, argv: list[str]) -> int:
    p = parser("inspect", "Return low-level information on Docker objects")
    p.add_argument("-f", "--format")
    p.add_argument("--type", choices=_KINDS)
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("names", nargs="+")
    ns = p.parse_args(argv)
    found: list[dict[str, Any]] = []
    status = 0
    for ref in ns.names:
        try:
            found.append(find(ctx, ref, ns.type))
        except NotFound as err:
            print(f"Error: {err}", file=sys.stderr)
            status = 1
    if ns.format:
        from minidock.runtime.template import render
        for doc in found:
            try:
                sys.stdout.write(render(ns.format, doc) + "\n")
            except InvalidArgument as err:
                print(f"{err}", file=sys.stderr)
                return 1
    else:
        import json
        print(json.dumps(found, indent=4))
    return status
