"""The embedded DNS resolver on a real kernel, driven directly (no `minidock run`).

Each test: a test host (netns) with its own root and exec-root; "containers" are
netns pinned by bind mounts under the host's directory, with lo up; records are put
in the host's store; `resolver.attach` runs inside the test host (so the resolver
process lives there, and forwards from there); queries come from inside the
container netns, with busybox nslookup and with a small client that shows rcodes.
A fake upstream DNS server, when a test needs one, runs in the test host on
127.0.0.53; the host resolv.conf the resolver reads is a file of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from minidock.net.dns import dnsrecords
from minidock.store import Store
from tests.integration.conftest import REPO

PY = str(REPO / ".venv" / "bin" / "python")
NETS = {"n1": "front", "n2": "back"}

CLIENT = r"""
import socket, struct, sys
from minidock.net.dns import dnswire as w
name, qtype, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + w.encode_name(name) \
    + struct.pack("!HH", qtype, 1)
if proto == "tcp":
    s = socket.create_connection(("127.0.0.11", 53), timeout=5)
    s.sendall(w.frame(q)); data = b""
    while True:
        msgs, _ = w.unframe(data)
        if msgs: data = msgs[0]; break
        chunk = s.recv(4096)
        if not chunk: sys.exit("eof")
        data += chunk
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.sendto(q, ("127.0.0.11", 53)); data = s.recv(4096)
qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data)
assert qid == 0x4242
_, pos = w.read_name(data, 12); pos += 4
ips = []
for _ in range(an):
    _, pos = w.read_name(data, pos)
    rtype, _, ttl, rdlen = struct.unpack_from("!HHIH", data, pos); pos += 10
    if rtype == 1: ips.append(socket.inet_ntoa(data[pos:pos + rdlen]) + "/" + str(ttl))
    pos += rdlen
print(flags & 0xF, " ".join(sorted(ips)))
"""

UPSTREAM = r"""
import socket, struct, sys, threading
from minidock.net.dns import dnswire as w
def answer(raw):
    q = w.parse_query(raw)
    if q.name.endswith("example.test") and q.qtype == w.TYPE_A:
        return w.answer_a(q, ["192.0.2.10"], ttl=30)
    return w.answer_rcode(q, w.RCODE_NXDOMAIN)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.53", 53))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.53", 53)); t.listen(8)
def tcp():
    while True:
        c, _ = t.accept(); size = struct.unpack("!H", c.recv(2))[0]
        c.sendall(w.frame(answer(c.recv(size)))); c.close()
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
while True:
    raw, addr = u.recvfrom(4096); u.sendto(answer(raw), addr)
