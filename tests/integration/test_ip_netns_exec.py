"""Under `ip netns exec NS minidock ...` (a private mount namespace per command) the
key mounted by `run` is gone for the next command: connect, DNS and container: mode
reach the netns through the container's checked /proc/<pid>/ns/net, or refuse in one
line; the /run/netns links of two roots never collide."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest

from tests.integration.conftest import MINIDOCK, TestHost

pytestmark = pytest.mark.integration


def _exec(h, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", "netns", "exec", h.name, MINIDOCK, *args], env=h.env,
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def test_connect_disconnect_and_dns_under_ip_netns_exec(host) -> None:
    h = host
    _exec(h, "network", "create", "--subnet", "10.78.0.0/24", "n1")
    _exec(h, "run", "-d", "--name", "web", "busybox", "sleep", "1000")
    _exec(h, "network", "connect", "n1", "web")
    pid = h.md("inspect", "-f", "{{.State.Pid}}", "web").stdout.strip()
    ip = h.md("inspect", "-f", "{{.NetworkSettings.Networks.n1.IPAddress}}", "web").stdout.strip()
    assert f"inet {ip}/24" in h.sh(f"nsenter -t {pid} -n ip -o -4 addr show eth1").stdout
    _exec(h, "network", "disconnect", "n1", "web")
    assert h.sh(f"nsenter -t {pid} -n ip link show eth1", check=False).returncode != 0
    _exec(h, "run", "-d", "--name", "api", "--network", "n1", "busybox", "sleep", "1000")
    api_ip = h.md("inspect", "-f", "{{.NetworkSettings.Networks.n1.IPAddress}}", "api").stdout.strip()
    out = _exec(h, "run", "--rm", "--network", "n1", "busybox", "nslookup", "api").stdout
    assert f"Address: {api_ip}" in out
    _exec(h, "run", "-d", "--name", "side", "--network", "container:api", "busybox",
          "sleep", "1000")
    side = h.md("inspect", "-f", "{{.State.Pid}}", "side").stdout.strip()
    assert f"inet {api_ip}/24" in h.sh(f"nsenter -t {side} -n ip -o -4 addr").stdout
    _exec(h, "rm", "-f", "side", "api", "web")


def test_refuses_in_one_line_when_the_process_cannot_be_verified(host) -> None:
    h = host
    _exec(h, "network", "create", "n1")
    _exec(h, "run", "-d", "--name", "web", "busybox", "sleep", "1000")
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    (start,) = db.execute("SELECT json_extract(doc, '$._PidStart') FROM objects "
                          "WHERE kind='container'").fetchone()

    def set_start(value: int) -> None:
        with db:
            db.execute("UPDATE objects SET doc=json_set(doc, '$._PidStart', ?) "
                       "WHERE kind='container'", (value,))
    set_start(1)                       # as if the pid now belonged to another process
    try:
        p = _exec(h, "network", "connect", "n1", "web", check=False)
    finally:
        set_start(start)
        db.close()
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "cannot reach the network namespace of container web" in p.stderr
    assert "ip netns exec" in p.stderr
    doc = json.loads(h.md("network", "inspect", "n1").stdout)[0]
    assert doc["Containers"] == {}                    # nothing was allocated


def test_netns_links_of_two_roots_do_not_collide(host) -> None:
    other = TestHost()
    try:
        other.load_busybox()
        host.md("run", "-d", "--name", "web", "busybox", "sleep", "1000")
        other.md("run", "-d", "--name", "web", "busybox", "sleep", "1000")
        links = {}
        for h in (host, other):
            key = h.md("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "web").stdout.strip()
            (name,) = [n for n in os.listdir("/run/netns")
                       if os.path.islink(f"/run/netns/{n}") and os.readlink(f"/run/netns/{n}") == key]
            links[h.name] = name
            assert name.startswith("web@") and len(name) == len("web@") + 8
            info = h.md("system", "info").stdout
            assert f" Netns Links: /run/netns/<name>{name[3:]}\n" in info
        assert len(set(links.values())) == 2
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert all(n in names for n in links.values())
        other.md("rm", "-f", "web")
        assert not os.path.lexists(f"/run/netns/{links[other.name]}")
        assert os.path.islink(f"/run/netns/{links[host.name]}")
    finally:
        other.destroy()
