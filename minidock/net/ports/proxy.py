"""Published ports served in userland: the client side of the per-host proxy.

The network controller calls `publish(ctx, owner, forwards)` when a container's ports
are programmed and `unpublish(ctx, owner)` when they are revoked. Every listening
socket is bound here, in the calling process, so a taken port fails synchronously with
Docker's exact message; the bound fds then travel over `<exec-root>/proxy.sock`
(SCM_RIGHTS) to the one proxy process of this host (proxyd.py), which is started on
demand (minidock/spawn.py) and leaves by itself when it serves nothing. The protocol, the table file and
the locking protocol are drawn in proxyproto.py and proxyd.py.

The proxy runs in the network namespace of the process that starts it (it is forked
from it), i.e. the host's; it holds neither the caller's stdio nor its cwd.
"""

from __future__ import annotations

import array
import os
import socket
from contextlib import contextmanager
from minidock.hints import TYPE_CHECKING, Any, Callable, Iterator

from minidock import leanboot, spawn
from minidock.errors import Conflict, Internal, InvalidArgument
from minidock.net.ports import proxyproto as pp
from minidock.net.ports.portspec import PortBinding

if TYPE_CHECKING:
    from minidock.context import Context

REPLY_TIMEOUT = 10.0
# proxyd runs in a bare interpreter (leanboot: -I -S, no site, no venv; it needs only
# the stdlib) and is imported, not run as a script, so its cached bytecode is used.
_ENTRY = "minidock.net.ports.proxyd:main"


def to_wire(b: PortBinding) -> pp.Fwd:
    """A programmed binding (container_ip set) as the proxy protocol's forward."""
    return (b.proto, b.host_ip, b.host_port, b.container_ip, b.container_port)


def from_wire(fwd: pp.Fwd) -> PortBinding:
    proto, host_ip, host_port, container_ip, container_port = fwd
    return PortBinding(proto, container_port, host_ip, host_port, container_ip=container_ip)


def publish(ctx: Context, owner: str, forwards: list[PortBinding], serve: bool = True) -> None:
    """Bind every forward's host side, then hand them all to the proxy; all or nothing.

    serve=False binds placeholders only (userland-proxy false: the port is reserved,
    never accepted). Publishing again for an owner adds to what it has.
    Conflict: `Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address
    already in use`.
    """
    fwds = _validated(owner, forwards)
    if not fwds:
        return
    bound = _bind_all(fwds)
    try:
        with _session(ctx, start=True) as conn:
            packets = pp.split_publish(owner, [f for f, _ in bound], serve)
            _call(conn, [(msg, [bound[i][1].fileno() for i in idx]) for msg, idx in packets])
    finally:
        for _, sock in bound:
            sock.close()
    from minidock import pipeline
    if pipeline.TRACING:
        for proto, hip, hport, cip, cport in fwds:
            host = f"[{hip}]" if ":" in hip else hip
            pipeline.note("+", "proxy" if serve else "placeholder",
                          f"{host}:{hport}/{proto} -> {cip}:{cport} (held by the proxy process)")


def unpublish(ctx: Context, owner: str) -> None:
    """Close the owner's listeners and live connections. Idempotent; works after a kill."""
    _validated(owner, [])
    from minidock import pipeline
    if pipeline.TRACING:
        pipeline.note("-", "proxy", f"every forward of endpoint {owner[:12]}")
    with _session(ctx, start=False) as conn:
        if conn is not None:
            _call(conn, [(pp.encode_request("unpublish", owner), [])])
            return
        table = _read_table(ctx)                            # no proxy: edit its table
        if table.pop(owner, None) is not None:
            _write_table(ctx, table)


def ensure_running(ctx: Context) -> None:
    """Idempotent: make sure a proxy serves what proxy.json lists (e.g. after kill -9).

    Conflict if a forward could not be bound again (its port was taken meanwhile); the
    others are served.
    """
    with _session(ctx, start=lambda: bool(_read_table(ctx))) as conn:
        if conn is None:
            return
        detail = _call(conn, [(pp.encode_request("ping"), [])])
    if detail[1:]:
        raise Conflict("; ".join(detail[1:]))


def stop(ctx: Context) -> None:
    """Stop the proxy if it serves nothing (tests, prune); a busy proxy is left alone."""
    with _session(ctx, start=False) as conn:
        if conn is None:
            return
        conn.sendmsg([pp.encode_request("stop")])
        ok, _msg, _ = _reply(conn)
        if ok:
            conn.recv(1)                                    # EOF: the proxy has exited


