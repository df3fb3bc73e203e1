"""The userland proxy process: one per host (per exec-root) for every published port.

Docker runs one `docker-proxy` per port and family; users hate it (wide ranges eat GBs).
minidock runs this single process, started on demand by `proxy.publish`, gone by itself
when it serves nothing. It serves the clients the NAT rules exclude (the host's own
127.0.0.1, hairpin traffic from a bridge) and holds the placeholder listeners of
`userland-proxy: false`. The data path is in proxyrelay.py; this module is the event
loop, the owner table and the control socket.

Lifecycle. Every client holds `<exec-root>/proxy.lock` (flock) for a whole request, so
"is it running / start it / talk to it" is one atomic step and the proxy can leave
without racing a newcomer:

    client (holds the lock)                      proxyd
    bind+listen proxy.sock
    fork, setsid, fork, exec  --------------->   main(): proxy.pid, re-bind proxy.json
    connect (queued in backlog), send  ----->    accept, recvmsg (+fds), install
                                       <-----    ok   (proxy.json rewritten)
    release the lock, then close  ---------->    EOF: no owners and no control conns?
                                                   flock(NB) ok   -> unlink sock, pid,
                                                                     table; exit
                                                   flock busy     -> a client is coming:
                                                                     retry in 100 ms
A proxy killed with -9 leaves proxy.json behind; `proxy.ensure_running` (or the next
publish) starts a new one, which re-binds every forward in it by itself.

Fds are never closed in the middle of an epoll batch (`retire` queues, `_reap` closes):
a number reused by a new socket must not receive a stale event meant for the old one.
Stdlib only, and not `socket`/`json`/`signal` (memory: see proxyproto).
"""

from __future__ import annotations

import _socket
import fcntl
import os
import select
import time

from minidock.net.ports import proxyproto as pp
from minidock.net.ports.proxyrelay import EP_IN, PIPE_SIZE, POOL_MAX, TcpListener, UdpListener

ANC_SIZE = _socket.CMSG_SPACE(pp.MAX_FDS * 4)
EXIT_RETRY = 0.1


