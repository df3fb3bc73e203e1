"""Forwarding of names the embedded resolver does not own to upstream servers.

Docker's rules: the upstreams are the container's `--dns` servers, else the daemon's
`dns` option, else the host's resolv.conf nameservers *including* loopback ones (they
work because the resolver sends from the host's netns, not the container's); at most 3
are tried in order, each with a 4 s timeout. If every upstream fails (timeout,
unreachable, no server at all) the client gets NXDOMAIN; an upstream's own
answer, NXDOMAIN or not, is passed through unchanged except for the 16-bit ID.

A query arriving over TCP is forwarded over TCP; one arriving over UDP goes over UDP
and the upstream's answer, truncated or not, is returned as is (the client retries
over TCP on TC, as stub resolvers do).

Test knobs (read from the resolver's environment, which it inherits from the minidock
command that started it): MINIDOCK_RESOLV_CONF (the host resolv.conf, default
/etc/resolv.conf) and MINIDOCK_DNS_TIMEOUT (seconds per upstream, default 4).

Each forwarded query runs on its own short-lived thread with blocking sockets: the
resolver's main loop never waits on the network. Threads are only ever created by the
main thread while it is in the host netns (setns is per thread, and a new thread
starts in its creator's namespaces), so every upstream socket is a host socket.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import socket
import struct
import threading
from minidock.hints import Any, Callable

from minidock.net.dns import dnswire

MAX_UPSTREAMS = 3
DEFAULT_TIMEOUT = 4.0
MAX_CONCURRENT = 256
DEFAULT_RESOLV_CONF = "/etc/resolv.conf"

Reply = Callable[[bytes], None]


# -- which upstreams (pure) ------------------------------------------------------------
def nameservers(resolv_conf: str) -> list[str]:
    """The valid `nameserver` addresses of a resolv.conf text, in order."""
    out = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            addr = fields[1].split("%")[0]
            try:
                out.append(str(ipaddress.ip_address(addr)))
            except ValueError:
                continue
    return out


def choose_upstreams(container_dns: list[str], daemon_dns: list[str],
                     host_servers: list[str]) -> list[str]:
    """`--dns` wins, then the daemon's `dns`, then the host's servers; at most 3."""
    for servers in (container_dns, daemon_dns, host_servers):
        valid = [s for s in servers if _is_ip(s)]
        if valid:
            return valid[:MAX_UPSTREAMS]
    return []


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# -- where the inputs live ---------------------------------------------------------------
class UpstreamConfig:
    """Reads the inputs of `choose_upstreams`; files are re-read only when they change."""

    def __init__(self, root: str, resolv_conf: str | None = None) -> None:
        self.resolv_conf = resolv_conf or os.environ.get("MINIDOCK_RESOLV_CONF") \
            or DEFAULT_RESOLV_CONF
        self.daemon_json = os.environ.get("MINIDOCK_CONFIG") or os.path.join(root, "daemon.json")
        self._cache: dict[str, tuple[int, Any]] = {}

    def for_container(self, container_doc: dict[str, Any] | None) -> list[str]:
        dns = ((container_doc or {}).get("HostConfig") or {}).get("Dns") or []
        daemon = self._cached(self.daemon_json, _daemon_dns)
        host = self._cached(self.resolv_conf, nameservers)
        return choose_upstreams(list(dns), daemon, host)

    def _cached(self, path: str, parse: Callable[[str], list[str]]) -> list[str]:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return []
        hit = self._cache.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            with open(path) as fh:
                value = parse(fh.read())
        except (OSError, ValueError, RecursionError):
            value = []
        self._cache[path] = (mtime, value)
        return value


def _daemon_dns(text: str) -> list[str]:
    doc = json.loads(text) if text.strip() else {}
    dns = doc.get("dns") if isinstance(doc, dict) else None
    return [str(s) for s in dns] if isinstance(dns, list) else []


# -- exchanges (side effects) ------------------------------------------------------------
def exchange_udp(server: str, query: bytes, timeout: float) -> bytes:
    """Send `query` to server:53 over UDP; the reply with our ID and question."""
    qid = random.getrandbits(16)
    msg = dnswire.with_id(query, qid)
    question = dnswire.question_of(query)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect((server, 53))
        sock.send(msg)
        while True:  # ignore stray datagrams (wrong ID or question): spoofing guard
            data = sock.recv(65535)
            try:
                if dnswire.header(data)[0] == qid and dnswire.question_of(data) == question:
                    return data
            except dnswire.WireError:
                continue


def exchange_tcp(server: str, query: bytes, timeout: float) -> bytes:
    """Send `query` to server:53 over TCP; the first framed reply."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect((server, 53))
        sock.sendall(dnswire.frame(query))
        size = struct.unpack("!H", _recv_exact(sock, 2))[0]
        return _recv_exact(sock, size)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("upstream closed the connection")
        buf += chunk
    return buf


class Forwarder:
    """Runs forwarded queries on threads, at most MAX_CONCURRENT at once."""

    def __init__(self, timeout: float | None = None) -> None:
        env = os.environ.get("MINIDOCK_DNS_TIMEOUT")
        self.timeout = timeout or (float(env) if env else DEFAULT_TIMEOUT)
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)

    def forward(self, q: dnswire.Query, raw: bytes, upstreams: list[str], tcp: bool,
                reply: Reply) -> None:
        """Answer `q` from the first upstream that answers; never blocks the caller."""
        if not upstreams:
            reply(dnswire.answer_rcode(q, dnswire.RCODE_NXDOMAIN))
            return
        if not self._slots.acquire(blocking=False):
            reply(dnswire.answer_rcode(q, dnswire.RCODE_SERVFAIL))
            return
        threading.Thread(target=self._run, args=(q, raw, upstreams, tcp, reply),
                         daemon=True).start()

    def _run(self, q: dnswire.Query, raw: bytes, upstreams: list[str], tcp: bool,
             reply: Reply) -> None:
        try:
            reply(self._ask(q, raw, upstreams, tcp))
        except OSError:
            pass  # the client's socket went away (detach): nothing to answer
        finally:
            self._slots.release()

    def _ask(self, q: dnswire.Query, raw: bytes, upstreams: list[str], tcp: bool) -> bytes:
        exchange = exchange_tcp if tcp else exchange_udp
        for server in upstreams[:MAX_UPSTREAMS]:
            try:
                return dnswire.with_id(exchange(server, raw, self.timeout), q.id)
            except (OSError, dnswire.WireError):
                continue
        return dnswire.answer_rcode(q, dnswire.RCODE_NXDOMAIN)