def served(ctx: Context) -> dict[str, list[tuple[PortBinding, bool]]]:
    """What the running proxy serves, owner -> [(forward, serve)] (tests, inspection)."""
    out: dict[str, list[tuple[PortBinding, bool]]] = {}
    with _session(ctx, start=False) as conn:
        if conn is None:
            return out
        for line in _call(conn, [(pp.encode_request("list"), [])]):
            owner, serve, *fields = line.split(" ")
            out.setdefault(owner, []).append((from_wire(pp.check_forward(fields)), serve == "1"))
    return out


def pid(ctx: Context) -> int | None:
    """The running proxy's pid from proxy.pid, or None."""
    try:
        with open(pp.path(ctx.exec_root, "pid")) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


# -- validate, bind --------------------------------------------------------------------
def _validated(owner: str, forwards: list[PortBinding]) -> list[pp.Fwd]:
    try:
        pp.check_owner(owner)
        return [pp.check_forward(to_wire(f)) for f in forwards]
    except pp.WireError as err:
        raise InvalidArgument(f"cannot publish ports for {owner!r}: {err}") from err


def _bind_all(fwds: list[pp.Fwd]) -> list[tuple[pp.Fwd, Any]]:
    bound: list[tuple[pp.Fwd, Any]] = []
    try:
        for fwd in fwds:
            try:
                sock = pp.bind_forward(fwd)
            except OSError as err:
                cls = {98: Conflict, 99: InvalidArgument}.get(err.errno or 0, Internal)
                raise cls(pp.bind_error(fwd, err)) from err
            if sock is not None:                            # None: no IPv6 here
                bound.append((fwd, sock))
    except BaseException:
        for _, sock in bound:
            sock.close()
        raise
    return bound


# -- talking to the proxy ------------------------------------------------------------
@contextmanager
def _session(ctx: Context, start: bool | Callable[[], bool]) -> Iterator[Any]:
    """Hold the proxy lock; yield a connection to the proxy or None.

    A proxy that is not running is started if `start` is true (or returns true).
    """
    conn = None
    try:
        with spawn.locked(pp.path(ctx.exec_root, "lock")):
            conn = _connect(ctx)
            if conn is None and (start() if callable(start) else start):
                conn = _start(ctx)
            yield conn
    finally:                    # unlocked first: the proxy re-checks "idle" when we close
        if conn is not None:
            conn.close()


def _connect(ctx: Context) -> socket.socket | None:
    """Our connection to the running proxy, or None (a killed proxy's socket and pid
    files are removed: we hold the lock)."""
    conn = spawn.connect(pp.path(ctx.exec_root, "sock"), socket.SOCK_SEQPACKET,
                         remove_stale=True)
    if conn is None:
        try:
            os.unlink(pp.path(ctx.exec_root, "pid"))
        except FileNotFoundError:
            pass
        return None
    conn.settimeout(REPLY_TIMEOUT)
    return conn


def _start(ctx: Context) -> socket.socket:
    """Bind proxy.sock ourselves, then start proxyd on it: we can talk at once (backlog)."""
    conn = spawn.start(pp.path(ctx.exec_root, "sock"), socket.SOCK_SEQPACKET,
                       leanboot.argv(_ENTRY, ctx.exec_root, str(spawn.LISTEN_FD)))
    conn.settimeout(REPLY_TIMEOUT)
    return conn


def _call(conn: socket.socket, packets: list[tuple[bytes, list[int]]]) -> list[str]:
    """Send the packets (with their fds), read one reply; its detail lines or Internal."""
    try:
        for msg, fds in packets:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                    array.array("i", fds).tobytes())] if fds else []
            conn.sendmsg([msg], anc)
    except OSError:
        pass                                               # the reply says why, if any
    ok, message, detail = _reply(conn)
    if not ok:
        raise Internal(f"userland proxy: {message}")
    return detail


def _reply(conn: socket.socket) -> tuple[bool, str, list[str]]:
    try:
        data = conn.recv(pp.MAX_MSG)
        return pp.decode_reply(data)
    except (OSError, pp.WireError) as err:
        raise Internal(f"userland proxy: no answer on its control socket: {err}") from err


def owners(ctx: Context) -> list[str]:
    """The endpoints that have forwards in the proxy's table."""
    return list(_read_table(ctx))


def _read_table(ctx: Context) -> pp.Table:
    try:
        with open(pp.path(ctx.exec_root, "table")) as fh:
            return pp.decode_table(fh.read())
    except FileNotFoundError:
        return {}
    except pp.WireError as err:
        raise Internal(f"userland proxy: {err}") from err


def _write_table(ctx: Context, table: pp.Table) -> None:
    path = pp.path(ctx.exec_root, "table")
    if not table:
        os.unlink(path)
        return
    with open(path + ".tmp", "w") as fh:
        fh.write(pp.encode_table(table))
    os.replace(path + ".tmp", path)
