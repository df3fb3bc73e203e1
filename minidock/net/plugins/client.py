"""Talking to a plugin: Docker's plugin client (pkg/plugins/client.go), with
`http.client` over a unix socket or TCP.

Every call is an HTTP/1.1 POST to `/<Method>` with the headers dockerd sends (`Host: `
empty, `User-Agent: Go-http-client/1.1`, `Content-Length`, `Accept:
application/vnd.docker.plugins.v1.2+json`, no Content-Type) and the Go-encoded body of
api.py. A call fails when the status is not 200 (the message is the answer's `Err`,
else its text: Docker's `<Method>: <err>`), or when the 200 answer carries a non-empty
error field (`Err` for network drivers, `Error` for IPAM drivers: Docker's `remote:
<err>`). A 404 keeps its status so that callers can treat an optional call as not
implemented.

A connection that fails (refused, missing socket, reset, closed before an answer) is
retried with Docker's back-off: 1 s, 2 s, 4 s ... until the next wait would pass the
retry limit (Docker: 30 s; `MINIDOCK_PLUGIN_RETRY` seconds here, 0 = no retry). A call
that gets no answer in `MINIDOCK_PLUGIN_TIMEOUT` seconds (default 60; Docker has none
for these plugins) fails without retry.

Activation. Before its first call a plugin is asked `/Plugin.Activate`, whose
`Implements` must list the wanted subsystem (NetworkDriver or IpamDriver). Docker
activates once per daemon; minidock, which has no daemon, remembers an activation in
`<exec-root>/plugins/<name>.json` with the socket's identity (device, inode, ctime), so
a plugin is activated again only when its socket was re-created, i.e. the plugin
restarted. Such a restart is also remembered, so that the next failing call can say
that the plugin lost what it kept in memory.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from minidock.hints import Any

from minidock.errors import Internal, InvalidArgument
from minidock.net.plugins import api
from minidock.net.plugins.discovery import PluginAddr, find, identity

RETRY_ENV = "MINIDOCK_PLUGIN_RETRY"
TIMEOUT_ENV = "MINIDOCK_PLUGIN_TIMEOUT"
DEFAULT_RETRY = 30.0
DEFAULT_TIMEOUT = 60.0
USER_AGENT = "Go-http-client/1.1"
RESTART_HINT = ("the plugin restarted since minidock last used it and has lost what it "
                "kept in memory (remove and re-create what uses it)")


class PluginError(Internal):
    """A plugin call that failed: names the plugin and the call. `status` is the HTTP
    status (0 when there was no answer)."""

    def __init__(self, plugin: str, method: str, detail: str, status: int = 0,
                 hint: str = "") -> None:
        self.plugin, self.method, self.detail, self.status = plugin, method, detail, status
        text = f'plugin "{plugin}": {method}: {detail}'
        super().__init__(text + (f" ({hint})" if hint else ""))

    @property
    def not_implemented(self) -> bool:
        return self.status == 404


def _float_env(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _connection(addr: PluginAddr, timeout: float) -> http.client.HTTPConnection:
    if addr.scheme == "unix":
        return _UnixConnection(addr.address, timeout)
    if addr.scheme == "https":
        return http.client.HTTPSConnection(addr.address, timeout=timeout,
                                           context=_tls_context(addr.tls or {}))
    return http.client.HTTPConnection(addr.address, timeout=timeout)


def _tls_context(tls: dict[str, Any]) -> Any:
    import ssl
    ctx = ssl.create_default_context(cafile=tls.get("CAFile") or None)
    if tls.get("CertFile"):
        ctx.load_cert_chain(tls["CertFile"], tls.get("KeyFile") or None)
    if tls.get("InsecureSkipVerify") or not tls.get("CAFile"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def backoff(retries: int) -> float:
    """Docker's: 1 s doubled per retry, at most 30 s."""
    return float(min(2 ** retries, 30))


