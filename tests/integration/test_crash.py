"""Crash consistency: every step of every pipeline, failed (raise) and killed (SIGKILL).

The step names are not listed by hand: at collection time each scenario's command runs
once with MINIDOCK_TRACE in a throwaway test host, and every step it traced becomes a
test case (a step name that two scenarios share is tested in the first one). Each case
then runs the scenario's command with MINIDOCK_FAULT=<step> or <step>:kill, lets
`system prune -f` reconcile, and checks that the same name, address and port can be
used again at once and that nothing leaked (the fixture's leak check, plus the store's
endpoints and claims, netns keys, /run/netns links, proxy forwards, resolver records).
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from minidock import trace
from tests.integration.conftest import BUSYBOX_TAR, TestHost

SUBNET = "10.99.0.0/24"
RUN = ["run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep", "1000"]
SUBNET6 = "2001:db8:99::/64"
DAEMON6 = json.dumps({"ipv6": True, "fixed-cidr-v6": "2001:db8:1::/64"})


def _daemon(icc: bool) -> str:
    return json.dumps({"icc": icc})


# name -> (daemon.json or None, setup commands, faulted command, redo check)
SCENARIOS: dict[str, tuple] = {
    "run_bridge": (None, [], RUN, "run"),
    "run_user": (None, [["network", "create", "--subnet", SUBNET, "n1"]],
                 ["run", "-d", "--name", "web", "--network", "n1", "busybox", "sleep", "1000"],
                 "run_user"),
    "run_link": (_daemon(False), [["run", "-d", "--name", "db", "--expose", "5432", "busybox",
                                   "sleep", "1000"]],
                 ["run", "-d", "--name", "web", "--link", "db:al", "busybox", "sleep", "1000"],
                 "run_link"),
    "network_create": (None, [], ["network", "create", "--subnet", SUBNET, "n1"], "net_create"),
    "network_rm": (None, [["network", "create", "--subnet", SUBNET, "n1"]],
                   ["network", "rm", "n1"], "net_rm"),
    "connect": (None, [["network", "create", "--subnet", SUBNET, "n1"],
                       ["run", "-d", "--name", "web", "busybox", "sleep", "1000"]],
                ["network", "connect", "n1", "web"], "connect"),
    "disconnect": (None, [["network", "create", "--subnet", SUBNET, "n1"],
                          ["run", "-d", "--name", "web", "busybox", "sleep", "1000"],
                          ["network", "connect", "n1", "web"]],
                   ["network", "disconnect", "n1", "web"], "connect"),
    "rm": (None, [RUN], ["rm", "-f", "web"], "run"),
    # dual stack: only the steps the IPv4 scenarios do not trace (ip6tables batches)
    "run_bridge6": (DAEMON6, [], RUN, "run6"),
    "network_create6": (DAEMON6, [], ["network", "create", "--ipv6", "--subnet", SUBNET,
                                      "--subnet", SUBNET6, "n1"], "net_create6"),
}


def _prepare(h: TestHost, scenario: str) -> list[str]:
    daemon, setup, cmd, _redo = SCENARIOS[scenario]
    if daemon:
        h.write_daemon_json(daemon)
    for args in setup:
        h.md(*args)
    return cmd


def _collect() -> list[tuple[str, str, str]]:
    """(scenario, pipeline, step) for every step each scenario's command traces."""
    if os.geteuid() != 0 or not BUSYBOX_TAR.exists():
        return []
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for scenario in SCENARIOS:
        h = TestHost()
        try:
            h.load_busybox()
            cmd = _prepare(h, scenario)
            path = os.path.join(h.dir, "trace")
            h.md(*cmd, env={"MINIDOCK_TRACE": path})
            with open(path) as fh:
                roots = trace.parse(fh.read())
            for names, node in trace.walk(roots):
                if not node.pipeline and node.name not in seen:   # a step: a fault point
                    seen.add(node.name)
                    out.append((scenario, names[0], node.name))
        finally:
            h.destroy()
    return out


_CASES: list[tuple[str, str, str]] | None = None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    global _CASES
    if "fault_case" not in metafunc.fixturenames:
        return
    if _CASES is None:
        _CASES = _collect()
    cases = [(sc, st, mode) for sc, _p, st in _CASES for mode in ("raise", "kill")]
    if metafunc.function.__name__ == "test_killed_run_next_command":
        cases = [(sc, st, "kill") for sc, pl, st in _CASES
                 if sc == "run_bridge" and pl in ("create", "start")]
    metafunc.parametrize("fault_case", cases or [("none", "none", "none")],
                         ids=[f"{sc}-{st}-{m}" for sc, st, m in cases] or ["no-trace"])


def _fault(h: TestHost, cmd: list[str], step: str, mode: str) -> None:
    spec = f"{step}:kill" if mode == "kill" else step
    p = h.md(*cmd, check=False, env={"MINIDOCK_FAULT": spec})
    if mode == "kill":
        assert p.returncode in (-9, 137), (p.returncode, p.stderr)
    else:
        assert p.returncode != 0 and f"fault injected after step {step}" in p.stderr, p.stderr


