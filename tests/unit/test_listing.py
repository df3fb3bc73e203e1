"""Listings from the store's briefs: projection, migration of an older store, which
records `ps` trusts without a refresh, and the timestamp parser `ps` uses."""

import calendar
import json
import os
import sqlite3
import time

from minidock.runtime import listing
from minidock.runtime.lifecycle import proc_start
from minidock.runtime.psformat import parse_time, ps_table
from minidock.store import SCHEMA_VERSION, Store, brief_of

DOC = {
    "Id": "a" * 64, "Name": "/web", "Image": "sha256:" + "b" * 64, "Created": "2026-01-02T03:04:05.5Z",
    "Path": "sleep", "Args": ["1000"],
    "State": {"Status": "running", "Running": True, "Pid": 42, "ExitCode": 0,
              "StartedAt": "2026-01-02T03:04:06Z", "FinishedAt": "0001-01-01T00:00:00Z"},
    "_Monitor": {"Pid": 41, "Start": 7}, "_PidStart": 8,
    "Config": {"Image": "busybox", "Env": ["A=1"] * 50},
    "HostConfig": {"RestartPolicy": {"Name": "no"}, "Binds": None},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
                        "Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
}


def test_brief_is_a_projection_with_the_documents_keys() -> None:
    brief = brief_of("container", DOC)
    assert brief["Config"] == {"Image": "busybox"}
    assert brief["NetworkSettings"] == {"Ports": DOC["NetworkSettings"]["Ports"]}
    assert brief["State"] == DOC["State"] and brief["_Monitor"] == DOC["_Monitor"]
    assert "Networks" not in brief["NetworkSettings"] and "Env" not in brief["Config"]
    # ps prints the same table from the brief as from the whole document
    assert ps_table([brief], now=2e9) == ps_table([DOC], now=2e9)
    assert brief_of("network", {"Id": "n", "Name": "x", "Driver": "bridge", "Scope": "local",
                                "IPAM": {}}) == {"Id": "n", "Name": "x", "Driver": "bridge",
                                                 "Scope": "local"}
    assert brief_of("endpoint", {"x": 1}) is None


def test_put_writes_the_brief_with_the_document(tmp_path) -> None:
    st = Store(str(tmp_path))
    with st.transaction():
        st.put("container", DOC["Id"], DOC, "web")
    assert st.briefs("container") == [brief_of("container", DOC)]
    changed = json.loads(json.dumps(DOC))
    changed["State"].update(Running=False, Status="exited", ExitCode=3)
    with st.transaction():
        st.put("container", DOC["Id"], changed, "web")
    assert st.briefs("container")[0]["State"]["ExitCode"] == 3


def test_an_older_store_is_migrated_once(tmp_path) -> None:
    path = os.path.join(tmp_path, "minidock.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT, "
               "doc TEXT NOT NULL, PRIMARY KEY (kind, id))")
    db.execute("CREATE TABLE claims (space TEXT NOT NULL, key TEXT NOT NULL, "
               "owner TEXT NOT NULL, PRIMARY KEY (space, key))")
    db.execute("INSERT INTO objects VALUES('container', ?, 'web', ?)", (DOC["Id"], json.dumps(DOC)))
    db.close()
    st = Store(str(tmp_path))
    assert st._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert st.briefs("container") == [brief_of("container", DOC)]
    st.close()
    assert Store(str(tmp_path)).get("container", DOC["Id"]) == DOC


def test_a_row_without_brief_is_projected_from_its_document(tmp_path) -> None:
    st = Store(str(tmp_path))
    st._db.execute("INSERT INTO objects(kind,id,name,doc) VALUES('network','n','x',?)",
                   (json.dumps({"Id": "n", "Name": "x", "Driver": "null", "Scope": "local"}),))
    assert st.briefs("network") == [{"Id": "n", "Name": "x", "Driver": "null", "Scope": "local"}]


def test_trusted_only_when_refresh_would_change_nothing() -> None:
    me = {"Pid": os.getpid(), "Start": proc_start(os.getpid())}
    running = {"State": {"Running": True}, "_Monitor": me}
    assert listing.trusted(running)
    assert not listing.trusted({**running, "_Monitor": {"Pid": me["Pid"], "Start": 1}})
    assert not listing.trusted({"State": {"Running": True}})
    assert not listing.trusted({"State": {"Restarting": True}})
    assert not listing.trusted({**running, "_Starter": {"Pid": 1}})
    assert listing.trusted({"State": {"Running": False, "Status": "exited"}})


def test_parse_time_matches_the_calendar() -> None:
    for t in (0, 1, 951782400, 1767225599, 1798761600, 4102444800, -86400):
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        assert parse_time(iso + "Z") == t
        assert abs(parse_time(iso + ".250000000Z") - (t + 0.25)) < 1e-9
    assert parse_time("0001-01-01T00:00:00Z") == calendar.timegm((1, 1, 1, 0, 0, 0))
