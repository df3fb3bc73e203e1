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

STUB (runtime core): only `none` and `host` work; the networking core replaces this.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from minidock.errors import InvalidArgument

Container = dict[str, Any]

_HOSTS_DEFAULT = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def validate(ctx: Any, ctr: Container) -> None:
    mode = ctr["HostConfig"].get("NetworkMode") or "default"
    if mode not in ("none", "host", "default", "bridge"):
        raise InvalidArgument(f"network {mode} not found")


def netns_mode(ctx: Any, ctr: Container) -> tuple[str, str | None]:
    return ("host", None) if ctr["HostConfig"].get("NetworkMode") == "host" else ("new", None)


def initialize_networking(ctx: Any, ctr: Container, p: Any) -> None:
    cdir = ctx.container_dir(ctr["Id"])
    mode = ctr["HostConfig"].get("NetworkMode")
    if mode == "host":
        ctr["Config"]["Hostname"] = socket.gethostname()
    hostname = ctr["Config"]["Hostname"]
    files = {
        "hostname": hostname + "\n",
        "hosts": _read("/etc/hosts") if mode == "host" else _HOSTS_DEFAULT,
        "resolv.conf": _read("/etc/resolv.conf"),
    }
    for name, text in files.items():
        with open(os.path.join(cdir, name), "w") as fh:
            fh.write(text)
    ctr["HostnamePath"] = os.path.join(cdir, "hostname")
    ctr["HostsPath"] = os.path.join(cdir, "hosts")
    ctr["ResolvConfPath"] = os.path.join(cdir, "resolv.conf")


def prestart(ctx: Any, ctr: Container, pid: int, p: Any) -> None:
    return None


def release_networking(ctx: Any, ctr: Container) -> None:
    return None


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""
