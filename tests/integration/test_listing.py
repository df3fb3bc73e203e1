"""`ps` and `network ls` read the store's briefs: they must follow every state change
(run, stop, rm, a killed monitor) exactly as the full documents do."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3

from minidock.brief import brief_of
from tests.integration.conftest import TestHost


def _briefs(h: TestHost, kind: str) -> dict[str, dict]:
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    try:
        rows = db.execute("SELECT o.id, b.brief, o.doc FROM objects o JOIN briefs b "
                          "ON b.kind=o.kind AND b.id=o.id WHERE o.kind=?", (kind,)).fetchall()
        assert len(rows) == db.execute("SELECT count(*) FROM objects WHERE kind=?",
                                       (kind,)).fetchone()[0]
    finally:
        db.close()
    return {i: (json.loads(b), json.loads(d)) for i, b, d in rows}


def _active(h: TestHost, cid: str) -> int:
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    try:
        return db.execute("SELECT active FROM briefs WHERE id=?", (cid,)).fetchone()[0]
    finally:
        db.close()


def _kill(pid: int) -> None:
    """SIGKILL `pid` and wait until it is gone (it is not our child)."""
    fd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        select.select([fd], [], [], 10)
    finally:
        os.close(fd)


def _rows(h: TestHost, *args: str) -> list[str]:
    return h.md("ps", *args).stdout.splitlines()[1:]


def test_ps_follows_run_stop_rm_and_a_killed_monitor(host: TestHost) -> None:
    web = host.md("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep", "1000").stdout.strip()
    db = host.md("run", "-d", "--name", "db", "busybox", "sleep", "1000").stdout.strip()
    rows = _rows(host)
    assert [r.split()[-1] for r in rows] == ["db", "web"]          # newest first
    assert "0.0.0.0:8080->80/tcp, :::8080->80/tcp" in rows[1] and "Up " in rows[1]
    assert host.md("ps", "-q").stdout.split() == [db[:12], web[:12]]
    assert host.md("ps", "-q", "--no-trunc").stdout.split() == [db, web]

    host.md("stop", "-t", "1", "db")
    assert [r.split()[-1] for r in _rows(host)] == ["web"]
    assert "Exited (137)" in _rows(host, "-a")[0]

    doc = json.loads(host.md("inspect", "web").stdout)[0]
    os.kill(_briefs(host, "container")[web][1]["_Monitor"]["Pid"], signal.SIGKILL)
    os.kill(doc["State"]["Pid"], signal.SIGKILL)
    assert _rows(host) == []                        # repaired from the full document
    assert "Exited (255)" in [r for r in _rows(host, "-a") if r.endswith("web")][0]
    for brief, full in _briefs(host, "container").values():     # follows the repair
        assert brief == brief_of("container", full)

    host.md("rm", "web", "db")
    assert _rows(host, "-a") == [] and _briefs(host, "container") == {}


def test_network_ls_lists_from_briefs_with_filters(host: TestHost) -> None:
    host.md("network", "create", "--subnet", "10.77.0.0/24", "blue")
    names = [ln.split()[1] for ln in host.md("network", "ls").stdout.splitlines()[1:]]
    assert names == ["blue", "bridge", "host", "none"]
    out = host.md("network", "ls", "-f", "driver=bridge", "--no-trunc").stdout.splitlines()
    assert [ln.split()[1] for ln in out[1:]] == ["blue", "bridge"] and len(out[1].split()[0]) == 64
    assert host.md("network", "ls", "-q", "-f", "name=blu").stdout.split() == \
        [host.md("network", "inspect", "-f", "{{.Id}}", "blue").stdout.strip()[:12]]
    host.md("network", "rm", "blue")
    assert "blue" not in host.md("network", "ls").stdout


def test_ps_q_repairs_a_container_whose_monitor_was_killed(host: TestHost) -> None:
    """The monitor alone killed -9: its init still runs, so ps keeps listing it (from
    the refreshed document); once the init is gone too, `ps -q` repairs the record
    (exited 255, networking released) and the briefs table follows."""
    a = host.md("run", "-d", "--name", "one", "-p", "8081:80", "busybox", "sleep", "1000").stdout.strip()
    b = host.md("run", "-d", "--name", "two", "busybox", "sleep", "1000").stdout.strip()
    doc = _briefs(host, "container")[a][1]
    _kill(doc["_Monitor"]["Pid"])
    assert host.md("ps", "-q").stdout.split() == [b[:12], a[:12]]
    rows = _rows(host)
    assert [r.split()[-1] for r in rows] == ["two", "one"] and all(" Up " in r for r in rows)
    _kill(doc["State"]["Pid"])
    assert host.md("ps", "-q").stdout.split() == [b[:12]]
    assert _active(host, a) == 0 and _active(host, b) == 1
    assert host.md("ps", "-aq", "--no-trunc").stdout.split() == [b, a]
    assert "Exited (255)" in [r for r in _rows(host, "-a") if r.endswith(" one")][0]
    host.md("run", "-d", "--name", "three", "-p", "8081:80", "busybox", "sleep", "1000")
    host.md("rm", "-f", "one", "two", "three")
    assert host.md("ps", "-aq").stdout == ""