"""


class DnsLab:
    """Containers (pinned netns) on networks, attached to the host's resolver."""

    def __init__(self, host, tmp: Path) -> None:
        self.host = host
        self.dir = Path(host.dir) / "ns"
        self.dir.mkdir()
        self.resolv_conf = Path(host.dir) / "host-resolv.conf"
        self.resolv_conf.write_text("# no upstream\n")
        self.env = {"MINIDOCK_RESOLV_CONF": str(self.resolv_conf), "MINIDOCK_DNS_TIMEOUT": "0.5",
                    "PYTHONPATH": str(REPO)}
        self.store = Store(host.root)
        for nid, name in NETS.items():
            self.store.put("network", nid, {"Name": name}, name=name)
        self.ctrs: dict[str, str] = {}
        self.upstream: subprocess.Popen | None = None

    def ns(self, name: str) -> str:
        return str(self.dir / name)

    def container(self, name: str, nets: dict[str, str], aliases: tuple[str, ...] = ()) -> str:
        cid = (name.encode().hex() * 64)[:64]
        path = self.ns(name)
        Path(path).touch()
        subprocess.run(["unshare", f"--net={path}", "true"], check=True)
        subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"], check=True)
        for nid, ip in nets.items():
            dnsrecords.set_endpoint(self.store, nid, cid, ip, [name, *aliases, cid[:12]])
        self.ctrs[name] = cid
        return cid

    def py(self, code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run Python inside the test host (where the resolver is started)."""
        proc = subprocess.run(["nsenter", f"--net={self.host.netns}", PY, "-c", code, *args],
                              capture_output=True, text=True, timeout=30,
                              env={**os.environ, **self.env})
        if check and proc.returncode:
            raise AssertionError(proc.stderr)
        return proc

    def call(self, func: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        code = ("import sys; from minidock.context import Context; from minidock.net.dns import resolver;"
                f"ctx = Context(root={self.host.root!r}, exec_root={self.host.exec_root!r});"
                f"r = resolver.{func}(ctx, *sys.argv[1:]); print(r)")
        return self.py(code, *args, check=check)

    def attach(self, name: str) -> None:
        self.call("attach", self.ctrs[name], self.ns(name))

    def detach(self, name: str) -> None:
        self.call("detach", self.ctrs[name])

    def query(self, name: str, qname: str, qtype: int = 1, proto: str = "udp") -> tuple[int, list[str]]:
        """(rcode, sorted ["ip/ttl", ...]) as container `name` sees it."""
        proc = subprocess.run(["nsenter", f"--net={self.ns(name)}", PY, "-c", CLIENT, qname,
                               str(qtype), proto], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 0, proc.stderr
        rcode, _, ips = proc.stdout.strip().partition(" ")
        return int(rcode), ips.split()

    def nslookup(self, name: str, qname: str) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={self.ns(name)}", "busybox", "nslookup",
                               qname, "127.0.0.11"], capture_output=True, text=True, timeout=30)

    def resolver_pids(self) -> list[int]:
        out = []
        for pid in self.host.pids():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"minidock.net.dns.resolverd" in cmd:
                out.append(int(pid))
        return out

    def start_upstream(self) -> None:
        self.upstream = subprocess.Popen(
            ["nsenter", f"--net={self.host.netns}", PY, "-c", UPSTREAM],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert self.upstream.stdout.readline().strip() == "ready"
        self.resolv_conf.write_text("search example.test\nnameserver 127.0.0.53\n")

    def close(self) -> None:
        for name in list(self.ctrs):
            self.call("detach", self.ctrs[name], check=False)
        if self.upstream:
            self.upstream.kill()  # nsenter execs python: this PID is the server
            self.upstream.wait()
        for pid in self.resolver_pids():
            os.kill(pid, signal.SIGKILL)
        for name in self.ctrs:
            subprocess.run(["umount", self.ns(name)], capture_output=True)
        self.store.close()


@pytest.fixture
def lab(host, tmp_path):
    lab = DnsLab(host, tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def test_names_resolve_only_on_shared_networks(lab: DnsLab) -> None:
    lab.container("c1", {"n1": "172.18.0.2"}, aliases=("www",))
    c2 = lab.container("c2", {"n1": "172.18.0.3", "n2": "172.19.0.3"})
    lab.container("c3", {"n2": "172.19.0.4"})
    for name in ("c1", "c2", "c3"):
        lab.attach(name)
    assert lab.query("c1", "c2") == (0, ["172.18.0.3/600"])
    assert lab.query("c3", "c2") == (0, ["172.19.0.3/600"])
    assert lab.query("c3", "C2.") == (0, ["172.19.0.3/600"])
    assert lab.query("c1", c2[:12]) == (0, ["172.18.0.3/600"])
    assert lab.query("c2", "www") == (0, ["172.18.0.2/600"])
    assert lab.query("c1", "c3") == (3, [])            # n2 only: never leaks to c1
    assert lab.query("c3", "www") == (3, [])
    assert lab.query("c1", "c2", qtype=28) == (0, [])  # AAAA of a known name: empty
    assert lab.query("c1", "nosuch") == (3, [])        # no upstream: NXDOMAIN
    assert lab.query("c2", "c1.front") == (0, ["172.18.0.2/600"])
    out = lab.nslookup("c1", "c2")
    assert "Address: 172.18.0.3" in out.stdout, out.stdout + out.stderr
    assert len(lab.resolver_pids()) == 1                # one process for all


def test_records_follow_changes_at_once(lab: DnsLab) -> None:
    lab.container("c1", {"n1": "172.18.0.2"})
    c2 = lab.container("c2", {"n1": "172.18.0.3"})
    lab.attach("c1")
    assert lab.query("c1", "c2") == (0, ["172.18.0.3/600"])
    dnsrecords.remove_endpoint(lab.store, "n1", c2)    # disconnect / stop
    assert lab.query("c1", "c2") == (3, [])
    dnsrecords.set_endpoint(lab.store, "n1", c2, "172.18.0.9", ["c2", "db"])  # connect --alias
    assert lab.query("c1", "db") == (0, ["172.18.0.9/600"])
    dnsrecords.remove_container(lab.store, c2)         # rm
    assert lab.query("c1", "db") == (3, [])


def test_tcp_queries(lab: DnsLab) -> None:
    lab.container("c1", {"n1": "172.18.0.2"})
    lab.container("c2", {"n1": "172.18.0.3"})
    lab.attach("c1")
    assert lab.query("c1", "c2", proto="tcp") == (0, ["172.18.0.3/600"])
    assert lab.query("c1", "nosuch", proto="tcp") == (3, [])


def test_forwarding_to_upstream(lab: DnsLab) -> None:
    lab.start_upstream()
    lab.container("c1", {"n1": "172.18.0.2"})
    lab.attach("c1")
    assert lab.query("c1", "www.example.test") == (0, ["192.0.2.10/30"])
    assert lab.query("c1", "www.example.test", proto="tcp") == (0, ["192.0.2.10/30"])
    assert lab.query("c1", "nothing.invalid") == (3, [])   # upstream's NXDOMAIN
    out = lab.nslookup("c1", "www.example.test")
    assert "192.0.2.10" in out.stdout, out.stdout + out.stderr
    # --dns wins over the host's servers; an unreachable upstream gives NXDOMAIN
    cid = lab.ctrs["c1"]
    lab.store.put("container", cid, {"HostConfig": {"Dns": ["127.0.0.54"]}}, name="c1")
    start = time.monotonic()
    assert lab.query("c1", "www.example.test") == (3, [])
    assert time.monotonic() - start < 4


def test_restart_after_kill_reattaches(lab: DnsLab) -> None:
    lab.container("c1", {"n1": "172.18.0.2"})
    lab.container("c2", {"n1": "172.18.0.3"})
    lab.attach("c1")
    lab.attach("c2")
    [pid] = lab.resolver_pids()
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    assert lab.call("ensure").stdout.strip() == "True"
    [new] = lab.resolver_pids()
    assert new != pid
    assert lab.query("c1", "c2") == (0, ["172.18.0.3/600"])
    assert lab.query("c2", "c1") == (0, ["172.18.0.2/600"])
    lab.detach("c1")
    lab.detach("c2")
    assert lab.resolver_pids() == []                   # exits with the last detach
    assert lab.call("ensure").stdout.strip() == "False"  # nothing recorded: no start


def test_detach_closes_sockets_and_frees_the_netns(lab: DnsLab) -> None:
    lab.container("c1", {"n1": "172.18.0.2"})
    lab.host.sh(f"ip link add vh-dns type veth peer name vc netns {lab.ns('c1')}")
    lab.attach("c1")
    ss = subprocess.run(["nsenter", f"--net={lab.ns('c1')}", "ss", "-lntu"],
                        capture_output=True, text=True).stdout
    assert "127.0.0.11:53" in ss
    lab.detach("c1")
    lab.detach("c1")                                    # idempotent
    assert lab.resolver_pids() == []
    subprocess.run(["umount", lab.ns("c1")], check=True)
    del lab.ctrs["c1"]
    deadline = time.monotonic() + 10                    # netns cleanup is asynchronous
    while lab.host.sh("ip link show vh-dns", check=False).returncode == 0:
        assert time.monotonic() < deadline, "the container netns is still alive"
        time.sleep(0.05)


def test_attach_of_a_missing_netns_fails_cleanly(lab: DnsLab) -> None:
    proc = lab.call("attach", "f" * 64, lab.ns("missing"), check=False)
    assert proc.returncode != 0 and "cannot serve DNS" in proc.stderr
    assert lab.resolver_pids() == []


def test_a_vanished_sandbox_is_detached_by_itself(lab: DnsLab) -> None:
    lab.env["MINIDOCK_RESOLVER_GC"] = "0.2"
    lab.container("c1", {"n1": "172.18.0.2"})
    lab.host.sh(f"ip link add vh-gc type veth peer name vc netns {lab.ns('c1')}")
    lab.attach("c1")
    [pid] = lab.resolver_pids()
    subprocess.run(["umount", lab.ns("c1")], check=True)   # teardown forgot detach
    del lab.ctrs["c1"]
    _wait_gone(pid)                                        # detached, then idle: exits
    assert not os.path.exists(f"/proc/{pid}")
    deadline = time.monotonic() + 10
    while lab.host.sh("ip link show vh-gc", check=False).returncode == 0:
        assert time.monotonic() < deadline, "the container netns is still alive"
        time.sleep(0.05)


def test_start_early_then_attach(lab: DnsLab) -> None:
    lab.container("c1", {"n1": "172.18.0.2"})
    lab.call("start")
    [pid] = lab.resolver_pids()
    lab.attach("c1")
    assert lab.resolver_pids() == [pid]
    assert lab.query("c1", "c1") == (0, ["172.18.0.2/600"])
    lab.detach("c1")
    lab.call("start")                                      # nobody attaches: leaves
    [pid] = lab.resolver_pids()
    _wait_gone(pid)
    assert not os.path.exists(f"/proc/{pid}")


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 8
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
