"""The client side of the embedded DNS resolver: attach and detach containers.

Containers on user-defined networks ask 127.0.0.11 for each other's names. One
resolver process per exec-root (resolverd.py) answers for every container; there is no
daemon otherwise, so this module starts it on demand, and it exits by itself when the
last container detaches. The network controller calls, in the prestart hook, from the
host netns, once the container's interfaces are configured:

    attach(ctx, container_id, netns_path)   start the resolver if needed, wait for its ack
    detach(ctx, container_id)               idempotent; closes the container's sockets

`start(ctx)` early in the start pipeline, optionally (overlaps the resolver's startup
with the container's), and `ensure(ctx)` from any command: if containers are recorded as attached but the
resolver is not running (it was killed), start it; it re-attaches them all.

On-disk state, under `<exec-root>/resolver/` (runtime state: a reboot wipes it):

    ctl.sock            the resolver's control socket (unix, stream)
    lock                flock: taken by a client to connect-or-start, and by the
                        resolver to exit; so a client never connects to a resolver
                        that is leaving, and two clients never start two resolvers
    log                 the resolver's stderr
    sandboxes/<id>      one file per attached container: its netns path (the
                        resolver writes it on attach, removes it on detach)

Starting is race-free without polling: the client binds and listens on ctl.sock
itself, under the lock, and hands the listening fd to the new process (double fork,
setsid, exec), then connects at once: the connection waits in the backlog until the
resolver accepts it (minidock/spawn.py: the same for every per-host helper).
"""

from __future__ import annotations

import os
import _socket as socket  # not `socket`: its import builds enums (~3 ms per run)
import sys
from contextlib import contextmanager
from minidock.hints import TYPE_CHECKING, Iterator

from minidock import spawn
from minidock.errors import Internal

if TYPE_CHECKING:
    from minidock.context import Context

REPLY_TIMEOUT = 15.0


class Paths:
    """The resolver's files under one exec-root (shared by client and resolver)."""

    def __init__(self, exec_root: str) -> None:
        self.dir = os.path.join(exec_root, "resolver")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.lock = os.path.join(self.dir, "lock")
        self.log = os.path.join(self.dir, "log")
        self.records_dir = os.path.join(self.dir, "sandboxes")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the resolver lock (exclusive flock) for the body."""
        os.makedirs(self.records_dir, mode=0o700, exist_ok=True)
        with spawn.locked(self.lock):
            yield

    def write_record(self, cid: str, netns_path: str) -> None:
        tmp = os.path.join(self.records_dir, f".{cid}.tmp")
        with open(tmp, "w") as fh:
            fh.write(netns_path + "\n")
        os.rename(tmp, os.path.join(self.records_dir, cid))

    def remove_record(self, cid: str) -> None:
        try:
            os.unlink(os.path.join(self.records_dir, cid))
        except FileNotFoundError:
            pass

    def records(self) -> list[tuple[str, str]]:
        """(container id, netns path) of every attached container."""
        out = []
        try:
            names = os.listdir(self.records_dir)
        except FileNotFoundError:
            return []
        for cid in names:
            if cid.startswith("."):
                continue
            try:
                with open(os.path.join(self.records_dir, cid)) as fh:
                    out.append((cid, fh.read().strip()))
            except OSError:
                continue
        return out

    def unlink_socket(self, listener: socket.socket) -> None:
        """Remove ctl.sock (the resolver calls this under the lock, when leaving)."""
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass


# -- public API --------------------------------------------------------------------------
def attach(ctx: Context, container_id: str, netns_path: str, proc_path: str = "") -> None:
    """Serve 127.0.0.11 in the container's netns; starts the resolver if needed.

    Returns once the resolver's sockets are bound; Internal if it cannot serve.
    `proc_path` (/proc/<pid>/ns/net of the container's init) is what the resolver
    uses when the key is no netns where it runs: under `ip netns exec` every command
    has its own mount namespace, and the key's mount is invisible to a resolver
    started from another one (it drops the sandbox once that path names another netns).
    """
    line = f"attach\t{container_id}\t{netns_path}"
    _request(ctx, line + (f"\t{proc_path}" if proc_path else ""), start=True)


def detach(ctx: Context, container_id: str) -> None:
    """Stop serving the container and close its sockets; idempotent, never starts one."""
    paths = Paths(ctx.exec_root)
    if not os.path.isdir(paths.dir):
        return
    if _request(ctx, f"detach\t{container_id}", start=False) is None:
        paths.remove_record(container_id)


def start(ctx: Context) -> None:
    """Start the resolver if it is not running, without waiting for it; idempotent.

    Optional: call it early in a start pipeline (initialize_networking) so that the
    resolver's own startup (~80 ms of Python imports) overlaps the container's, and
    `attach` in the prestart hook then finds it up. A resolver that gets no attach
    exits after resolverd.STARTUP_GRACE seconds.
    """
    paths = Paths(ctx.exec_root)
    with paths.locked():
        sock = _try_connect(paths.sock) or _start(ctx, paths)
    sock.close()


def ensure(ctx: Context) -> bool:
    """Start the resolver if attached containers are recorded and it is not running.

    Idempotent and cheap when there is nothing to do (one stat). True if it runs.
    """
    paths = Paths(ctx.exec_root)
    if not paths.records():
        return False
    _request(ctx, "ping", start=True)
    return True


def running(ctx: Context) -> bool:
    """True if a resolver answers on this exec-root's control socket."""
    sock = _try_connect(Paths(ctx.exec_root).sock)
    if sock is None:
        return False
    sock.close()
    return True


# -- internals ---------------------------------------------------------------------------
def _request(ctx: Context, line: str, start: bool) -> str | None:
    """Send one control line; the reply, or None if no resolver runs and start=False."""
    paths = Paths(ctx.exec_root)
    with paths.locked():
        sock = _try_connect(paths.sock)
        if sock is None:
            if not start:
                return None
            sock = _start(ctx, paths)
    try:
        sock.settimeout(REPLY_TIMEOUT)
        sock.sendall(line.encode() + b"\n")
        reply = _read_reply(sock)
    except OSError as err:
        raise Internal(f"dns resolver did not answer: {err}") from err
    finally:
        sock.close()
    if reply == "ok":
        return reply
    if not reply:
        raise Internal(f"dns resolver exited without answering (see {paths.log})")
    raise Internal(reply.partition("\t")[2] or reply)


def _read_reply(sock: socket.socket) -> str:
    """Read to EOF: the resolver closes the connection after its one-line reply (after
    the last detach, only when it exits, so that detach returns once it is gone)."""
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()


def _try_connect(path: str) -> socket.socket | None:
    return spawn.connect(path, socket.SOCK_STREAM)


def _start(ctx: Context, paths: Paths) -> socket.socket:
    """Listen on ctl.sock, start the resolver on that fd, connect (caller holds lock)."""
    argv = [sys.executable, "-m", "minidock.net.dns.resolverd", ctx.root, ctx.exec_root,
            str(spawn.LISTEN_FD)]
    return spawn.start(paths.sock, socket.SOCK_STREAM, argv, paths.log, backlog=128)