def _ip(h: TestHost, name: str, net: str = "bridge") -> str:
    doc = json.loads(h.md("inspect", name).stdout)[0]
    return (doc["NetworkSettings"]["Networks"].get(net) or {}).get("IPAddress", "")


def _redo(h: TestHost, how: str) -> None:
    """The same name, address and port (or subnet) are free again at once."""
    if how in ("run", "run_link", "run6"):
        h.md("rm", "-f", "web", check=False)
        h.md(*RUN if how != "run_link" else
             ["run", "-d", "--name", "web", "--link", "db:al", "busybox", "sleep", "1000"])
        assert _ip(h, "web") == ("172.17.0.3" if how == "run_link" else "172.17.0.2")
        if how != "run_link":
            assert h.md("port", "web").stdout.splitlines()[0] == "80/tcp -> 0.0.0.0:8080"
        if how == "run6":
            doc = json.loads(h.md("inspect", "web").stdout)[0]["NetworkSettings"]
            assert doc["GlobalIPv6Address"] == "2001:db8:1::242:ac11:2"
    elif how == "net_create6":
        h.md("network", "rm", "n1", check=False)
        h.md("network", "create", "--ipv6", "--subnet", SUBNET, "--subnet", SUBNET6, "n1")
    elif how == "run_user":
        h.md("rm", "-f", "web", check=False)
        h.md("run", "-d", "--name", "web", "--network", "n1", "busybox", "sleep", "1000")
        assert _ip(h, "web", "n1") == "10.99.0.2"
    elif how == "net_create":
        h.md("network", "rm", "n1", check=False)
        h.md("network", "create", "--subnet", SUBNET, "n1")
    elif how == "net_rm":
        h.md("network", "rm", "n1", check=False)
        assert "n1" not in h.md("network", "ls").stdout.split()
        h.md("network", "create", "--subnet", SUBNET, "n1")
    elif how == "connect":
        h.md("network", "disconnect", "n1", "web", check=False)
        h.md("network", "connect", "n1", "web")
        assert _ip(h, "web", "n1") == "10.99.0.2"


def store_leftovers(h: TestHost) -> list[str]:
    """Endpoints, claims and runtime files left once every container is removed."""
    found = []
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    try:
        eps = db.execute("SELECT count(*) FROM objects WHERE kind='endpoint'").fetchone()[0]
        claims = db.execute("SELECT space, key FROM claims WHERE space LIKE 'ip:%' "
                            "OR space LIKE 'ip6:%' OR space LIKE 'port:%'").fetchall()
    finally:
        db.close()
    if eps:
        found.append(f"{eps} endpoint records")
    if claims:
        found.append(f"claims {claims}")
    nsdir = os.path.join(h.exec_root, "netns")
    if os.path.isdir(nsdir) and os.listdir(nsdir):
        found.append(f"netns keys {os.listdir(nsdir)}")
    if os.path.isdir("/run/netns"):
        links = [n for n in os.listdir("/run/netns")
                 if os.path.islink(f"/run/netns/{n}")
                 and os.readlink(f"/run/netns/{n}").startswith(h.exec_root)]
        if links:
            found.append(f"/run/netns links {links}")
    table = os.path.join(h.exec_root, "proxy.json")
    if os.path.exists(table) and json.load(open(table)):
        found.append("proxy forwards")
    recs = os.path.join(h.exec_root, "resolver", "sandboxes")
    if os.path.isdir(recs) and [n for n in os.listdir(recs) if not n.startswith(".")]:
        found.append(f"resolver records {os.listdir(recs)}")
    return found


def _clean(h: TestHost) -> None:
    ids = h.md("ps", "-aq").stdout.split()
    if ids:
        h.md("rm", "-f", *ids)
    h.md("network", "prune", "-f")
    assert not store_leftovers(h), store_leftovers(h)


def test_fault(host: TestHost, fault_case: tuple[str, str, str]) -> None:
    scenario, step, mode = fault_case
    assert scenario != "none", "no step traced: is build/busybox.tar there (make image)?"
    cmd = _prepare(host, scenario)
    _fault(host, cmd, step, mode)
    host.md("system", "prune", "-f")
    _redo(host, SCENARIOS[scenario][3])
    _clean(host)


def test_killed_run_next_command(host: TestHost, fault_case: tuple[str, str, str]) -> None:
    """No prune: the next `run` with the same name and port reconciles by itself."""
    _scenario, step, _mode = fault_case
    _fault(host, RUN, step, "kill")
    p = host.md(*RUN, check=False)
    if p.returncode != 0:
        # killed after record_running: the container existed (it is now exited),
        # Docker's name conflict is right; its address and port are free
        assert step in ("record_running", "wait_for_exec"), p.stderr
        assert "is already in use" in p.stderr, p.stderr
        host.md("rm", "-f", "web")
        host.md(*RUN)
    assert _ip(host, "web") == "172.17.0.2"
    _clean(host)
