"""The proxy's data path: TCP and UDP relays driven by proxyd's epoll loop.

TCP: accept, connect non-blocking to the container, then `splice` through one pipe per
direction (zero copy, 1 MiB pipes from a pool), edge-triggered: each event pumps both
directions until a side would block, so no readiness edge is lost. EOF on one side ->
shutdown(SHUT_WR) on the other (half-close); both directions done, or any error ->
close both. UDP: one connected socket per client address toward the container, its
replies sent back from the listening socket; idle flows are swept by the loop.

Each relay object talks to the loop through a narrow interface (`watch`, `forget`,
`retire`, `take_pipe`, `give_pipe`, `now`, `buf`, `mv`) and never closes an fd in the
middle of an epoll batch: `retire` defers it (see proxyd). Stdlib only, `_socket` not
`socket` (memory: see proxyproto).
"""

from __future__ import annotations

import _socket
import os
import select

from minidock.net.ports import proxyproto as pp

TYPE_CHECKING = False        # not `typing`: it imports `re`
if TYPE_CHECKING:
    from minidock.net.ports.proxyd import Proxy as Loop

PIPE_SIZE = 1 << 20                    # F_SETPIPE_SZ: big pipes, fewer splices
POOL_MAX = 64
SPLICE = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
EP_IN, EP_OUT, EP_ERR = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR
EP_READ = EP_IN | select.EPOLLHUP
ET_RW = EP_IN | EP_OUT | select.EPOLLET
EINPROGRESS = 115


class Half:
    """One direction of a TCP connection: src -> pipe -> dst."""

    __slots__ = ("src", "dst", "dsock", "pr", "pw", "pending", "eof", "done")

    def __init__(self, src: int, dsock: "_socket.socket", pipe: tuple[int, int]) -> None:
        self.src, self.dst, self.dsock = src, dsock.fileno(), dsock
        self.pr, self.pw = pipe
        self.pending = 0
        self.eof = self.done = False

    def pump(self) -> None:
        """Move bytes until a side would block; OSError means the connection is dead."""
        while not self.done:
            if self.pending:
                try:
                    self.pending -= os.splice(self.pr, self.dst, self.pending, flags=SPLICE)
                except BlockingIOError:
                    return                                  # dst full: wait for EPOLLOUT
                continue
            if self.eof:
                self.dsock.shutdown(_socket.SHUT_WR)
                self.done = True
                return
            try:
                n = os.splice(self.src, self.pw, PIPE_SIZE, flags=SPLICE)
            except BlockingIOError:
                return                                      # src empty: wait for EPOLLIN
            if n == 0:
                self.eof = True
            self.pending += n


class TcpConn:
    """A client connection and its connection to the container."""

    __slots__ = ("proxy", "listener", "c", "b", "cfd", "bfd", "up", "down", "closed")

    def __init__(self, proxy: "Loop", listener: "TcpListener", cfd: int) -> None:
        self.proxy, self.listener = proxy, listener
        self.up = self.down = None
        self.closed = False
        self.c = _socket.socket(listener.sock.family, _socket.SOCK_STREAM, 0, cfd)
        self.c.setblocking(False)
        self.cfd = cfd
        fwd = listener.fwd
        self.b = _socket.socket(pp.family_of(fwd[3]), _socket.SOCK_STREAM
                                | _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC)
        self.bfd = self.b.fileno()
        for s in (self.c, self.b):
            s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        err = self.b.connect_ex((fwd[3], fwd[4]))
        listener.conns.add(self)
        proxy.watch(self.cfd, self, ET_RW)
        proxy.watch(self.bfd, self, ET_RW)
        if err == 0:
            self._connected()
        elif err != EINPROGRESS:
            proxy.retire(self)

    def _connected(self) -> None:
        self.up = Half(self.cfd, self.b, self.proxy.take_pipe())
        self.down = Half(self.bfd, self.c, self.proxy.take_pipe())

    def on_event(self, fd: int, ev: int) -> None:
        if self.closed:
            return
        if ev & EP_ERR:
            self.proxy.retire(self)
            return
        if self.up is None:                                 # a failed connect is EPOLLERR
            if fd != self.bfd:
                return                                      # client data waits for connect
            self._connected()
            halves = (self.up, self.down)                   # client data may be waiting
        elif fd == self.cfd:                                # pump only what this edge
            halves = self._woken(self.up, self.down, ev)    # can move: fewer EAGAINs
        else:
            halves = self._woken(self.down, self.up, ev)
        try:
            for half in halves:
                half.pump()
        except OSError:
            self.proxy.retire(self)
            return
        if self.up.done and self.down.done:
            self.proxy.retire(self)

    @staticmethod
    def _woken(reads: Half, writes: Half, ev: int) -> tuple:
        """The halves an event on one socket can advance: the one reading from it
        (readable, EOF) and the one writing to it (writable, if it has bytes waiting)."""
        if ev & EP_OUT and writes.pending:
            return (reads, writes) if ev & EP_READ else (writes,)
        return (reads,) if ev & EP_READ else ()

    def release(self) -> None:
        for half in (self.up, self.down):
            if half is not None:
                self.proxy.give_pipe((half.pr, half.pw), clean=half.pending == 0)
        self.proxy.forget(self.cfd)
        self.proxy.forget(self.bfd)
        self.c.close()
        self.b.close()
        self.listener.conns.discard(self)


