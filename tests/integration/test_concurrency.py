"""Concurrency: parallel CLIs decide names, addresses, ports and subnets exactly once.

Every minidock call is its own process; the store's transactions are the only
arbiter. Each test starts N CLIs at once (a thread per subprocess) and checks the
outcome with other tools (`ip`, the store file, inspect).
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import TestHost
from tests.integration.test_crash import store_leftovers


def _parallel(h: TestHost, calls: list[list[str]], workers: int = 50
              ) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda args: h.md(*args, check=False, timeout=180), calls))


def _veths(h: TestHost) -> list[str]:
    return h.sh("ip -o link show type veth").stdout.splitlines()


def test_parallel_run_and_rm(host: TestHost) -> None:
    n = 50
    res = _parallel(host, [["run", "-d", "busybox", "sleep", "1000"]] * n)
    assert all(r.returncode == 0 for r in res), [r.stderr for r in res if r.returncode]
    ids = [r.stdout.strip() for r in res]
    fmt = "{{.NetworkSettings.IPAddress}}"
    ips = {host.md("inspect", "-f", fmt, i).stdout.strip() for i in ids}
    assert len(ips) == n and "" not in ips
    assert len(_veths(host)) == n
    res = _parallel(host, [["rm", "-f", i] for i in ids])
    assert all(r.returncode == 0 for r in res), [r.stderr for r in res if r.returncode]
    assert host.md("ps", "-aq").stdout.strip() == ""
    assert not _veths(host)
    assert not store_leftovers(host)


def test_parallel_same_name(host: TestHost) -> None:
    res = _parallel(host, [["run", "-d", "--name", "x1", "busybox", "sleep", "1000"]] * 20, 20)
    won = [r for r in res if r.returncode == 0]
    assert len(won) == 1, [r.stderr for r in res]
    for r in res:
        if r.returncode:
            assert 'The container name "/x1" is already in use' in r.stderr, r.stderr
    assert len(host.md("ps", "-aq").stdout.split()) == 1
    assert len(_veths(host)) == 1


def test_parallel_same_subnet(host: TestHost) -> None:
    calls = [["network", "create", "--subnet", "10.77.0.0/24", f"n{i}"] for i in range(20)]
    res = _parallel(host, calls, 20)
    assert len([r for r in res if r.returncode == 0]) == 1, [r.stderr for r in res]
    for r in res:
        if r.returncode:
            assert "Pool overlaps with other one on this address space" in r.stderr, r.stderr
    bridges = host.sh("ip -o link show type bridge").stdout
    assert bridges.count("br-") == 1


def test_parallel_same_port(host: TestHost) -> None:
    res = _parallel(host, [["run", "-d", "-p", "8080:80", "busybox", "sleep", "1000"]] * 10, 10)
    assert len([r for r in res if r.returncode == 0]) == 1, [r.stderr for r in res]
    for r in res:
        if r.returncode:
            assert "port is already allocated" in r.stderr, r.stderr
    assert len(_veths(host)) == 1
    rules = [ln for ln in host.sh("iptables-save -t nat").stdout.splitlines() if "DNAT" in ln]
    assert len(rules) == 1, rules


def test_small_network_runs_out_cleanly(host: TestHost) -> None:
    host.md("network", "create", "--subnet", "10.88.0.0/29", "tiny")
    for i in range(5):
        host.md("run", "-d", "--name", f"t{i}", "--network", "tiny", "busybox", "sleep", "1000")
    p = host.md("run", "-d", "--name", "t5", "--network", "tiny", "busybox", "sleep", "1000",
                check=False)
    assert p.returncode != 0
    assert "no available IPv4 addresses on this network's address pools: tiny" in p.stderr
    assert len(_veths(host)) == 5
    host.md("rm", "-f", "t5", check=False)
    host.md("rm", "-f", *[f"t{i}" for i in range(5)])
    assert not _veths(host)
    assert not store_leftovers(host)


def _counts(h: TestHost) -> dict[str, int]:
    import sqlite3
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    try:
        rows = db.execute("SELECT count(*) FROM objects").fetchone()[0]
        claims = db.execute("SELECT count(*) FROM claims").fetchone()[0]
    finally:
        db.close()
    rules = len(h.sh("iptables-save").stdout.splitlines())
    mounts = open("/proc/self/mountinfo").read().count(h.dir)
    fds = sum(len(os.listdir(f"/proc/{p}/fd")) for p in h.pids() if os.path.isdir(f"/proc/{p}"))
    return {"veths": len(_veths(h)), "rules": rules, "mounts": mounts, "objects": rows,
            "claims": claims, "fds": fds, "procs": len(h.pids())}


def _cycles(h: TestHost, n: int) -> None:
    h.md("network", "create", "n1")
    base = None
    for i in range(n):
        h.md("run", "-d", "--name", "c1", "-p", "8080:80", "busybox", "sleep", "1000")
        h.md("run", "-d", "--name", "c2", "--network", "n1", "busybox", "sleep", "1000")
        h.md("rm", "-f", "c1", "c2")
        if i == 1:
            base = _counts(h)
    assert _counts(h) == base


def test_run_rm_cycles_stay_flat(host: TestHost) -> None:
    _cycles(host, 25)


@pytest.mark.long
def test_run_rm_cycles_stay_flat_long(host: TestHost) -> None:
    _cycles(host, 200)
