"""Finding a plugin by name, as Docker's pkg/plugins does (discovery.go), plus
minidock's own search path.

Search order for NAME (the first hit wins):

    each directory of MINIDOCK_PLUGIN_PATH (colon-separated), in order:
        NAME.sock, NAME/NAME.sock, NAME.spec, NAME/NAME.spec, NAME.json, NAME/NAME.json
    /run/docker/plugins:      NAME.sock, NAME/NAME.sock     (only unix sockets count)
    /etc/docker/plugins, then /usr/lib/docker/plugins:
        NAME.spec, NAME/NAME.spec, NAME.json, NAME/NAME.json

A `.spec` file holds one URL: `unix:///path/to.sock`, `tcp://host:port` (plain HTTP,
as Docker: a TLS config only applies to `https://`). A `.json` file is Docker's
`{"Name": ..., "Addr": URL, "TLSConfig": {"CAFile", "CertFile", "KeyFile",
"InsecureSkipVerify"}}`. Not found: Docker's `plugin "NAME" not found`.
"""

from __future__ import annotations

import json
import os
import stat
from minidock.hints import Any, NamedTuple
from urllib.parse import urlsplit

from minidock.errors import InvalidArgument, NotFound

SOCKETS_DIR = "/run/docker/plugins"
SPEC_DIRS = ("/etc/docker/plugins", "/usr/lib/docker/plugins")
PATH_ENV = "MINIDOCK_PLUGIN_PATH"


class PluginAddr(NamedTuple):
    """Where a plugin listens: `scheme` "unix", "tcp"/"http" or "https"; `address` the
    socket path or host:port; `tls` Docker's TLSConfig dict (https only)."""

    name: str
    scheme: str
    address: str
    tls: dict[str, Any] | None = None
    source: str = ""        # the file that named it

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"


def check_name(name: str) -> None:
    """A plugin name is one path element (it is joined to directories)."""
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise InvalidArgument(f"invalid plugin name: {name!r}")


def _candidates(base: str, name: str, ext: str) -> list[str]:
    return [os.path.join(base, name + ext), os.path.join(base, name, name + ext)]


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def search_path() -> list[str]:
    return [d for d in os.environ.get(PATH_ENV, "").split(":") if d]


def find(name: str) -> PluginAddr:
    """The plugin called `name` (see module doc), or NotFound."""
    check_name(name)
    for base in search_path():
        hit = _in_socket_dir(base, name) or _in_spec_dir(base, name)
        if hit is not None:
            return hit
    hit = _in_socket_dir(SOCKETS_DIR, name)
    if hit is not None:
        return hit
    for base in SPEC_DIRS:
        hit = _in_spec_dir(base, name)
        if hit is not None:
            return hit
    raise NotFound(f'plugin "{name}" not found')


def _in_socket_dir(base: str, name: str) -> PluginAddr | None:
    for path in _candidates(base, name, ".sock"):
        if _is_socket(path):
            return PluginAddr(name, "unix", path, None, path)
    return None


def _in_spec_dir(base: str, name: str) -> PluginAddr | None:
    for path in _candidates(base, name, ".spec") + _candidates(base, name, ".json"):
        if os.path.isfile(path):
            return read_json(name, path) if path.endswith(".json") else read_spec(name, path)
    return None


def read_spec(name: str, path: str) -> PluginAddr:
    with open(path) as fh:
        return parse_url(name, fh.read().strip(), None, path)


def read_json(name: str, path: str) -> PluginAddr:
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except ValueError as err:
        raise InvalidArgument(f"plugin {name}: invalid {path}: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Addr"), str):
        raise InvalidArgument(f"plugin {name}: {path} has no Addr")
    tls = doc.get("TLSConfig")
    return parse_url(name, doc["Addr"], tls if isinstance(tls, dict) else None, path)


def parse_url(name: str, url: str, tls: dict[str, Any] | None, source: str) -> PluginAddr:
    """unix:///path, tcp://host:port, http://host:port or https://host:port."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise InvalidArgument(f"plugin {name}: {source}: Unknown protocol")
    if parts.scheme == "unix":
        address = parts.netloc or parts.path      # Docker: the host, else the path
        if not address:
            raise InvalidArgument(f"plugin {name}: {source}: no socket in {url}")
        return PluginAddr(name, "unix", address, None, source)
    if parts.scheme in ("tcp", "http", "https"):
        if not parts.netloc:
            raise InvalidArgument(f"plugin {name}: {source}: no host in {url}")
        scheme = "https" if parts.scheme == "https" else "tcp"
        return PluginAddr(name, scheme, parts.netloc, tls if scheme == "https" else None, source)
    raise InvalidArgument(f"plugin {name}: {source}: unsupported protocol {parts.scheme}")


def identity(addr: PluginAddr) -> list[int] | None:
    """What changes when a unix-socket plugin restarts (it re-creates its socket):
    device, inode and change time of the socket file; None for TCP plugins."""
    if addr.scheme != "unix":
        return None
    try:
        st = os.stat(addr.address)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_ctime_ns]