class TcpListener:
    __slots__ = ("proxy", "sock", "fwd", "serve", "conns", "closed")

    def __init__(self, proxy: "Loop", sock: "_socket.socket", fwd: pp.Fwd, serve: bool) -> None:
        self.proxy, self.sock, self.fwd, self.serve = proxy, sock, fwd, serve
        self.conns: set[TcpConn] = set()
        self.closed = False
        sock.setblocking(False)
        if serve:
            proxy.watch(sock.fileno(), self, EP_IN)

    def on_event(self, fd: int, ev: int) -> None:
        for _ in range(64):
            if self.closed:
                return
            try:
                cfd, _addr = self.sock._accept()
            except OSError:
                return                                      # EAGAIN (or EMFILE: retry later)
            TcpConn(self.proxy, self, cfd)

    def children(self) -> list[TcpConn]:
        return list(self.conns)

    def release(self) -> None:
        self.proxy.forget(self.sock.fileno(), unregister=self.serve)
        self.sock.close()


class UdpFlow:
    """One client address: a connected socket to the container."""

    __slots__ = ("listener", "addr", "sock", "last", "closed")

    def __init__(self, listener: "UdpListener", addr: tuple) -> None:
        self.listener, self.addr, self.closed = listener, addr, False
        fwd = listener.fwd
        self.sock = _socket.socket(pp.family_of(fwd[3]), _socket.SOCK_DGRAM
                                   | _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC)
        self.sock.connect((fwd[3], fwd[4]))
        self.last = listener.proxy.now
        listener.proxy.watch(self.sock.fileno(), self, EP_IN)

    def on_event(self, fd: int, ev: int) -> None:
        proxy = self.listener.proxy
        for _ in range(64):
            try:
                n = self.sock.recv_into(proxy.buf)
            except BlockingIOError:
                return
            except OSError:
                continue                                    # ICMP unreachable: drop it
            self.last = proxy.now
            try:
                self.listener.sock.sendto(proxy.mv[:n], self.addr)
            except OSError:
                pass

    def release(self) -> None:
        self.listener.proxy.forget(self.sock.fileno())
        self.sock.close()
        self.listener.flows.pop(self.addr, None)


class UdpListener:
    __slots__ = ("proxy", "sock", "fwd", "serve", "flows", "closed")

    def __init__(self, proxy: "Loop", sock: "_socket.socket", fwd: pp.Fwd, serve: bool) -> None:
        self.proxy, self.sock, self.fwd, self.serve = proxy, sock, fwd, serve
        self.flows: dict[tuple, UdpFlow] = {}
        self.closed = False
        sock.setblocking(False)
        if serve:
            proxy.watch(sock.fileno(), self, EP_IN)

    def on_event(self, fd: int, ev: int) -> None:
        proxy = self.proxy
        for _ in range(64):
            if self.closed:
                return
            try:
                n, addr = self.sock.recvfrom_into(proxy.buf)
            except BlockingIOError:
                return
            except OSError:
                continue
            flow = self.flows.get(addr)
            if flow is None:
                try:
                    flow = self.flows[addr] = UdpFlow(self, addr)
                except OSError:
                    continue
            flow.last = proxy.now
            try:
                flow.sock.send(proxy.mv[:n])
            except OSError:
                pass

    def sweep(self, older_than: float) -> None:
        for flow in [f for f in self.flows.values() if f.last < older_than]:
            self.proxy.retire(flow)

    def children(self) -> list[UdpFlow]:
        return list(self.flows.values())

    def release(self) -> None:
        self.proxy.forget(self.sock.fileno(), unregister=self.serve)
        self.sock.close()
