"""Embedded DNS end to end: `minidock run --network NET` containers find each other.

Every test host gets a resolv.conf of its own for the resolver (MINIDOCK_RESOLV_CONF):
empty, or naming a fake upstream on 127.0.0.53 inside the test host, so no query ever
leaves the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import REPO
from tests.integration.test_resolver import PY, UPSTREAM


@pytest.fixture
def dns_host(host):
    if not (REPO / "build" / "busybox.tar").exists():
        pytest.skip("busybox image not built (make image)")
    conf = Path(host.dir) / "host-resolv.conf"
    conf.write_text("# no upstream\n")
    host.env.update(MINIDOCK_RESOLV_CONF=str(conf), MINIDOCK_DNS_TIMEOUT="0.5")
    host.resolv_conf = conf
    yield host


def lookup(host, net: str, name: str, *extra: str) -> subprocess.CompletedProcess:
    return host.md("run", "--rm", "--network", net, *extra, "busybox", "nslookup", name,
                   check=False)


def resolves(host, net: str, name: str, ip: str | None = None) -> bool:
    out = lookup(host, net, name).stdout
    return "Address: " + (ip or "") in out.split("127.0.0.11:53", 1)[-1]


def ip_of(host, ctr: str, net: str) -> str:
    return host.md("inspect", "-f", f"{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}",
                   ctr).stdout.strip()


def resolver_pids(host) -> list[int]:
    out = []
    for pid in host.pids():
        try:
            if b"minidock.net.dns.resolverd" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(int(pid))
        except OSError:
            pass
    return out


def test_names_and_aliases_across_one_network_only(dns_host) -> None:
    h = dns_host
    h.md("network", "create", "front")
    h.md("network", "create", "back")
    h.md("run", "-d", "--name", "web", "--network", "front", "--network-alias", "www",
         "busybox", "sleep", "300")
    h.md("run", "-d", "--name", "db", "--network", "back", "busybox", "sleep", "300")
    web_ip, db_ip = ip_of(h, "web", "front"), ip_of(h, "db", "back")
    assert resolves(h, "front", "web", web_ip)
    assert resolves(h, "front", "www", web_ip)
    short = h.md("inspect", "-f", "{{.Id}}", "web").stdout.strip()[:12]
    assert resolves(h, "front", short, web_ip)
    assert resolves(h, "back", "db", db_ip)
    assert not resolves(h, "front", "db")          # never across networks
    assert not resolves(h, "back", "web")
    assert "NXDOMAIN" in lookup(h, "front", "nosuchname").stdout
    ping = h.md("run", "--rm", "--network", "front", "busybox", "ping", "-c1", "-W2", "www")
    assert f"({web_ip})" in ping.stdout
    assert len(resolver_pids(h)) == 1
    h.md("rm", "-f", "web", "db")
    assert resolver_pids(h) == []                  # exits with the last container


def test_connect_and_disconnect_change_answers_at_once(dns_host) -> None:
    h = dns_host
    h.md("network", "create", "front")
    h.md("network", "create", "back")
    h.md("run", "-d", "--name", "web", "--network", "front", "busybox", "sleep", "300")
    assert not resolves(h, "back", "web")
    h.md("network", "connect", "--alias", "api", "back", "web")
    back_ip = ip_of(h, "web", "back")
    assert resolves(h, "back", "web", back_ip)
    assert resolves(h, "back", "api", back_ip)
    h.md("network", "disconnect", "back", "web")
    assert not resolves(h, "back", "web")
    assert not resolves(h, "back", "api")
    assert resolves(h, "front", "web")


def test_a_stopped_container_stops_resolving(dns_host) -> None:
    h = dns_host
    h.md("network", "create", "front")
    h.md("run", "-d", "--name", "web", "--network", "front", "busybox", "sleep", "300")
    assert resolves(h, "front", "web")
    h.md("stop", "-t", "1", "web")
    assert h.md("inspect", "-f", "{{.State.Running}}", "web").stdout.strip() == "false"
    assert not resolves(h, "front", "web")
    h.md("start", "web")
    assert resolves(h, "front", "web", ip_of(h, "web", "front"))


def test_killed_resolver_comes_back_with_the_next_command(dns_host) -> None:
    h = dns_host
    h.md("network", "create", "front")
    h.md("run", "-d", "--name", "web", "--network", "front", "busybox", "sleep", "300")
    [pid] = resolver_pids(h)
    os.kill(pid, signal.SIGKILL)
    web_ip = ip_of(h, "web", "front")
    assert resolves(h, "front", "web", web_ip)     # this run restarts it, re-attaching web
    [new] = resolver_pids(h)
    assert new != pid


def test_unknown_names_go_to_the_upstream(dns_host) -> None:
    h = dns_host
    up = subprocess.Popen(["nsenter", f"--net={h.netns}", PY, "-c", UPSTREAM],
                          stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert up.stdout.readline().strip() == "ready"
        h.resolv_conf.write_text("nameserver 127.0.0.53\n")
        h.md("network", "create", "front")
        assert resolves(h, "front", "www.example.test", "192.0.2.10")
        assert "NXDOMAIN" in lookup(h, "front", "nothing.invalid").stdout
        # --dns wins over the host's servers (nothing answers on 127.0.0.54)
        out = lookup(h, "front", "www.example.test", "--dns", "127.0.0.54").stdout
        assert "192.0.2.10" not in out
    finally:
        up.kill()
        up.wait()
