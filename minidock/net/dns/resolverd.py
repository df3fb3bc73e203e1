"""The resolver process: minidock's embedded DNS server, one per exec-root.

How 127.0.0.11 reaches it. For each attached container this process enters the
container's netns (setns on the sandbox key, on the main thread only), creates a UDP
and a TCP socket, binds them to 127.0.0.11:53 and switches back. A socket belongs to
the netns it was created in, so one process in the host netns serves every container
through per-container sockets, and it knows who is asking by the socket a query
arrived on: the answer is scoped to that container's networks (dnsrecords.lookup).
It never listens on a host address.

Docker instead binds random ports and DNATs 127.0.0.11:53 to them in the container's
netns. We bind port 53 directly because it needs no iptables in any netns: no
iptables-restore per container start (a subprocess, and xtables.lock is host-wide, so
it serialises all starts), and DNS keeps working with `"iptables": false`. The socket
gets IP_FREEBIND, so binding works even before `lo` is up. The price, documented: a
container process cannot bind port 53 on 0.0.0.0 or 127.0.0.11 itself (EADDRINUSE),
which Docker's DNAT allows.

Sockets hold their netns alive (and with it the container's veth), so `detach` closes
them at once; as a safety net, every GC_INTERVAL seconds a sandbox whose key no longer
names the netns we entered is detached too.

Lifecycle (see resolver.py for the client side and the locking protocol):

    client (under resolver.lock)        this process
    ----------------------------        -------------------------------------------
    connect ctl.sock -> refused
    bind+listen ctl.sock, fork+exec --> inherit the listening fd (--listen-fd)
    connect (queued in the backlog)     re-attach every sandbox recorded in
    unlock, send "attach ..."             sandboxes/<id> (restart after a kill -9)
                                        accept, attach, reply "ok"
    ...                                 last detach: take resolver.lock, drain the
                                          backlog, unlink ctl.sock, exit

Control messages are one line each way, tab-separated: `attach\\t<id>\\t<netns path>`,
`detach\\t<id>`, `ping`; replies `ok` or `error\\t<message>`.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import threading
import time
from minidock.hints import Any

from minidock.net.dns import dnsrecords, dnswire
from minidock.spawn import read_line
from minidock.net.dns.dnsforward import Forwarder, UpstreamConfig
from minidock.net.kernel.netns import in_netns_fd
from minidock.net.dns.resolver import Paths
from minidock.store import Store

DNS_IP = "127.0.0.11"
DNS_PORT = 53
TTL = 600
GC_INTERVAL = float(os.environ.get("MINIDOCK_RESOLVER_GC", "10"))  # seconds; tests shorten it
STARTUP_GRACE = 3.0  # a resolver started by resolver.start() waits this long for attach
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
UDP_BATCH = 64       # datagrams read per wake-up of a container's socket
CACHE_MAX = 4096     # cached answers; a full cache starts again (any query shape fills it)


class Sandbox:
    """One attached container: its sockets inside its netns."""

    def __init__(self, cid: str, path: str, ino: int, udp: socket.socket,
                 tcp: socket.socket) -> None:
        self.cid, self.path, self.ino, self.udp, self.tcp = cid, path, ino, udp, tcp
        self.conns: set[socket.socket] = set()

    def close(self) -> None:
        for sock in (self.udp, self.tcp, *self.conns):
            sock.close()
        self.conns.clear()


def _dns_sockets() -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on 127.0.0.11:53 in the calling thread's netns."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        for sock in (udp, tcp):
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((DNS_IP, DNS_PORT))
            sock.setblocking(False)
        tcp.listen(64)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


class Resolver:
    """The event loop: control socket, per-container DNS sockets, TCP clients."""

    def __init__(self, paths: Paths, root: str, listener: socket.socket) -> None:
        self.paths = paths
        self.listener = listener
        self.store = Store(root)
        self.upstreams = UpstreamConfig(root)
        self.forwarder = Forwarder()
        self.sandboxes: dict[str, Sandbox] = {}
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, ("ctl", None))
        self.running = True
        self.idle_at = time.monotonic() + STARTUP_GRACE
        self.lingering: list[socket.socket] = []
        # (container, query without its id) -> answer without its id: local UDP
        # answers with at most one address (more are shuffled per answer). Valid while
        # the store is unchanged: PRAGMA data_version moves on any other commit.
        self.cache: dict[tuple[str, bytes], bytes] = {}
        self.version = -1

    # -- sandboxes ---------------------------------------------------------------------
    def attach(self, cid: str, path: str, fallback: str = "") -> None:
        """Serve DNS inside the netns at `path` for `cid`; idempotent. `fallback` (the
        init's /proc/<pid>/ns/net) when `path`, a key mounted in another mount
        namespace (`ip netns exec`), is only an empty file here."""
        if fallback and not _is_netns(path):
            path = fallback
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ino = os.fstat(fd).st_ino
            old = self.sandboxes.get(cid)
            if old and old.path == path and old.ino == ino:
                return
            self.detach(cid, keep_record=True)
            # the record first: a container's sockets never exist without it, so a
            # client that finds no record has nothing to detach (api._resolver_detach)
            self.paths.write_record(cid, path)
            try:
                with in_netns_fd(fd):
                    udp, tcp = _dns_sockets()
            except BaseException:
                self.paths.remove_record(cid)
                raise
        finally:
            os.close(fd)
        sb = Sandbox(cid, path, ino, udp, tcp)
        self.sandboxes[cid] = sb
        self.sel.register(udp, selectors.EVENT_READ, ("udp", sb))
        self.sel.register(tcp, selectors.EVENT_READ, ("tcp", sb))

    def detach(self, cid: str, keep_record: bool = False) -> None:
        """Close the container's sockets (they pin its netns); idempotent."""
        sb = self.sandboxes.pop(cid, None)
        if sb is not None:
            for sock in (sb.udp, sb.tcp, *sb.conns):
                self._unregister(sock)
            sb.close()
        if not keep_record:
            self.paths.remove_record(cid)

    def restore(self) -> None:
        """Re-attach every recorded sandbox (after a restart); drop the dead ones."""
        for cid, path in self.paths.records():
            try:
                self.attach(cid, path)
            except OSError as err:
                log(f"drop sandbox {cid[:12]} ({path}): {err}")
                self.paths.remove_record(cid)

    def gc(self) -> None:
        """Detach sandboxes whose key is gone or now names another netns."""
        for cid, sb in list(self.sandboxes.items()):
            try:
                alive = os.stat(sb.path).st_ino == sb.ino
            except OSError:
                alive = False
            if not alive:
                log(f"sandbox {cid[:12]} is gone: detached")
                self.detach(cid)

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    # -- DNS -------------------------------------------------------------------------
    def answer(self, sb: Sandbox, raw: bytes, tcp: bool, reply: Any) -> None:
        """Answer one query from container `sb`: locally, or via an upstream."""
        try:
            q = dnswire.parse_query(raw)
        except dnswire.WireError:
            err = dnswire.formerr(raw)
            if err:
                reply(err)
            return
        local, cacheable = self._local(sb.cid, q, tcp)
        if local is not None:
            if cacheable and not tcp:
                if len(self.cache) >= CACHE_MAX:
                    self.cache.clear()
                self.cache[(sb.cid, raw[2:])] = local[2:]
            reply(local)
            return
        doc = self.store.get("container", sb.cid)
        self.forwarder.forward(q, raw, self.upstreams.for_container(doc), tcp, reply)

    def local_answer(self, cid: str, q: dnswire.Query, tcp: bool) -> bytes | None:
        """The reply for a name we own, or None to forward the query."""
        return self._local(cid, q, tcp)[0]

    def _local(self, cid: str, q: dnswire.Query, tcp: bool) -> tuple[bytes | None, bool]:
        """(local_answer, whether the same query always gets the same answer)."""
        if q.opcode != 0:
            return dnswire.answer_rcode(q, 4), True  # NOTIMP
        if q.qclass != dnswire.CLASS_IN or not q.name:
            return None, False
        size = 65535 if tcp else None
        if q.qtype in (dnswire.TYPE_A, dnswire.TYPE_AAAA):
            ips = dnsrecords.lookup(self.store, cid, q.name)
            if not ips:
                return None, False
            if q.qtype == dnswire.TYPE_AAAA:
                ips6 = dnsrecords.lookup(self.store, cid, q.name, family=6)
                if not ips6:
                    return dnswire.answer_empty(q), True
                return dnswire.answer_aaaa(q, ips6, TTL, size), len(ips6) == 1
            return dnswire.answer_a(q, ips, TTL, size), len(ips) == 1
        if q.qtype == dnswire.TYPE_PTR:
            ip = dnswire.ptr_target(q.name)
            names = dnsrecords.reverse(self.store, cid, ip) if ip else []
            return (dnswire.answer_ptr(q, names, TTL, size), False) if names else (None, False)
        return None, False

    def check_cache(self) -> None:
        """Forget every cached answer once another process has changed the store."""
        version = self.store._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version:
            self.cache.clear()
            self.version = version

    def on_udp(self, sb: Sandbox) -> None:
        """Answer what the container's socket holds (UDP_BATCH at most, then the other
        sockets get their turn): from the cache, else through answer()."""
        udp, cache, cid = sb.udp, self.cache, sb.cid
        for _ in range(UDP_BATCH):
            try:
                raw, addr = udp.recvfrom(4096)
            except OSError:
                return
            hit = cache.get((cid, raw[2:]))
            if hit is not None:
                try:
                    udp.sendto(raw[:2] + hit, addr)
                except OSError:
                    pass
                continue

            def reply(msg: bytes, addr: Any = addr) -> None:
                udp.sendto(msg, addr)
            self._safe_answer(sb, raw, False, reply)

    def on_accept(self, sb: Sandbox) -> None:
        try:
            conn, _ = sb.tcp.accept()
        except OSError:
            return
        conn.settimeout(5.0)
        sb.conns.add(conn)
        self.sel.register(conn, selectors.EVENT_READ, ("conn", (sb, conn, [b""], threading.Lock())))

    def on_conn(self, sb: Sandbox, conn: socket.socket, buf: list[bytes], lock: Any) -> None:
        try:
            data = conn.recv(65537)
        except OSError:
            data = b""
        if not data:
            self._unregister(conn)
            sb.conns.discard(conn)
            conn.close()
            return
        msgs, buf[0] = dnswire.unframe(buf[0] + data)

        def reply(msg: bytes) -> None:
            with lock:
                conn.sendall(dnswire.frame(msg))
        for raw in msgs:
            self._safe_answer(sb, raw, True, reply)

    def _safe_answer(self, sb: Sandbox, raw: bytes, tcp: bool, reply: Any) -> None:
        try:
            self.answer(sb, raw, tcp, reply)
        except OSError:
            pass  # the client went away
        except Exception as err:  # a bug must not kill every container's DNS
            log(f"error answering for {sb.cid[:12]}: {err!r}")

    # -- control -----------------------------------------------------------------------
    def on_control(self) -> bool:
        """Serve one control connection; False if none was pending.

        After a request that leaves no container attached (the last detach, a failed
        first attach) the connection is held open until this process exits (the client waits for EOF), so that the last `detach` returns
        only when the resolver is gone: tests and leak checks never see it linger.
        """
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return False
        conn.settimeout(5.0)
        line = ""
        try:
            line = read_line(conn)
            if line:
                conn.sendall((self.control(line) + "\n").encode())
        except OSError as err:
            log(f"control connection: {err}")
        if line and not self.sandboxes:
            self.idle_at = 0.0
            self.lingering.append(conn)
        else:
            conn.close()
        return True

    def control(self, line: str) -> str:
        op, *args = line.split("\t")
        try:
            if op == "attach" and len(args) in (2, 3):
                self.attach(*args)
            elif op == "detach" and len(args) == 1:
                self.detach(args[0])
            elif op != "ping":
                return f"error\tunknown request {op!r}"
        except OSError as err:
            return f"error\tcannot serve DNS in the network namespace of {args[0][:12]}: " \
                   f"{err.strerror or err}"
        return "ok"

    # -- loop ----------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until no container needs us (after STARTUP_GRACE when none ever did)."""
        self.listener.setblocking(False)
        next_gc = time.monotonic() + GC_INTERVAL
        while self.running:
            now = time.monotonic()
            if not self.sandboxes and now >= self.idle_at and self.idle_exit():
                return
            for conn in self.lingering:
                conn.close()
            self.lingering.clear()
            wait = GC_INTERVAL if self.sandboxes else max(0.0, self.idle_at - now)
            events = self.sel.select(min(wait, GC_INTERVAL))
            if time.monotonic() >= next_gc:
                self.gc()
                next_gc = time.monotonic() + GC_INTERVAL
            if events:
                self.check_cache()
            for key, _ in events:
                kind, data = key.data
                if kind == "ctl":
                    self.on_control()
                elif kind == "udp":
                    self.on_udp(data)
                elif kind == "tcp":
                    self.on_accept(data)
                elif kind == "conn":
                    self.on_conn(*data)

    def idle_exit(self) -> bool:
        """No container needs us: exit, unless a client is already queued (race-free)."""
        with self.paths.locked():
            while self.on_control():
                if self.sandboxes:
                    return False
            self.shutdown()
        return True

    def shutdown(self) -> None:
        """Close every socket but the lingering control connections (see on_control)."""
        self.running = False
        for cid in list(self.sandboxes):
            self.detach(cid, keep_record=True)
        self.paths.unlink_socket(self.listener)
        self.listener.close()


def _is_netns(path: str) -> bool:
    """True when `path` is a mounted netns here (nsfs, another device than its dir)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def log(msg: str) -> None:
    print(f"minidock-resolver[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    """`python -m minidock.net.dns.resolverd ROOT EXEC_ROOT LISTEN_FD` (started by resolver.py)."""
    root, exec_root, fd = argv[0], argv[1], int(argv[2])
    os.chdir("/")
    from minidock.leanboot import raise_fd_limit
    raise_fd_limit()
    listener = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    server = Resolver(Paths(exec_root), root, listener)
    log("started")
    server.restore()
    server.run()
    log("no container needs DNS: exiting")
    os._exit(0)  # the kernel closes the lingering control connections: EOF = gone


if __name__ == "__main__":
    main(sys.argv[1:])
