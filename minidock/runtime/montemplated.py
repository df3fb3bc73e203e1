"""The monitor template process (`minidock-montpl`): one per exec-root, it forks the
monitor of every detached start (montemplate.py is the client side and the codec).

Why a template. A monitor that execs a bare `python -I -S` owns what that interpreter
writes while it starts (~2.6 MiB of private pages) for its container's whole life.
This process pays that once: it imports what a monitor and an init need (monitor,
monitor_main, the log writer, runtime.init and the modules the init imports before
pivot_root, ctypes' libc handle), calls gc.freeze() so that no collection in a child
ever touches (and un-shares) those objects, and forks one monitor per request. The
monitor runs monitor_main in place, without an exec, so it keeps sharing the
template's pages; it owns only what it writes (~0.7 MiB).

    CLI (montemplate.py)                   template                  monitor M
    lock; connect montpl.sock; unlock
    send request + fds (SCM_RIGHTS) -----> recvmsg, gc.freeze, fork -> reset signals,
                                           close its copies of the     close the
                                           fds and the connection      template's fds
    read "M<pid>" <--------------------------------------------------- "M<pid>", then
    (the start protocol of start.py, unchanged: "P<pid>", R, G,        monitor.py's
     verdict, exit code; M is what monitor.spawn's child is)           run_in_place
                                           SIGCHLD (wakeup fd): reap

Lifecycle, the same flock protocol as proxyd: a client holds `montpl.lock` to
connect or to start a template (`spawn.launch`); the template writes `montpl.pid`
once its imports are done (a client that finds no pid file does not wait for it).
With no monitor and no connection for MINIDOCK_MONTPL_IDLE seconds (30), it takes
the lock without blocking (busy: a client is connecting, retry in 100 ms), serves a
connection that is already queued, else removes its socket and pid file and exits.
Killed with -9, its monitors go on (reparented, as monitors forked by a CLI are) and
the next detached start starts a new template.

What every container it starts inherits from it, as from dockerd: its environment
(the first detached CLI's, minus MINIDOCK_FAULT and MINIDOCK_TRACE), its network and
mount namespaces (the CLI's: the init still enters the container's own netns from
the request), its rlimits, umask, cgroup (the init moves to the container's) and
credentials; its cwd is /.
"""

from __future__ import annotations

import _signal
import gc
import marshal
import os
import select
import socket
import sys
import time

from minidock.runtime import montemplate as mt

EXIT_RETRY = 0.1
MAX_FDS = 8
NAME = b"minidock-montpl"


def preload() -> None:
    """Import what a monitor and its init use, here, once (shared by every fork)."""
    import fcntl, struct, termios  # noqa: F401,E401   (the init's pty, init._console)
    from minidock import pipeline
    from minidock.libc import lib
    from minidock.runtime import caps, cgroups, container, init, monitor, rootfs  # noqa: F401
    from minidock.runtime import monitor_main, reaper, seccomp, users  # noqa: F401
    from minidock.runtime.logwriter import LogWriter  # noqa: F401
    pipeline._FAULT = ""
    lib()


