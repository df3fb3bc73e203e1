"""`ps` and `network ls` read the store's briefs: they must follow every state change
(run, stop, rm, a killed monitor) exactly as the full documents do."""

from __future__ import annotations

import json
import os
import signal
import sqlite3

from tests.integration.conftest import TestHost


def _briefs(h: TestHost, kind: str) -> dict[str, dict]:
    db = sqlite3.connect(os.path.join(h.root, "minidock.db"))
    try:
        rows = db.execute("SELECT id, brief, doc FROM objects WHERE kind=?", (kind,)).fetchall()
    finally:
        db.close()
    return {i: (json.loads(b), json.loads(d)) for i, b, d in rows}


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
        assert brief["State"] == {k: full["State"][k] for k in brief["State"]}
        assert brief["State"]["Status"] == full["State"]["Status"]

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
