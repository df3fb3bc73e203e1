"""The monitor template, seen from the CLI: ask it for a container's monitor, start it,
stop it. The process itself (a zygote) is montemplated.py.

A detached start (`run -d`, `start`, a restart policy's start) asks the template of
its exec-root to fork the container's monitor instead of forking one itself. The
template is a lean interpreter (leanboot) that imported what a monitor and an init
need, then froze its heap (gc.freeze): a monitor forked from it shares those pages
for its whole life, where a monitor that execs a bare interpreter of its own owns
~2.6 MiB of private memory (see README, Performance). Attached starts keep the
CLI-forked monitor (monitor.py): their CLI waits for the exit code, and that path
must not get slower.

Nothing here may fail a start. `request` returns the monitor's pid, or None when no
template is ready or anything goes wrong on the way; the caller then abandons the
pipes it sent (a template that forks late finds them closed: its monitor sees no
verdict and kills its init) and forks the monitor itself, with fresh pipes, as before.
`ensure_running` then starts a template in the background for the next start: the
first detached start never waits for the template's imports.

The request is one SOCK_SEQPACKET message on `<exec-root>/montpl.sock`: a marshal'd
dict (the container record, the netns tuple, the Privileges, the Context's paths, the
MonitorFds fields that are not fds, the CLI's sys.path) and, by SCM_RIGHTS, the pipe
ends the CLI made for the start (sync_w, go_r, verdict_r, exit_w, optional stdin).
The reply comes from the forked monitor itself, `M<pid>`, before it does anything:
EOF without it means that no monitor exists for this request. `E<message>`: the
template refused the request (e.g. its code is older than the CLI's: it then serves
no new start and leaves once its last monitor has).
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any

from minidock import leanboot

if TYPE_CHECKING:
    import socket
    from minidock.context import Context
    from minidock.runtime.monitor import MonitorFds

PROTO = 1                         # bumped when the request changes
ENTRY = "minidock.runtime.montemplated:main"
FILES = {"sock": "montpl.sock", "pid": "montpl.pid", "lock": "montpl.lock",
         "log": "montpl.log"}
IDLE_ENV = "MINIDOCK_MONTPL_IDLE"    # seconds without monitors before it leaves (30)
REPLY_TIMEOUT = 5.0
MAX_MSG = 1 << 20
FD_NAMES = ("sync_w", "go_r", "verdict_r", "exit_w")


# the code a template-forked monitor runs; a template whose copy differs from the
# CLI's (an upgrade, another checkout on the same exec-root) refuses and retires
STAMPED = ("runtime/montemplated.py", "runtime/monitor.py", "runtime/monitor_main.py",
           "runtime/init.py", "runtime/montemplate.py")


def path(exec_root: str, what: str) -> str:
    return os.path.join(exec_root, FILES[what])


def code_stamp() -> list[Any]:
    """Where minidock is imported from and its monitor code's mtimes (~10 us)."""
    out: list[Any] = [leanboot.PKG_PARENT]
    for rel in STAMPED:
        try:
            out.append(os.stat(os.path.join(leanboot.PKG_PARENT, "minidock", rel)).st_mtime_ns)
        except OSError:
            out.append(0)
    return out


# -- the request codec (both sides) ----------------------------------------------------
def encode_request(ctx: Context, ctr: dict[str, Any], netns: tuple[str, str | None],
                   fds: MonitorFds) -> tuple[bytes, list[int]]:
    """The message and the fds to send with it. ValueError if the record holds a
    value marshal cannot carry (the caller falls back)."""
    import marshal
    import sys
    privs = fds.privs
    body = {"v": PROTO, "op": "monitor", "ctr": ctr, "netns": tuple(netns),
            "caps": privs.caps if privs else None,
            "seccomp": privs.seccomp if privs else None,
            "root": ctx.root, "exec_root": ctx.exec_root, "config": ctx.config_path,
            "stdin": fds.stdin is not None, "tty": fds.tty, "winsize": fds.winsize,
            "path": list(sys.path), "code": code_stamp()}
    sent = [getattr(fds, name) for name in FD_NAMES]
    if fds.stdin is not None:
        sent.append(fds.stdin)
    return marshal.dumps(body), sent


