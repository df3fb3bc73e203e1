"""Restart policies (issue 15), daemonless: the container's monitor restarts it.

on-failure:N restarts exactly N times; always survives a kill of its process (from
the host, not through minidock) with its networking set up again, comes back after
a simulated reboot, and `stop` ends it (nothing left running, no port rule).
"""

from __future__ import annotations

import json
import os
import signal
import time

from tests.integration.conftest import TestHost
from tests.integration.test_reconcile import _simulate_reboot


def _state(h: TestHost, name: str) -> dict:
    return json.loads(h.md("inspect", name).stdout)[0]


def _wait(h: TestHost, name: str, pred, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = _state(h, name)
        if pred(doc):
            return doc
        assert time.monotonic() < deadline, doc["State"]
        time.sleep(0.1)


def test_on_failure_restarts_exactly_twice(host: TestHost) -> None:
    host.md("run", "-d", "--name", "r1", "--restart", "on-failure:2", "busybox",
            "sh", "-c", "echo run; exit 3")
    doc = _wait(host, "r1", lambda d: d["RestartCount"] == 2 and d["State"]["Status"] == "exited")
    time.sleep(1.0)                  # a third run would start within the back-off (400 ms)
    doc = _state(host, "r1")
    assert doc["RestartCount"] == 2 and doc["State"]["ExitCode"] == 3
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert host.md("logs", "r1").stdout == "run\n" * 3


def test_always_survives_kill_and_reboot_and_stop_ends_it(host: TestHost) -> None:
    host.md("network", "create", "--subnet", "10.77.0.0/24", "n1")
    host.md("run", "-d", "--name", "srv", "--network", "n1", "--restart", "always",
            "-p", "8080:80", "busybox", "sleep", "1000")
    host.md("run", "-d", "--name", "cli", "--network", "n1", "busybox", "sleep", "1000")
    first = _state(host, "srv")["State"]["Pid"]
    os.kill(first, signal.SIGKILL)
    doc = _wait(host, "srv", lambda d: d["State"]["Running"] and d["State"]["Pid"] != first)
    assert doc["RestartCount"] == 1
    ip = doc["NetworkSettings"]["Networks"]["n1"]["IPAddress"]
    got = host.md("exec", "cli", "nslookup", "srv", "127.0.0.11").stdout
    assert ip in got, got                                   # DNS follows the restart
    assert "DNAT" in host.sh("iptables-save -t nat").stdout

    _simulate_reboot(host)
    lines = host.md("ps").stdout.splitlines()[1:]           # this command restarts it
    assert len(lines) == 1 and "srv" in lines[0] and "Up " in lines[0], lines
    assert "cli" in host.md("ps", "-a").stdout

    host.md("stop", "srv")
    time.sleep(0.5)
    doc = _state(host, "srv")
    assert not doc["State"]["Running"] and not doc["State"]["Restarting"]
    assert doc["State"]["Status"] == "exited"
    assert "DNAT" not in host.sh("iptables-save -t nat").stdout
    host.md("rm", "srv", "cli")


def test_stop_during_back_off_ends_policy(host: TestHost) -> None:
    host.md("run", "-d", "--name", "fl", "--restart", "always", "busybox", "sh", "-c",
            "exit 1")
    _wait(host, "fl", lambda d: d["RestartCount"] >= 3)
    host.md("stop", "fl")
    count = _state(host, "fl")["RestartCount"]
    time.sleep(1.5)
    doc = _state(host, "fl")
    assert doc["RestartCount"] == count and doc["State"]["Status"] == "exited"
    assert host.stop_template()              # it had no monitor left
    assert host.pids() == []


def test_links_follow_a_policy_restart(host: TestHost) -> None:
    host.md("run", "-d", "--name", "srv", "--restart", "on-failure", "busybox", "sh", "-c",
            "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; "
            "while [ ! -e /go ]; do sleep 0.1; done; exit 1")
    host.md("run", "-d", "--name", "cli", "--link", "srv:al", "busybox", "sleep", "1000")
    host.md("exec", "srv", "touch", "/go")          # the first run fails now
    doc = _wait(host, "srv", lambda d: d["RestartCount"] == 1 and d["State"]["Running"])
    ip = doc["NetworkSettings"]["IPAddress"]
    hosts = host.md("exec", "cli", "cat", "/etc/hosts").stdout
    assert any(ln.split()[0] == ip and "al" in ln.split()[1:] for ln in hosts.splitlines()
               if ln.strip()), hosts
    host.md("exec", "cli", "ping", "-c", "1", "-W", "5", "al")
    host.md("rm", "-f", "srv", "cli")
