"""The client side of the per-host overlay agent (agentd.py): connect, or spawn it.

One agent per exec-root holds this host's etcd lease, keeps it alive while the host has
overlay endpoints, builds each overlay network's namespace (bridge + VXLAN device) on
demand, and programs forwarding entries for the other hosts' endpoints from an etcd
watch. The CLI asks it, over a unix socket, one line per request:

    lease              -> "ok <lease id>"     the lease to put this host's keys on
    ensure <nid>       -> "ok <netns path>"   the network's namespace exists
    sync               -> "ok"                re-read the store now (after a change)

On-disk state, under `<exec-root>/overlay/` (a reboot wipes it):

    ctl.sock   the agent's control socket      lock   flock: connect-or-spawn, and exit
    log        the agent's stderr              lease  the lease id (a restarted agent
    pid        the agent's pid                        keeps it while etcd does)
    netns/1-<nid[:10]>  the networks' namespaces

Starting is race-free as the resolver's (minidock/spawn.py, the one connect-or-spawn of
every per-host helper): under the lock the client binds and listens on
ctl.sock itself, hands the fd to the new process (double fork, setsid, exec) and
connects at once; the connection waits in the backlog until the agent accepts it.
"""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from minidock.hints import Any, Iterator

from minidock import spawn
from minidock.errors import Internal

REPLY_TIMEOUT = 30.0


class Paths:
    def __init__(self, exec_root: str) -> None:
        self.dir = os.path.join(exec_root, "overlay")
        self.sock = os.path.join(self.dir, "ctl.sock")
        self.lock = os.path.join(self.dir, "lock")
        self.log = os.path.join(self.dir, "log")
        self.lease = os.path.join(self.dir, "lease")
        self.pid = os.path.join(self.dir, "pid")
        self.netns_dir = os.path.join(self.dir, "netns")

    def netns(self, nid: str) -> str:
        """The network's namespace on this host (Docker's `1-<nid[:10]>`)."""
        return os.path.join(self.netns_dir, f"1-{nid[:10]}")

    @contextmanager
    def locked(self) -> Iterator[None]:
        os.makedirs(self.netns_dir, mode=0o700, exist_ok=True)
        with spawn.locked(self.lock):
            yield


_lease = 0      # asked once per CLI process


def lease(ctx: Any) -> int:
    """This host's lease (the agent is started if needed and keeps it alive)."""
    global _lease
    if not _lease:
        _lease = int(request(ctx, "lease"))
    return _lease


def ensure_network(ctx: Any, nid: str) -> str:
    """The path of the network's namespace on this host, made if needed."""
    return request(ctx, f"ensure {nid}")


def sync(ctx: Any) -> None:
    """Ask a running agent to re-read the store now; never starts one."""
    try:
        request(ctx, "sync", start=False)
    except Internal:
        pass


def ensure(ctx: Any) -> None:
    """Restart a killed agent when this host has overlay state (cheap otherwise)."""
    paths = Paths(ctx.exec_root)
    if os.path.exists(paths.lease) and not _alive(paths):
        request(ctx, "sync")


def request(ctx: Any, line: str, start: bool = True) -> str:
    paths = Paths(ctx.exec_root)
    with paths.locked():
        sock = spawn.connect(paths.sock, remove_stale=True)
        if sock is None:
            if not start:
                return ""
            argv = [sys.executable, "-m", "minidock.net.drivers.overlay.agentd", ctx.root,
                    ctx.exec_root, ctx.daemon_json, str(spawn.LISTEN_FD)]
            sock = spawn.start(paths.sock, socket.SOCK_STREAM, argv, paths.log, backlog=128)
    with sock:
        sock.settimeout(REPLY_TIMEOUT)
        try:
            sock.sendall(line.encode() + b"\n")
            reply = _read_reply(sock)
        except OSError as err:
            raise Internal(f"overlay agent did not answer: {err}") from err
    status, _sp, rest = reply.partition(" ")
    if status == "ok":
        return rest
    if not reply:
        raise Internal(f"overlay agent exited without answering (see {paths.log})")
    from minidock.cluster.etcd import StoreUnavailable
    if status == "unavailable":
        raise StoreUnavailable(rest)
    raise Internal(rest or reply)


def _alive(paths: Paths) -> bool:
    sock = spawn.connect(paths.sock)
    if sock is None:
        return False
    sock.close()
    return True


def _read_reply(sock: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()