def decode_request(body: dict[str, Any], fds: list[int]) -> tuple[Any, ...]:
    """(Context, record, netns, MonitorFds, CLI's sys.path) from a "monitor" request."""
    from minidock.context import Context
    from minidock.runtime.init import Privileges
    from minidock.runtime.monitor import MonitorFds
    want = len(FD_NAMES) + (1 if body["stdin"] else 0)
    if len(fds) != want:
        raise ValueError(f"expected {want} fds, got {len(fds)}")
    privs = None if body["caps"] is None else Privileges(body["caps"], body["seccomp"])
    mfds = MonitorFds(*fds[:4], attach=False, stdin=fds[4] if body["stdin"] else None,
                      tty=bool(body["tty"]), winsize=body["winsize"], close=[],
                      privs=privs)
    ctx = Context(root=body["root"], exec_root=body["exec_root"],
                  config_path=body["config"])
    mode, netpath = body["netns"]
    return ctx, body["ctr"], (mode, netpath), mfds, list(body["path"])


# -- the CLI side ------------------------------------------------------------------------
def request(ctx: Context, ctr: dict[str, Any], netns: tuple[str, str | None],
            fds: MonitorFds) -> int | None:
    """The pid of a monitor the running template forked for this start, or None
    (no template ready, or any failure): the caller forks the monitor itself.

    On the start path: `_socket`, not `socket` (whose import builds enums, ~3 ms),
    and not spawn.py (which imports it)."""
    import sys
    try:
        msg, sent = encode_request(ctx, ctr, netns, fds)
    except ValueError:
        return None
    if len(msg) > MAX_MSG:
        return None
    conn = _connect_ready(ctx)
    if conn is None:
        return None
    import _socket
    try:
        conn.settimeout(REPLY_TIMEOUT)
        conn.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                              b"".join(fd.to_bytes(4, sys.byteorder) for fd in sent))])
        reply = conn.recv(64)
    except OSError:
        return None
    finally:
        conn.close()
    if reply[:1] == b"M" and reply[1:].isdigit():
        return int(reply[1:])
    return None


def _connect_ready(ctx: Context) -> Any:
    """A connection to a template that has finished its imports, or None. A template
    still starting (socket bound, no pid file yet) is not waited for; a killed one's
    files are removed (under the lock, as spawn.connect does)."""
    import _socket
    import fcntl
    try:
        lock = os.open(path(ctx.exec_root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                       0o600)
    except OSError:
        return None
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn.connect(path(ctx.exec_root, "sock"))
        if os.path.exists(path(ctx.exec_root, "pid")):
            return conn
    except ConnectionRefusedError:
        _unlink(path(ctx.exec_root, "sock"))
        _unlink(path(ctx.exec_root, "pid"))
    except OSError:
        pass
    finally:
        os.close(lock)
    conn.close()
    return None


def _connect(ctx: Context) -> socket.socket | None:
    """Under the lock: our connection, or None (a killed template's files removed)."""
    import socket
    from minidock import spawn
    conn = spawn.connect(path(ctx.exec_root, "sock"), socket.SOCK_SEQPACKET,
                         remove_stale=True)
    if conn is None:
        _unlink(path(ctx.exec_root, "pid"))
    return conn


def ensure_running(ctx: Context) -> None:
    """Idempotent, never raises: start a template in the background if none runs
    or starts. Returns without waiting for it (it imports for ~50 ms)."""
    import socket
    from minidock import spawn
    try:
        with spawn.locked(path(ctx.exec_root, "lock")):
            conn = _connect(ctx)
            if conn is not None:
                conn.close()
                return
            spawn.launch(path(ctx.exec_root, "sock"), socket.SOCK_SEQPACKET,
                         leanboot.argv(ENTRY, ctx.exec_root, str(spawn.LISTEN_FD)),
                         path(ctx.exec_root, "log"), backlog=128)
    except OSError:
        pass


def stop(ctx: Context, wait: float = 0.0) -> bool:
    """Stop the template if it has no monitors (tests, `system prune`); True when
    none runs any more. With `wait`, keep asking while its last monitors leave."""
    import marshal
    import time
    from minidock import spawn
    deadline = time.monotonic() + wait
    while True:
        try:
            with spawn.locked(path(ctx.exec_root, "lock")):
                conn = _connect(ctx)
        except OSError:
            return False
        if conn is None:
            return True
        with conn:
            try:
                conn.settimeout(REPLY_TIMEOUT)
                conn.send(marshal.dumps({"v": PROTO, "op": "stop"}))
                if conn.recv(64) == b"O" and conn.recv(64) == b"":
                    return True          # EOF: it has exited
            except OSError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def pid(ctx: Context) -> int | None:
    """The running template's pid (montpl.pid), or None."""
    try:
        with open(path(ctx.exec_root, "pid")) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _unlink(file: str) -> None:
    try:
        os.unlink(file)
    except FileNotFoundError:
        pass
