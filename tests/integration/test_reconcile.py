"""Reconciliation: a flushed firewall, a reboot, a killed monitor, kernel objects gone
behind minidock's back, and orphans that only `system prune` can find."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess

from tests.integration.conftest import TestHost
from tests.integration.test_crash import store_leftovers

RUN = ["run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep", "1000"]


def _ruleset(h: TestHost) -> list[str]:
    """iptables-save without counters and comments, in order."""
    out = []
    for line in h.sh("iptables-save").stdout.splitlines():
        if line.startswith("#"):
            continue
        out.append(line.split(" [")[0] if line.startswith(":") else line)
    return out


def _doc(h: TestHost, name: str) -> dict:
    return json.loads(h.md("inspect", name).stdout)[0]


def _private(h: TestHost, cid: str) -> dict:
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    try:
        row = db.execute("SELECT doc FROM objects WHERE kind='container' AND id=?",
                         (cid,)).fetchone()
    finally:
        db.close()
    return json.loads(row[0])


def test_flushed_firewall_is_rebuilt_exactly(host: TestHost) -> None:
    host.md("network", "create", "n1")
    host.md(*RUN)
    host.md("run", "-d", "--name", "other", "--network", "n1", "busybox", "sleep", "1000")
    want = _ruleset(host)
    host.sh("iptables -F; iptables -t nat -F")
    host.md("network", "ls")                       # the next command rebuilds
    assert _ruleset(host) == want
    host.sh("iptables -F; iptables -t nat -F; iptables -X; iptables -t nat -X")
    host.md("run", "-d", "--name", "third", "busybox", "sleep", "1000")
    host.md("rm", "-f", "third")
    assert _ruleset(host) == want                  # chains back, no duplicates
    host.md("system", "prune", "-f")
    assert _ruleset(host) == want


def test_prune_removes_unowned_and_duplicate_rules(host: TestHost) -> None:
    host.md(*RUN)
    want = _ruleset(host)
    host.sh("iptables -t nat -A MINIDOCK ! -i minidock0 -p tcp -m tcp --dport 9999 "
            "-j DNAT --to-destination 172.17.0.9:80; "
            "iptables -A MINIDOCK -d 172.17.0.2/32 ! -i minidock0 -o minidock0 -p tcp "
            "-m tcp --dport 80 -j ACCEPT")
    host.md("system", "prune", "-f")
    assert _ruleset(host) == want


def _simulate_reboot(h: TestHost) -> None:
    """Every process of the old boot dies, the kernel's network state and the
    exec-root (a tmpfs) are gone; the root directory survives."""
    inits = [_doc(h, name)["State"]["Pid"] for name in h.md("ps", "-q").stdout.split()]
    for pid in h.pids():                           # monitors, proxy, resolver first
        os.kill(int(pid), signal.SIGKILL)
    for pid in inits:
        if pid:
            os.kill(pid, signal.SIGKILL)
    nsdir = os.path.join(h.exec_root, "netns")
    for key in os.listdir(nsdir) if os.path.isdir(nsdir) else []:
        subprocess.run(["umount", "-l", os.path.join(nsdir, key)], capture_output=True)
    for entry in os.listdir("/run/netns"):
        path = os.path.join("/run/netns", entry)
        if os.path.islink(path) and os.readlink(path).startswith(h.exec_root):
            os.unlink(path)
    subprocess.run(["ip", "netns", "del", h.name], check=True)
    subprocess.run(["ip", "netns", "add", h.name], check=True)
    h.sh("ip link set lo up; sysctl -qw net.ipv4.ip_forward=0")
    subprocess.run(["rm", "-rf", h.exec_root], check=True)


def test_reboot_is_detected_and_cleaned(host: TestHost) -> None:
    host.md("network", "create", "--subnet", "10.66.0.0/24", "n1")
    host.md(*RUN)
    host.md("run", "-d", "--name", "user", "--network", "n1", "busybox", "sleep", "1000")
    _simulate_reboot(host)
    lines = host.md("ps", "-a").stdout.splitlines()[1:]
    assert len(lines) == 2 and all("Exited (255)" in ln for ln in lines), lines
    assert not store_leftovers(host)
    host.md("start", "web", "user")
    assert _doc(host, "web")["NetworkSettings"]["IPAddress"] == "172.17.0.2"
    assert _doc(host, "user")["NetworkSettings"]["Networks"]["n1"]["IPAddress"] == "10.66.0.2"
    host.md("rm", "-f", "web")
    host.md(*RUN)                                  # name, address, port free again
    assert _doc(host, "web")["NetworkSettings"]["IPAddress"] == "172.17.0.2"


def test_killed_monitor_shows_exited_and_is_removable(host: TestHost) -> None:
    cid = host.md(*RUN).stdout.strip()
    priv = _private(host, cid)
    os.kill(priv["_Monitor"]["Pid"], signal.SIGKILL)
    os.kill(priv["State"]["Pid"], signal.SIGKILL)
    out = host.md("ps", "-a").stdout
    assert "Exited (255)" in out, out
    host.md("rm", "web")
    assert not store_leftovers(host)
    host.md(*RUN)
    assert _doc(host, "web")["NetworkSettings"]["IPAddress"] == "172.17.0.2"


def test_removal_with_netns_or_veth_already_gone(host: TestHost) -> None:
    host.md("network", "create", "n1")
    host.md(*RUN)
    host.md("run", "-d", "--name", "two", "--network", "n1", "busybox", "sleep", "1000")
    key = _doc(host, "web")["NetworkSettings"]["SandboxKey"]
    subprocess.run(["umount", "-l", key], check=True)
    os.unlink(key)
    veth = host.sh("ip -o link show master $(ip -o link show type bridge | "
                   "grep -o 'br-[0-9a-f]*' | head -1) | awk -F': ' '{print $2}' | "
                   "cut -d@ -f1").stdout.split()[0]
    host.sh(f"ip link del {veth}")
    host.md("rm", "-f", "web", "two")
    host.md("network", "rm", "n1")
    assert not store_leftovers(host)


def test_prune_sweeps_orphans(host: TestHost) -> None:
    host.md(*RUN)
    cid = _doc(host, "web")["Id"]
    # a veth on the bridge no endpoint names, a pinned netns key no record names,
    # a claim and a container directory without owners
    host.sh("ip link add vethdead0 type veth peer name vethdead1; "
            "ip link set vethdead0 master minidock0")
    key = os.path.join(host.exec_root, "netns", "deadbeef0000")
    open(key, "w").close()
    subprocess.run(["mount", "--bind", f"/proc/{os.getpid()}/ns/net", key], check=True)
    db = sqlite3.connect(os.path.join(host.root, "minidock.db"))
    with db:
        db.execute("INSERT INTO claims VALUES('port:tcp', '0.0.0.0:7777', 'nobody')")
    db.close()
    os.makedirs(os.path.join(host.root, "containers", "f" * 64))
    host.md("system", "prune", "-f")
    host.md("system", "prune", "-f")               # twice in a row: still fine
    assert "vethdead0" not in host.sh("ip -o link").stdout
    assert not os.path.exists(key)
    assert not os.path.exists(os.path.join(host.root, "containers", "f" * 64))
    host.md("run", "-d", "-p", "7777:80", "busybox", "sleep", "1000")
    assert _doc(host, "web")["Id"] == cid          # the running container is untouched
    assert _doc(host, "web")["State"]["Running"]


def test_network_rm_releases_stale_endpoints(host: TestHost) -> None:
    host.md("network", "create", "n1")
    cid = host.md("run", "-d", "--name", "w1", "--network", "n1", "busybox", "sleep",
                  "1000").stdout.strip()
    priv = _private(host, cid)
    os.kill(priv["_Monitor"]["Pid"], signal.SIGKILL)
    os.kill(priv["State"]["Pid"], signal.SIGKILL)
    db = sqlite3.connect(os.path.join(host.root, "minidock.db"))
    with db:                                       # as if stopped without a release
        doc = _private(host, cid)
        doc["State"].update(Running=False, Status="exited", Pid=0)
        db.execute("UPDATE objects SET doc=? WHERE kind='container' AND id=?",
                   (json.dumps(doc), cid))
    db.close()
    host.md("network", "rm", "n1")                 # no "has active endpoints"
    host.md("rm", "w1")
    assert not store_leftovers(host)
