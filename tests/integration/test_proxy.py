"""The per-host userland proxy on a real kernel, inside a throwaway test host.

The "container" is a server in this process bound to 127.0.0.2 inside the test host's
netns; `publish` runs with this thread switched into that netns (so proxyd, forked from
it, lives there too), clients connect to 127.0.0.1. After each test the proxy must have
left by itself: no process may remain in the test host.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from minidock.context import Context
from minidock.errors import Conflict
from minidock.net.ports import proxy
from minidock.net.ports.portspec import PortBinding
from tests.integration import conftest

pytestmark = pytest.mark.integration
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def inside(h: "conftest.TestHost"):
    """Switch this thread into the test host's netns, always back again."""
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(h.netns, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        if _libc.setns(back, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(back)
        os.close(target)


class Container:
    """TCP echo (HTTP answer for GET) and UDP echo servers on 127.0.0.2, in threads."""

    def __init__(self, ip: str = "127.0.0.2", port: int = 80) -> None:
        self.tcp = socket.create_server((ip, port), backlog=512)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((ip, port))
        self.udp_peers: list[tuple] = []
        for target in (self._accept, self._udp):
            threading.Thread(target=target, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            data = conn.recv(65536)
            if data.startswith(b"GET "):
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
                return
            while data:
                conn.sendall(data)
                data = conn.recv(65536)
            conn.shutdown(socket.SHUT_WR)

    def _udp(self) -> None:
        while True:
            try:
                data, peer = self.udp.recvfrom(65536)
            except OSError:
                return
            self.udp_peers.append(peer)
            self.udp.sendto(data, peer)

    def close(self) -> None:
        for s in (self.tcp, self.udp):
            s.shutdown(socket.SHUT_RDWR) if s is self.tcp else None
            s.close()


@pytest.fixture
def env():
    """(test host, minidock Context, container server); the proxy must be gone after."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root")
    h = conftest.TestHost()
    try:
        h.sh("ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true")
        ctx = Context(root=h.root, exec_root=h.exec_root)
        with inside(h):
            ctr = Container()
        yield h, ctx, ctr
        ctr.close()
        left = lambda: _netns_pids(h)  # noqa: E731
        assert _wait(lambda: not left()), f"left in the test host: {_describe(left())}"
        assert not os.path.exists(os.path.join(h.exec_root, "proxy.sock"))
    finally:
        h.destroy()


def _netns_pids(h: "conftest.TestHost") -> list[str]:
    """Processes in the test host, asked from outside it (not counting `ip` itself)."""
    return subprocess.run(["ip", "netns", "pids", h.name], capture_output=True,
                          text=True).stdout.split()


def _describe(pids: list[str]) -> list[str]:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode()
            out.append(f"{pid}: {cmd[:200]}")
        except OSError:
            out.append(pid)
    return out


def _wait(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def echo(h: "conftest.TestHost", port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    """Send payload, half-close, read until EOF (checks half-close both ways)."""
    with inside(h):
        c = socket.create_connection((host, port), timeout=10)
    with c:
        out = bytearray()
        sender = threading.Thread(target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR)))
        sender.start()
        while chunk := c.recv(1 << 20):
            out += chunk
        sender.join()
    return bytes(out)


def fwd(port: int, proto: str = "tcp", host_ip: str = "127.0.0.1") -> PortBinding:
    return PortBinding(proto, 80, host_ip, port, container_ip="127.0.0.2")


def test_tcp_echo_curl_and_exit_when_empty(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080)])
    pid = proxy.pid(ctx)
    assert pid and os.readlink(f"/proc/{pid}/cwd") == "/"
    assert {os.readlink(f"/proc/{pid}/fd/{i}") for i in (0, 1, 2)} == {"/dev/null"}
    assert h.sh("curl -s http://127.0.0.1:18080/").stdout == "hello\n"
    assert echo(h, 18080, b"ping") == b"ping"
    blob = os.urandom(8 << 20)
    assert echo(h, 18080, blob) == blob
    proxy.unpublish(ctx, "c1")
    assert _wait(lambda: not os.path.exists(f"/proc/{pid}"))
    assert not os.path.exists(os.path.join(h.exec_root, "proxy.json"))
    proxy.unpublish(ctx, "c1")                              # idempotent, starts nothing
    assert proxy.pid(ctx) is None


def test_many_parallel_connections_one_process(env):
    h, ctx, _ = env
    with inside(h):
        with ThreadPoolExecutor(8) as pool:                 # concurrent publishers
            list(pool.map(lambda i: proxy.publish(ctx, f"c{i}", [fwd(18100 + i)]), range(8)))
    assert _netns_pids(h) == [str(proxy.pid(ctx))]
    payloads = [os.urandom(200_000 + i) for i in range(64)]
    with ThreadPoolExecutor(64) as pool:
        got = list(pool.map(lambda i: echo(h, 18100 + i % 8, payloads[i]), range(64)))
    assert [hashlib.sha1(g).digest() for g in got] == [hashlib.sha1(p).digest() for p in payloads]
    for i in range(8):
        proxy.unpublish(ctx, f"c{i}")


def test_udp_echo_and_idle_timeout(env, monkeypatch):
    h, ctx, ctr = env
    monkeypatch.setenv("MINIDOCK_PROXY_UDP_IDLE", "0.4")
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18053, "udp")])
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b:
        for s in (a, b):
            s.settimeout(5)
            s.sendto(b"hi %d" % s.fileno(), ("127.0.0.1", 18053))
            assert s.recvfrom(100) == (b"hi %d" % s.fileno(), ("127.0.0.1", 18053))
        a.sendto(b"again", ("127.0.0.1", 18053))
        assert a.recv(100) == b"again"
        assert len(set(ctr.udp_peers)) == 2                 # one flow per client address
        time.sleep(1.0)                                     # idle: flows are closed
        a.sendto(b"later", ("127.0.0.1", 18053))
        assert a.recv(100) == b"later"
        assert len(set(ctr.udp_peers)) == 3                 # a new flow for a
    proxy.unpublish(ctx, "c1")


def test_bind_conflict_is_synchronous_and_all_or_nothing(env):
    h, ctx, _ = env
    with inside(h):
        taken = socket.create_server(("127.0.0.1", 18080))
        with taken, pytest.raises(Conflict) as err:
            proxy.publish(ctx, "c1", [fwd(18081), fwd(18080)])
        assert str(err.value) == ("Error starting userland proxy: listen tcp4 127.0.0.1:18080: "
                                  "bind: address already in use")
        assert proxy.pid(ctx) is None                       # nothing was started
        socket.create_server(("127.0.0.1", 18081)).close()  # 18081 was released
        proxy.publish(ctx, "c1", [fwd(18080)])
        with pytest.raises(Conflict, match="listen tcp4 0.0.0.0:18080: bind: address already in use"):
            proxy.publish(ctx, "c2", [fwd(18080, host_ip="0.0.0.0")])
        with pytest.raises(Conflict, match="listen udp4 127.0.0.1:18053"):
            proxy.publish(ctx, "c2", [fwd(18053, "udp"), fwd(18053, "udp")])
    proxy.unpublish(ctx, "c1")


def test_placeholder_reserves_but_does_not_serve(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080)], serve=False)
        with pytest.raises(Conflict):
            proxy.publish(ctx, "c2", [fwd(18080)])
        c = socket.create_connection(("127.0.0.1", 18080), timeout=0.3)
    with c:
        c.sendall(b"ping")
        with pytest.raises(socket.timeout):
            c.recv(10)
    assert proxy.served(ctx) == {"c1": [(fwd(18080), False)]}
    proxy.unpublish(ctx, "c1")


def test_kill_9_then_ensure_running_restores(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080), fwd(18053, "udp")])
        proxy.publish(ctx, "c2", [fwd(18081)], serve=False)
    old = proxy.pid(ctx)
    os.kill(old, signal.SIGKILL)
    assert _wait(lambda: not os.path.exists(f"/proc/{old}"))
    assert h.sh("curl -s http://127.0.0.1:18080/", check=False).returncode != 0
    with inside(h):
        proxy.ensure_running(ctx)
        proxy.ensure_running(ctx)                           # idempotent
    assert proxy.pid(ctx) not in (None, old)
    assert h.sh("curl -s http://127.0.0.1:18080/").stdout == "hello\n"
    assert proxy.served(ctx) == {"c1": [(fwd(18080), True), (fwd(18053, "udp"), True)],
                                 "c2": [(fwd(18081), False)]}
    proxy.unpublish(ctx, "c1")
    proxy.unpublish(ctx, "c2")


def test_unpublish_after_kill_edits_the_table(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080)])
    old = proxy.pid(ctx)
    os.kill(old, signal.SIGKILL)
    assert _wait(lambda: not os.path.exists(f"/proc/{old}"))
    proxy.unpublish(ctx, "c1")
    with inside(h):
        proxy.ensure_running(ctx)                           # nothing to serve: no proxy
    assert not os.path.exists(os.path.join(h.exec_root, "proxy.json"))
    assert proxy.pid(ctx) is None


def test_unpublish_closes_live_connections(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080)])
        proxy.publish(ctx, "c2", [fwd(18081)])
        live = socket.create_connection(("127.0.0.1", 18080), timeout=5)
        other = socket.create_connection(("127.0.0.1", 18081), timeout=5)
    with live, other:
        live.sendall(b"x")
        assert live.recv(1) == b"x"
        proxy.unpublish(ctx, "c1")
        assert live.recv(1) == b""                          # closed by the proxy
        with inside(h), pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", 18080), timeout=5)
        other.sendall(b"y")                                 # c2 is untouched
        assert other.recv(1) == b"y"
        assert proxy.pid(ctx) is not None
    proxy.unpublish(ctx, "c2")


def test_a_range_needs_several_packets(env):
    h, ctx, _ = env
    ports = range(19000, 19300)
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(p) for p in ports])
    out = h.sh("ss -Hltn 'sport >= :19000 and sport < :19300' | wc -l").stdout.strip()
    assert out == "300"
    assert echo(h, 19299, b"last") == b"last"
    proxy.unpublish(ctx, "c1")
    assert h.sh("ss -Hltn 'sport >= :19000 and sport < :19300' | wc -l").stdout.strip() == "0"


def test_ipv6_any(env):
    h, ctx, _ = env
    if not os.path.exists("/proc/net/if_inet6") or "::1" not in h.sh("ip -6 addr show lo").stdout:
        pytest.skip("no IPv6 in the test host")
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080, host_ip="::"), fwd(18080, host_ip="0.0.0.0")])
    assert echo(h, 18080, b"six", host="::1") == b"six"
    assert echo(h, 18080, b"four") == b"four"
    proxy.unpublish(ctx, "c1")


def test_stop_leaves_a_busy_proxy_alone(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [fwd(18080)])
    proxy.stop(ctx)
    assert echo(h, 18080, b"still") == b"still"
    proxy.unpublish(ctx, "c1")
    proxy.stop(ctx)
    assert not _netns_pids(h)


def test_refused_container_port_closes_the_client(env):
    h, ctx, _ = env
    with inside(h):
        proxy.publish(ctx, "c1", [PortBinding("tcp", 81, "127.0.0.1", 18080,
                                              container_ip="127.0.0.2")])
        c = socket.create_connection(("127.0.0.1", 18080), timeout=5)
    with c:
        try:
            assert c.recv(10) == b""
        except ConnectionResetError:
            pass
    assert echo(h, 18080, b"", host="127.0.0.1") == b""     # the proxy is still fine
    proxy.unpublish(ctx, "c1")