class Template:
    """The accept loop, the children, and leaving when idle."""

    def __init__(self, exec_root: str, listener: socket.socket, idle: float) -> None:
        self.exec_root = exec_root
        self.listener = listener
        self.idle = idle
        self.children: set[int] = set()
        self.conns: dict[int, socket.socket] = {}
        self.stoppers: set[int] = set()      # connections that asked us to stop
        self.quiet_since = time.monotonic()
        self.code = mt.code_stamp()
        self.retiring = False                # stale code: leave now (see _try_exit)
        self.poll = select.poll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(self.wake_w)
        _signal.signal(_signal.SIGCHLD, _ignore)
        self.lockfd = os.open(mt.path(exec_root, "lock"),
                              os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.listener.setblocking(False)
        self.poll.register(self.listener.fileno(), select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)

    def run(self) -> None:
        while True:
            events = self.poll.poll(self._timeout())
            if self._busy():                 # it was, all the time poll waited
                self.quiet_since = time.monotonic()
            for fd, _ev in events:
                if fd == self.listener.fileno():
                    self._accept()
                elif fd == self.wake_r:
                    _drain(self.wake_r)
                elif fd in self.conns:
                    self._serve(self.conns[fd])
            self._reap()
            if self.retiring:
                self._try_exit(force=True)
            elif self._busy():
                self.quiet_since = time.monotonic()
            elif self.stoppers or time.monotonic() - self.quiet_since >= self.idle:
                self._try_exit()

    def _busy(self) -> bool:
        return bool(self.children) or len(self.conns) > len(self.stoppers)

    def _timeout(self) -> int | None:
        if self.retiring:
            return int(EXIT_RETRY * 1000)
        if self._busy():
            return None
        if self.stoppers:
            return int(EXIT_RETRY * 1000)
        left = self.quiet_since + self.idle - time.monotonic()
        return max(int(EXIT_RETRY * 1000), int(left * 1000) + 1)

    def _accept(self) -> bool:
        """Accept what is queued; True if anything was."""
        got = False
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return got
            except OSError:
                return got
            got = True
            if not _peer_allowed(conn):
                conn.close()
                continue
            conn.setblocking(False)
            self.conns[conn.fileno()] = conn
            self.poll.register(conn.fileno(), select.POLLIN)

    def _drop(self, conn: socket.socket) -> None:
        fd = conn.fileno()
        self.poll.unregister(fd)
        del self.conns[fd]
        self.stoppers.discard(fd)
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        """One request: a monitor to fork, or stop."""
        try:
            msg, anc, flags, _ = conn.recvmsg(mt.MAX_MSG, socket.CMSG_SPACE(MAX_FDS * 4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        fds = _fds(anc)
        try:
            if not msg:
                self._drop(conn)
                return
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("request truncated")
            body = marshal.loads(msg)
            if not isinstance(body, dict) or body.get("v") != mt.PROTO:
                raise ValueError("protocol version mismatch")
            if body.get("op") == "stop":
                self._stop_request(conn)
            elif body.get("op") == "monitor":
                if self.retiring or body.get("code") != self.code:
                    self.retiring = True
                    raise ValueError("the template's code is not the CLI's: retiring")
                self._fork_monitor(conn, body, fds)
            else:
                raise ValueError(f"unknown request {body.get('op')!r}")
        except Exception as err:  # noqa: BLE001  (a bad request: the client falls back)
            _send(conn, f"E{err}".encode()[:4000])
            self._drop(conn)
        finally:
            for fd in fds:
                _close(fd)

    def _stop_request(self, conn: socket.socket) -> None:
        if self.children:
            _send(conn, b"B")
            self._drop(conn)
            return
        _send(conn, b"O")                   # EOF follows when we have exited
        self.stoppers.add(conn.fileno())

    def _fork_monitor(self, conn: socket.socket, body: dict, fds: list[int]) -> None:
        args = mt.decode_request(body, fds)
        gc.freeze()                          # the child never scans what we made
        pid = os.fork()
        if pid == 0:
            self._become_monitor(conn, args)
        self.children.add(pid)
        self._drop(conn)                     # the monitor answers on its copy

    def _become_monitor(self, conn: socket.socket, args: tuple) -> None:
        """In the child: drop the template's state, answer, be the monitor."""
        try:
            gc.disable()
            _signal.set_wakeup_fd(-1)
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            for fd in (self.listener.fileno(), self.wake_r, self.wake_w, self.lockfd,
                       *[f for f in self.conns if f != conn.fileno()]):
                _close(fd)
            from minidock.runtime import monitor, monitor_main
            monitor_main.name_process(monitor_main.NAME)
            conn.setblocking(True)
            conn.send(b"M%d" % os.getpid())  # fails if the CLI gave up: leave
            conn.close()
            ctx, ctr, netns, mfds, path = args
            monitor.run_in_place(ctx, ctr, netns, mfds, path)
        finally:
            os._exit(0)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)

    def _try_exit(self, force: bool = False) -> None:
        """Leave, unless a client holds the lock or a connection is queued. `force`
        (our code is stale): leave anyway; our monitors need us for nothing (they
        are reparented, as after a kill), queued clients see EOF and fall back."""
        import fcntl
        try:
            fcntl.flock(self.lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return                            # a client is connecting: next round
        if not force and (self._accept() or self._busy()):   # it came before the lock
            fcntl.flock(self.lockfd, fcntl.LOCK_UN)
            return
        for what in ("sock", "pid"):
            try:
                os.unlink(mt.path(self.exec_root, what))
            except FileNotFoundError:
                pass
        os._exit(0)                           # the lock goes with us; stoppers see EOF


def _ignore(_sig: int, _frame: object) -> None:
    """SIGCHLD only wakes the loop (set_wakeup_fd); reaping is done there."""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


def _fds(anc: list) -> list[int]:
    out: list[int] = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(data) // 4
            out += [int.from_bytes(data[i * 4:i * 4 + 4], sys.byteorder, signed=True)
                    for i in range(n)]
    return out


def _peer_allowed(conn: socket.socket) -> bool:
    """Only our own user (root) may hand us a container to start."""
    import struct
    try:
        cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", cred)
    return uid in (0, os.getuid())


def _send(conn: socket.socket, data: bytes) -> None:
    try:
        conn.send(data)
    except OSError:
        pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _write_pid(exec_root: str) -> None:
    """montpl.pid, written once ready: clients take its presence as "ready"."""
    path = mt.path(exec_root, "pid")
    with open(path + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(path + ".tmp", path)


def main(argv: list[str]) -> None:
    """leanboot entry: argv = [exec-root, listening fd]."""
    exec_root, listen_fd = argv[0], int(argv[1])
    from minidock.runtime.monitor_main import name_process
    name_process(NAME)
    for key in ("MINIDOCK_FAULT", "MINIDOCK_TRACE"):   # one CLI's knobs, not ours
        os.environ.pop(key, None)
    preload()
    try:
        idle = float(os.environ.get(mt.IDLE_ENV) or 30)
    except ValueError:
        idle = 30.0
    listener = socket.socket(fileno=listen_fd)
    listener.set_inheritable(False)
    tpl = Template(exec_root, listener, idle)
    gc.freeze()
    _write_pid(exec_root)
    tpl.run()
