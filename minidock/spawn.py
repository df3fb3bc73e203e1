"""Per-host helper processes (the userland proxy, the DNS resolver, and any later
agent): connect to one over its control socket, or start it.

minidock has no daemon, so a helper is started on demand by whichever CLI first needs
it and serves every later one. The protocol is the same for all of them:

    with locked(lock):                  one CLI at a time decides "running or not"
        sock = connect(path, kind, remove_stale=True)
                                        a refused connection (the helper was killed)
                                        removes its stale socket file: None
        if sock is None:
            sock = start(path, kind, argv, log)
                                        bind + listen on `path` *ourselves*, spawn the
                                        helper with that listening socket as fd 3,
                                        connect: the backlog holds our connection
                                        until the helper accepts it

`spawn` detaches the helper completely: double fork + setsid (nobody's child, no
controlling terminal), cwd /, stdin /dev/null, stdout and stderr to its log or
/dev/null, every other inherited fd closed, the signal mask emptied (a caller that
blocks signals, as the container monitor does, must not pass that on). A leaf module:
only the standard library.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from minidock.hints import Iterator

LISTEN_FD = 3     # where a helper finds its listening control socket


@contextmanager
def locked(lock_path: str) -> Iterator[None]:
    """An exclusive flock on `lock_path` (created 0600) for the body."""
    import fcntl
    os.makedirs(os.path.dirname(lock_path), mode=0o700, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def connect(path: str, kind: int = socket.SOCK_STREAM, remove_stale: bool = False
            ) -> socket.socket | None:
    """A connection to the helper listening on `path`, or None when none runs. A
    refused connection means a killed helper's socket file: with `remove_stale` (only
    under the lock) it is removed."""
    sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        return sock
    except FileNotFoundError:
        sock.close()
        return None
    except ConnectionRefusedError:
        sock.close()
        if remove_stale:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        return None


def start(path: str, kind: int, argv: list[str], log_path: str | None = None,
          backlog: int = 64) -> socket.socket:
    """Listen on `path`, spawn the helper (`argv` finds the socket at LISTEN_FD),
    and return our connection to it (the caller holds the lock)."""
    launch(path, kind, argv, log_path, backlog)
    sock = connect(path, kind)
    if sock is None:
        from minidock.errors import Internal
        raise Internal(f"{os.path.basename(argv[-1]) if argv else 'helper'}: control socket "
                       f"{path} vanished while starting")
    return sock


def launch(path: str, kind: int, argv: list[str], log_path: str | None = None,
           backlog: int = 64) -> None:
    """Listen on `path` and spawn the helper on it, without connecting: for a caller
    that only wants the helper running for later callers (the caller holds the lock).
    Connections made meanwhile wait in the backlog until the helper accepts them."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    try:
        listener.bind(path)
        listener.listen(backlog)
        spawn(argv, listener.fileno(), log_path)
    finally:
        listener.close()


def spawn(argv: list[str], listen_fd: int, log_path: str | None = None) -> None:
    """Start `argv` detached (see module doc) with `listen_fd` as its fd LISTEN_FD."""
    import signal
    out = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                  | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                if os.fork() != 0:
                    os._exit(0)
                high = os.dup(listen_fd)          # out of the way of 0-3
                os.dup2(null, 0)
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.dup2(high, LISTEN_FD)          # inheritable
                os.closerange(LISTEN_FD + 1, os.sysconf("SC_OPEN_MAX"))
                os.chdir("/")
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        os.waitpid(pid, 0)
    finally:
        os.close(out)
        os.close(null)


def read_line(conn: socket.socket, limit: int = 8192) -> str:
    """One request line from a client of a per-host helper (at most `limit` bytes)."""
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()