class Proxy:
    """The epoll loop, the owner table, the pipe pool, and leaving when idle."""

    def __init__(self, exec_root: str, udp_idle: float) -> None:
        self.exec_root = exec_root
        self.udp_idle = udp_idle
        self.ep = select.epoll()
        self.handlers: dict[int, object] = {}
        self.owners: dict[str, list] = {}
        self.controls: set = set()
        self.ctl: "_socket.socket | None" = None
        self.pipes: list[tuple[int, int]] = []
        self.dead: list = []
        self.outgoing: list = []                            # control conns with a reply
        self.warnings: list[str] = []
        self.now = time.monotonic()
        self.next_sweep = 0.0
        self.has_udp = False
        self.exit_pending = False
        self.buf = bytearray(65536)
        self.mv = memoryview(self.buf)
        self.lockfd = os.open(pp.path(exec_root, "lock"),
                              os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    # -- the interface relays use ----------------------------------------------------
    def watch(self, fd: int, obj: object, events: int) -> None:
        self.handlers[fd] = obj
        self.ep.register(fd, events)

    def forget(self, fd: int, unregister: bool = False) -> None:
        """Drop fd's handler; `unregister` for fds another process may also hold."""
        self.handlers.pop(fd, None)
        if unregister:
            try:
                self.ep.unregister(fd)
            except OSError:
                pass

    def retire(self, obj) -> None:
        """Close obj (and its children) at the end of this batch."""
        if obj.closed:
            return
        obj.closed = True
        self.dead.append(obj)
        for child in getattr(obj, "children", list)():
            self.retire(child)

    def take_pipe(self) -> tuple[int, int]:
        if self.pipes:
            return self.pipes.pop()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass                                            # keep the default size
        return r, w

    def give_pipe(self, pipe: tuple[int, int], clean: bool) -> None:
        if clean and len(self.pipes) < POOL_MAX:
            self.pipes.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])

    # -- the table -------------------------------------------------------------------
    def install(self, owner: str, entries: list, save: bool = True) -> None:
        """entries: [(forward, serve, bound socket)]; appended to the owner's list."""
        listeners = self.owners.setdefault(owner, [])
        for fwd, serve, sock in entries:
            cls = TcpListener if fwd[0] == "tcp" else UdpListener
            listeners.append(cls(self, sock, fwd, serve))
            self.has_udp = self.has_udp or (fwd[0] == "udp" and serve)
        if save:
            self.save()

    def remove(self, owner: str) -> None:
        for listener in self.owners.pop(owner, []):
            self.retire(listener)
        self.has_udp = any(li.fwd[0] == "udp" and li.serve
                           for ls in self.owners.values() for li in ls)
        self.save()

    def save(self) -> None:
        table = {o: [(li.fwd, li.serve) for li in ls] for o, ls in self.owners.items()}
        path = pp.path(self.exec_root, "table")
        with open(path + ".tmp", "w") as fh:
            fh.write(pp.encode_table(table))
        os.replace(path + ".tmp", path)

    def restore(self) -> None:
        """Re-bind what a previous proxy served (after a kill); failures become warnings."""
        try:
            with open(pp.path(self.exec_root, "table")) as fh:
                table = pp.decode_table(fh.read())
        except FileNotFoundError:
            return
        except pp.WireError as err:
            self.warnings.append(str(err))
            return
        for owner, entries in table.items():
            bound = []
            for fwd, serve in entries:
                try:
                    sock = pp.bind_forward(fwd)
                except OSError as err:
                    self.warnings.append(pp.bind_error(fwd, err))
                    continue
                if sock is not None:
                    bound.append((fwd, serve, sock))
            if bound:
                self.install(owner, bound, save=False)
        self.save()

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        while True:
            events = self.ep.poll(self._timeout(), 512)
            self.now = time.monotonic()
            handlers = self.handlers
            for fd, ev in events:
                obj = handlers.get(fd)
                if obj is not None and not obj.closed:
                    obj.on_event(fd, ev)
            if self.has_udp and self.now >= self.next_sweep:
                self._sweep()
            if self.dead:
                self._reap()
            if self.outgoing:                               # after the reap: an unpublish
                self._answer()                              # is acked once its fds are closed
            if self.exit_pending:
                self._try_exit()

    def _timeout(self) -> float:
        timeout = -1.0
        if self.has_udp:
            timeout = max(0.0, self.next_sweep - time.monotonic())
        if self.exit_pending:
            timeout = EXIT_RETRY if timeout < 0 else min(timeout, EXIT_RETRY)
        return timeout

    def _sweep(self) -> None:
        self.next_sweep = self.now + self.udp_idle / 2
        for listeners in self.owners.values():
            for li in listeners:
                if li.fwd[0] == "udp":
                    li.sweep(self.now - self.udp_idle)

    def _reap(self) -> None:
        dead, self.dead = self.dead, []
        for obj in dead:
            obj.release()

    def _answer(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        for conn in outgoing:
            conn.flush()

    def _try_exit(self) -> None:
        if self.owners or self.controls:
            self.exit_pending = False                       # re-checked at the next close
            return
        try:
            fcntl.flock(self.lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return                                          # a client is coming: retry
        if select.select([self.ctl], [], [], 0)[0]:
            fcntl.flock(self.lockfd, fcntl.LOCK_UN)         # one got in anyway: serve it
            self.exit_pending = False
            return
        self.leave()

    def leave(self) -> None:
        """Remove our files and exit; the caller holds the lock (or a client does)."""
        for name in ("sock", "pid", "table"):
            try:
                os.unlink(pp.path(self.exec_root, name))
            except FileNotFoundError:
                pass
        os._exit(0)


class Control:
    """The control listener on proxy.sock (SOCK_SEQPACKET)."""

    closed = False

    def __init__(self, proxy: Proxy, sock: "_socket.socket") -> None:
        self.proxy, self.sock = proxy, sock
        sock.setblocking(False)
        proxy.ctl = sock
        proxy.watch(sock.fileno(), self, EP_IN)

    def on_event(self, fd: int, ev: int) -> None:
        while True:
            try:
                cfd, _addr = self.sock._accept()
            except OSError:
                return
            ControlConn(self.proxy, _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, cfd))


class ControlConn:
    """One client: a sequence of requests, each answered (publish: at its last part)."""

    __slots__ = ("proxy", "sock", "parts", "failed", "closed", "outbox")

    def __init__(self, proxy: Proxy, sock: "_socket.socket") -> None:
        self.proxy, self.sock, self.closed = proxy, sock, False
        self.parts: list = []
        self.failed = ""
        self.outbox = b""
        sock.setblocking(False)
        proxy.controls.add(self)
        proxy.watch(sock.fileno(), self, EP_IN)

    def on_event(self, fd: int, ev: int) -> None:
        try:
            data, anc, flags, _ = self.sock.recvmsg(pp.MAX_MSG, ANC_SIZE, _socket.MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            return
        except OSError:
            data, anc, flags = b"", [], 0
        fds = [fd for level, kind, raw in anc
               if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
               for fd in memoryview(raw[:len(raw) - len(raw) % 4]).cast("i")]
        if not data:
            _close_all(fds)
            self.proxy.retire(self)
            return
        try:
            if flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):
                raise pp.WireError("message truncated")
            request = pp.decode_request(data)
        except pp.WireError as err:
            _close_all(fds)
            self._reply(pp.encode_reply(False, str(err)))
            self.proxy.retire(self)                         # its next parts are garbage
            return
        reply = self._handle(request, fds)
        if reply is not None:
            self._reply(reply)

    def _handle(self, request: tuple, fds: list[int]) -> bytes | None:
        op, owner, serve, last, fwds = request
        proxy = self.proxy
        if op == "publish":
            return self._publish(owner, serve, last, fwds, fds)
        _close_all(fds)
        if op == "unpublish":
            proxy.remove(owner)
        elif op == "ping":
            warnings, proxy.warnings = proxy.warnings, []
            return pp.encode_reply(True, detail=[str(os.getpid()), *warnings])
        elif op == "list":
            return pp.encode_reply(True, detail=[
                f"{o} {int(li.serve)} " + " ".join(str(x) for x in li.fwd)
                for o, ls in sorted(proxy.owners.items()) for li in ls])
        elif op == "stop":
            if proxy.owners:
                return pp.encode_reply(False, f"proxy still serves {len(proxy.owners)} owners")
            self._reply(pp.encode_reply(True))
            self.flush()
            proxy.leave()                                   # the client holds the lock
        return pp.encode_reply(True)

    def _publish(self, owner: str, serve: bool, last: bool, fwds: list, fds: list[int]) -> bytes | None:
        if len(fds) != len(fwds):
            self.failed = f"{len(fwds)} forwards but {len(fds)} sockets"
        elif self.parts and self.parts[0][0] != owner:
            self.failed = "publish parts name different owners"
        if self.failed:
            _close_all(fds)
        else:
            self.parts += [(owner, fwd, fd) for fwd, fd in zip(fwds, fds)]
        if not last:
            return None
        parts, self.parts, failed, self.failed = self.parts, [], self.failed, ""
        if failed:
            _close_all([fd for _, _, fd in parts])
            return pp.encode_reply(False, failed)
        entries = [(fwd, serve, _socket.socket(
            pp.family_of(fwd[1]), _socket.SOCK_STREAM if fwd[0] == "tcp" else _socket.SOCK_DGRAM,
            0, fd)) for _, fwd, fd in parts]
        self.proxy.install(owner, entries)
        return pp.encode_reply(True)

    def _reply(self, data: bytes) -> None:
        """Queue the answer: the loop sends it after this batch's closes are done."""
        self.outbox = data
        self.proxy.outgoing.append(self)

    def flush(self) -> None:
        data, self.outbox = self.outbox, b""
        if data:
            try:
                self.sock.send(data)
            except OSError:
                self.proxy.retire(self)

    def release(self) -> None:
        self.flush()
        _close_all([fd for _, _, fd in self.parts])
        self.proxy.controls.discard(self)
        self.proxy.forget(self.sock.fileno())
        self.sock.close()
        self.proxy.exit_pending = True


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def main(argv: list[str]) -> None:
    """<exec-root> <control-listener-fd>: serve until nothing is left (see proxy._spawn)."""
    exec_root, ctl_fd = argv[0], int(argv[1])
    from minidock.leanboot import raise_fd_limit
    raise_fd_limit()
    proxy = Proxy(exec_root, float(os.environ.get("MINIDOCK_PROXY_UDP_IDLE") or 30))
    pid_path = pp.path(exec_root, "pid")
    with open(pid_path + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(pid_path + ".tmp", pid_path)
    Control(proxy, _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, ctl_fd))
    proxy.restore()
    proxy.run()