def post(addr: PluginAddr, method: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """One POST; transport errors (OSError, HTTPException) propagate."""
    conn = _connection(addr, timeout)
    try:
        conn.putrequest("POST", "/" + method, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "")
        conn.putheader("User-Agent", USER_AGENT)
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("Accept", api.MIME)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


_unreachable: dict[str, str] = {}   # plugin URL -> why, found in this process


def unreachable(addr: PluginAddr) -> bool:
    """Whether this process already failed to reach the plugin (then its calls fail
    at once, and callers skip inverse calls: a dead plugin holds nothing)."""
    return addr.url in _unreachable


class Client:
    """Calls to one plugin (no activation: see `activate`)."""

    def __init__(self, addr: PluginAddr, retry: float | None = None,
                 timeout: float | None = None, hint: str = "") -> None:
        self.addr = addr
        self.retry = _float_env(RETRY_ENV, DEFAULT_RETRY) if retry is None else retry
        self.timeout = _float_env(TIMEOUT_ENV, DEFAULT_TIMEOUT) if timeout is None else timeout
        self.hint = hint        # said with every failure (a known restart)

    def error(self, method: str, detail: str, status: int = 0) -> PluginError:
        return PluginError(self.addr.name, method, detail, status, self.hint)

    def call(self, method: str, body: Any = None, err_key: str = "Err") -> dict[str, Any]:
        """POST `body` (None: no body; else Go-encoded) and return the decoded answer."""
        data = b"" if body is None else api.go_json(body)
        status, raw = self._post_with_retry(method, data)
        if status != 200:
            raise self.error(method, _status_detail(raw), status)
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError) as err:   # RecursionError: nested too deep
            raise self.error(method, f"error reading plugin resp: {err}", status) from None
        if not isinstance(answer, dict):
            raise self.error(method, "error reading plugin resp: not a JSON object", status)
        if answer.get(err_key):
            raise self.error(method, f"remote: {answer[err_key]}", status)
        return answer

    def _post_with_retry(self, method: str, data: bytes) -> tuple[int, bytes]:
        if self.addr.url in _unreachable:
            raise self.error(method, _unreachable[self.addr.url])
        start, retries = time.monotonic(), 0
        while True:
            try:
                return post(self.addr, method, data, self.timeout)
            except (TimeoutError, socket.timeout):
                raise self.error(method, f"no answer in {self.timeout:g} s "
                                 f"({self.addr.url})") from None
            except (OSError, http.client.HTTPException) as err:
                wait = backoff(retries)
                if wait + time.monotonic() - start >= self.retry:
                    _unreachable[self.addr.url] = f"{_describe(err)} ({self.addr.url})"
                    raise self.error(method, _unreachable[self.addr.url]) from None
                retries += 1
                time.sleep(wait)


def _status_detail(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        if isinstance(doc, dict) and doc.get("Err"):
            return str(doc["Err"])
    except (ValueError, RecursionError):
        pass
    return raw.decode("utf-8", "replace").strip()


def _describe(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return "socket not found: is the plugin running?"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused: is the plugin running?"
    if isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return "the plugin closed the connection without answering"
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


# -- activation ------------------------------------------------------------------------
def exec_root(ctx: Any) -> str:
    """Where activations are remembered: the CLI call's exec-root (a driver looked up
    before any call with a Context reads it from the environment)."""
    if ctx is not None:
        return str(ctx.exec_root)
    from minidock.context import Context
    return Context.from_env().exec_root


def _cache_path(exec_root: str, name: str) -> str:
    return os.path.join(exec_root, "plugins", name + ".json")


def _read_cache(path: str) -> dict[str, Any]:
    try:
        with open(path) as fh:
            doc = json.load(fh)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def _write_cache(path: str, doc: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


def activate(exec_root: str, name: str, subsystem: str,
             describe: Any = None) -> tuple[Client, dict[str, Any]]:
    """The plugin `name`, activated for `subsystem`, and what `describe(client)`
    answered at activation (a driver's capabilities), kept until the plugin restarts."""
    addr = find(name)
    path = _cache_path(exec_root, name)
    cache = _read_cache(path)
    ident = identity(addr)
    fresh = cache.get("url") == addr.url and ident is not None and cache.get("ident") == ident
    restarted = bool(cache.get("restarted")) or (
        cache.get("url") == addr.url and ident is not None and cache.get("ident") not in (None, ident))
    client = Client(addr, hint=RESTART_HINT if restarted else "")
    if fresh and subsystem in cache.get("implements", ()) and subsystem in cache.get("info", {}):
        return client, cache["info"][subsystem]
    manifest = client.call("Plugin.Activate")
    implements = manifest.get("Implements") or []
    if not isinstance(implements, list) or subsystem not in implements:
        raise InvalidArgument(f'plugin "{name}" does not implement {subsystem} '
                              f"(it implements {', '.join(map(str, implements)) or 'nothing'})")
    info = describe(client) if describe is not None else {}
    keep = cache.get("info", {}) if fresh else {}
    keep[subsystem] = info
    _write_cache(path, {"url": addr.url, "ident": ident, "implements": implements,
                        "info": keep, "restarted": restarted})
    return client, info
