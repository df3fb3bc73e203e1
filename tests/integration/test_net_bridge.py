"""Bridge networking end to end, in a throwaway test host (the done-when checks of the
networking core): addresses, MACs, ping, the iptables ruleset against Docker's
reference, published ports from another netns / loopback / hairpin, and cleanup.
Checked with tools other than minidock: `ip -j`, `nsenter`, `iptables-save`, busybox nc.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.reference import REF  # noqa: E402
SERVER = "while true; do echo hi | nc -l -p 80; done"


def _run(host, *args: str) -> str:
    return host.md("run", "-d", *args).stdout.strip()


def _inspect(host, ref: str) -> dict:
    return json.loads(host.md("inspect", ref).stdout)[0]


def _pid(host, ref: str) -> int:
    return _inspect(host, ref)["State"]["Pid"]


def normalise_save(text: str, tables=("filter", "nat")) -> list[str]:
    """iptables-save text without comments and counters, only the given tables."""
    out, keep = [], False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("*"):
            keep = line[1:] in tables
        if keep:
            out.append(re.sub(r" \[\d+:\d+\]$", "", line))
    return out


def reference(name: str) -> list[str]:
    text = (REF / name).read_text().replace("DOCKER", "MINIDOCK").replace("docker0", "minidock0")
    return normalise_save(text)


def test_first_container_address_mac_gateway(host):
    cid = _run(host, "busybox", "sleep", "100")
    doc = _inspect(host, cid)
    ns = doc["NetworkSettings"]
    assert (ns["IPAddress"], ns["IPPrefixLen"], ns["Gateway"]) == ("172.17.0.2", 16, "172.17.0.1")
    assert ns["MacAddress"] == "02:42:ac:11:00:02"
    assert ns["Networks"]["bridge"]["IPAddress"] == "172.17.0.2"
    assert ns["SandboxKey"].startswith(host.exec_root + "/netns/")
    addrs = json.loads(host.sh(f"nsenter -t {doc['State']['Pid']} -n ip -j addr show eth0").stdout)
    eth0 = addrs[0]
    assert eth0["address"] == "02:42:ac:11:00:02"
    inet = [a for a in eth0["addr_info"] if a["family"] == "inet"]
    assert [(a["local"], a["prefixlen"]) for a in inet] == [("172.17.0.2", 16)]
    routes = json.loads(host.sh(f"nsenter -t {doc['State']['Pid']} -n ip -j route").stdout)
    assert {"dst": "default", "gateway": "172.17.0.1"}.items() <= routes[0].items()
    # the host end sits on minidock0 and is called veth<7 hex>
    links = json.loads(host.sh("ip -j link show master minidock0").stdout)
    assert len(links) == 1 and re.fullmatch(r"veth[0-9a-f]{7}", links[0]["ifname"])


def test_two_containers_ping_each_other(host):
    a = _run(host, "busybox", "sleep", "100")
    b = _run(host, "busybox", "sleep", "100")
    ip_b = _inspect(host, b)["NetworkSettings"]["IPAddress"]
    host.md("exec", a, "ping", "-c1", "-W1", ip_b)
    ip_a = _inspect(host, a)["NetworkSettings"]["IPAddress"]
    host.md("exec", b, "ping", "-c1", "-W1", ip_a)


def test_iptables_match_docker_reference(host):
    _run(host, "busybox", "sleep", "100")
    _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    got = normalise_save(host.sh("iptables-save").stdout)
    assert got == reference("docker-bridge-icc-true.iptables")


def test_iptables_user_network_reference(host):
    _run(host, "busybox", "sleep", "100")
    _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    nid = host.md("network", "create", "--subnet", "10.77.0.0/24", "net77").stdout.strip()
    got = normalise_save(host.sh("iptables-save").stdout)
    want = [ln.replace("br-459ed5c0dce1", f"br-{nid[:12]}")
            for ln in reference("docker-user-network.iptables")]
    assert got == want


class ClientNetns:
    """Another machine: a netns joined to the test host by a veth pair in 192.0.2.0/24."""

    def __init__(self, host) -> None:
        self.name = "mdc-" + uuid.uuid4().hex[:10]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        host.sh(f"ip link add mdh0 type veth peer name mdc0 netns {self.name}; "
                "ip addr add 192.0.2.1/24 dev mdh0; ip link set mdh0 up")
        self.sh("ip link set lo up; ip addr add 192.0.2.2/24 dev mdc0; ip link set mdc0 up")

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.name}", "sh", "-c", script],
                              capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script!r}: {proc.returncode} {proc.stderr}")
        return proc

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def client(host):
    c = ClientNetns(host)
    try:
        yield c
    finally:
        c.remove()


def _nc(runner, ip: str, port: int = 8080) -> str:
    return runner(f"timeout 5 busybox nc {ip} {port} </dev/null", check=False).stdout


def _proxy_available() -> bool:
    try:
        from minidock.net.ports import proxy  # noqa: F401
    except ImportError:
        return False
    return True


def test_published_port_from_other_netns(host, client):
    _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    assert "hi" in _retry(lambda: _nc(client.sh, "192.0.2.1"))


@pytest.mark.skipif(not _proxy_available(), reason="needs the userland proxy (brief E)")
def test_published_port_from_host_loopback(host):
    _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    assert "hi" in _retry(lambda: _nc(host.sh, "127.0.0.1"))


@pytest.mark.skipif(not os.path.exists("/proc/net/if_inet6"), reason="kernel without IPv6")
def test_published_port_from_host_ipv6_loopback(host):
    # Docker binds 0.0.0.0 and "::" for `-p 8080:80`; both answer, both go on rm
    cid = _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    assert "hi" in _retry(lambda: _nc(host.sh, "::1"))
    host.md("rm", "-f", cid)
    assert ":8080 " not in host.sh("ss -ltn").stdout


@pytest.mark.skipif(not _proxy_available(), reason="needs the userland proxy (brief E)")
def test_published_port_hairpin(host):
    web = _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    other = _run(host, "busybox", "sleep", "100")
    out = _retry(lambda: host.md("exec", other, "sh", "-c",
                                 "timeout 5 nc 172.17.0.1 8080 </dev/null", check=False).stdout)
    assert "hi" in out
    out = _retry(lambda: host.md("exec", web, "sh", "-c",
                                 "timeout 5 nc 172.17.0.1 8080 </dev/null", check=False).stdout)
    assert "hi" in out


def _retry(fn, tries: int = 20):
    """The server loop in the container needs a moment to listen (no sleep in product code)."""
    import time
    out = ""
    for _ in range(tries):
        out = fn()
        if "hi" in out:
            return out
        time.sleep(0.1)
    return out


def test_port_conflict_and_inspect_ports(host):
    cid = _run(host, "-p", "8080:80", "busybox", "sleep", "100")
    ports = _inspect(host, cid)["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][0] == {"HostIp": "0.0.0.0", "HostPort": "8080"}
    assert host.md("port", cid).stdout.splitlines()[0] == "80/tcp -> 0.0.0.0:8080"
    before = _state(host)
    proc = host.md("run", "-d", "-p", "8080:80", "busybox", "sleep", "100", check=False)
    assert proc.returncode == 125
    assert "Bind for 0.0.0.0:8080 failed: port is already allocated" in proc.stderr
    assert _state(host) == before


def test_ephemeral_port(host):
    cid = _run(host, "-p", "80", "busybox", "sleep", "100")
    port = int(_inspect(host, cid)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    lo, hi = map(int, host.sh("cat /proc/sys/net/ipv4/ip_local_port_range").stdout.split())
    assert lo <= port <= hi


def _state(host) -> tuple[list[str], list[str]]:
    links = sorted(re.sub(r"^\d+: ", "", ln.split("\\")[0])
                   for ln in host.sh("ip -o link").stdout.splitlines())
    return links, normalise_save(host.sh("iptables-save").stdout)


def test_nothing_left_after_rm(host):
    a = _run(host, "busybox", "sleep", "100")
    b = _run(host, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
    host.md("rm", "-f", a, b)
    assert host.sh("ip -o link show type veth").stdout.strip() == ""
    save = host.sh("iptables-save").stdout
    assert "DNAT" not in save and "/32" not in save
    assert not list(Path(host.exec_root, "netns").iterdir())
    # the next container reuses the lowest address at once
    c = _run(host, "busybox", "sleep", "100")
    assert _inspect(host, c)["NetworkSettings"]["IPAddress"] == "172.17.0.2"
