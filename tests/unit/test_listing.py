"""Listings from the store's briefs: projection, migration of an older store, which
records `ps` trusts without a refresh, and the timestamp parser `ps` uses."""

import calendar
import json
import os
import sqlite3
import time

from minidock.runtime import listing
from minidock.runtime.lifecycle import proc_start
from minidock.runtime.psformat import brief_table, parse_time, ps_table
from minidock.brief import brief_dict, brief_of, decode_briefs, listing_keys
from minidock.store import SCHEMA_VERSION, Store, _dumps

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


def test_brief_is_a_projection_of_the_document() -> None:
    brief = brief_of("container", DOC)
    assert brief == [DOC["Id"], "/web", DOC["Image"], DOC["Created"], "sleep", ["1000"],
                     "running", True, None, 0, "2026-01-02T03:04:06Z",
                     "0001-01-01T00:00:00Z", "busybox", DOC["NetworkSettings"]["Ports"]]
    assert brief_dict("container", brief)["State"] == {
        k: v for k, v in DOC["State"].items() if k != "Pid"}
    # ps prints the same table from the brief as from the whole document
    assert brief_table([brief], now=2e9) == ps_table([DOC], now=2e9)
    net = {"Id": "n", "Name": "x", "Driver": "bridge", "Scope": "local", "IPAM": {}}
    assert brief_of("network", net) == ["n", "x", "bridge", "local"]
    assert brief_dict("network", ["n", "x", "bridge", "local"]) == {
        "Id": "n", "Name": "x", "Driver": "bridge", "Scope": "local"}
    assert brief_of("endpoint", {"x": 1}) is None


def test_put_writes_the_brief_with_the_document(tmp_path) -> None:
    st = Store(str(tmp_path))
    with st.transaction():
        st.put("container", DOC["Id"], DOC, "web")
    assert st.briefs("container") == [brief_dict("container", brief_of("container", DOC))]
    changed = json.loads(json.dumps(DOC))
    changed["State"].update(Running=False, Status="exited", ExitCode=3)
    with st.transaction():
        st.put("container", DOC["Id"], changed, "web")
    assert st.briefs("container")[0]["State"]["ExitCode"] == 3


def _v1_store(path: str, docs: list[dict]) -> None:
    """A store as minidock wrote it at schema version 1 (briefs in objects.brief)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT, "
               "doc TEXT NOT NULL, brief TEXT, PRIMARY KEY (kind, id))")
    db.execute("CREATE TABLE claims (space TEXT NOT NULL, key TEXT NOT NULL, "
               "owner TEXT NOT NULL, PRIMARY KEY (space, key))")
    for doc in docs:
        db.execute("INSERT INTO objects VALUES('container', ?, ?, ?, ?)",
                   (doc["Id"], doc["Name"][1:], json.dumps(doc),
                    json.dumps(brief_dict("container", brief_of("container", doc)))))
    db.execute("PRAGMA user_version=1")
    db.close()


def test_an_older_store_is_migrated_once(tmp_path) -> None:
    _v1_store(os.path.join(tmp_path, "minidock.db"), [DOC])
    st = Store(str(tmp_path))
    assert st._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert st.briefs("container") == [brief_dict("container", brief_of("container", DOC))]
    assert st.listing("container", True, False) == [(DOC["Id"], DOC["Created"], 1, 0, 41, 7, None)]
    st.close()
    assert Store(str(tmp_path)).get("container", DOC["Id"]) == DOC


def test_a_record_without_brief_is_listed_from_its_document(tmp_path) -> None:
    """A row an older minidock inserted after the migration has no briefs row."""
    st = Store(str(tmp_path))
    st._db.execute("INSERT INTO objects(kind,id,name,doc) VALUES('network','n','x',?)",
                   (json.dumps({"Id": "n", "Name": "x", "Driver": "null", "Scope": "local"}),))
    assert st.briefs("network") == [{"Id": "n", "Name": "x", "Driver": "null", "Scope": "local"}]
    older = {**DOC, "Id": "c" * 64, "Created": "2026-01-02T03:04:04.000000000Z"}
    newer = {**DOC, "Id": "d" * 64, "Created": "2026-01-02T03:04:09.000000000Z"}
    with st.transaction():
        st.put("container", DOC["Id"], DOC, "web")
    for doc in (older, newer):
        st._db.execute("INSERT INTO objects(kind,id,name,doc) VALUES('container',?,?,?)",
                       (doc["Id"], doc["Id"][:4], json.dumps(doc)))
    rows = st.listing("container", False, True)
    assert [r[0] for r in rows] == [newer["Id"], DOC["Id"], older["Id"]]
    assert json.loads(rows[0][6]) == brief_of("container", newer)


def test_listing_is_newest_first_and_leaves_out_inactive_records(tmp_path) -> None:
    st = Store(str(tmp_path))
    exited = json.loads(json.dumps(DOC))
    exited.update(Id="e" * 64, Created="2026-01-02T03:04:06.000000000Z")
    exited["State"].update(Running=False, Status="exited")
    del exited["_Monitor"]
    starting = {**exited, "Id": "f" * 64, "_Starter": {"Pid": 1, "Start": 2},
                "Created": "2026-01-02T03:04:01.000000000Z"}
    with st.transaction():
        for doc in (DOC, exited, starting):
            st.put("container", doc["Id"], doc, doc["Id"][:4])
    assert st.listing("container", False, False) == [
        (exited["Id"], exited["Created"], 0, 0, None, None, None),
        (DOC["Id"], DOC["Created"], 1, 0, 41, 7, None),
        (starting["Id"], starting["Created"], 0, 1, None, None, None)]
    assert [r[0] for r in st.listing("container", True, False)] == [DOC["Id"], starting["Id"]]
    assert json.loads(st.listing("container", True, True)[0][6]) == brief_of("container", DOC)
    assert listing_keys(DOC) == (DOC["Created"], 1, 0, 41, 7)
    st.delete("container", DOC["Id"])
    assert [r[0] for r in st.listing("container", True, False)] == [starting["Id"]]


def test_trusted_only_when_refresh_would_change_nothing() -> None:
    me, start = os.getpid(), proc_start(os.getpid())
    assert listing.trusted(1, 0, me, start)
    assert not listing.trusted(1, 0, me, start + 1)
    assert not listing.trusted(1, 0, None, None)
    assert not listing.trusted(1, 0, me, None)
    assert not listing.trusted(1, 1, me, start)
    assert listing.trusted(0, 0, None, None)
    assert not listing.trusted(0, 1, None, None)


def test_parse_time_matches_the_calendar() -> None:
    for t in (0, 1, 951782400, 1767225599, 1798761600, 4102444800, -86400):
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        assert parse_time(iso + "Z") == t
        assert abs(parse_time(iso + ".250000000Z") - (t + 0.25)) < 1e-9
    assert parse_time("0001-01-01T00:00:00Z") == calendar.timegm((1, 1, 1, 0, 0, 0))


def _argparse_ps(argv: list[str]) -> object:
    """What cmd_ps's argparse parser makes of `argv`: (all, quiet, no_trunc), or
    "other" (filters, templates), or "error"."""
    from minidock.cli.containers import parser
    from minidock.errors import InvalidArgument
    p = parser("ps", "List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    try:
        ns = p.parse_args(argv)
    except InvalidArgument:
        return "error"
    return "other" if ns.filter or ns.format else (ns.all, ns.quiet, ns.no_trunc)


def test_plain_ps_flags_agree_with_argparse() -> None:
    """What the hand parser accepts, argparse parses the same; the rest goes to it."""
    import itertools

    from minidock.cli.ps import plain_ps_flags
    assert plain_ps_flags([]) == (False, False, False)
    assert plain_ps_flags(["-aq", "--no-trunc"]) == (True, True, True)
    for argv in (["--aq"], ["--"], ["-"], ["-ax"], ["--no"], ["-f", "name=x"], ["-h"]):
        assert plain_ps_flags(argv) is None, argv
    tokens = ["-a", "-q", "-aq", "-qa", "-qq", "--all", "--quiet", "--no-trunc", "--a",
              "--q", "--aq", "-", "--", "-x", "--no", "-f", "x", "--format"]
    for n in range(3):
        for argv in map(list, itertools.product(tokens, repeat=n)):
            plain = plain_ps_flags(argv)
            assert plain is None or plain == _argparse_ps(argv), argv


def test_decode_briefs_is_json_loads_of_the_array() -> None:
    briefs = [brief_of("container", DOC), ["é…\u2028\\\"x", 1.5, -2, None, True, False, [], {}],
              [{"80/tcp": [{"HostIp": "::", "HostPort": "8080"}], "443/tcp": None}], []]
    texts = [_dumps(b) for b in briefs]
    assert decode_briefs(texts) == json.loads("[" + ",".join(texts) + "]") == briefs
    assert decode_briefs([]) == []
    for bad in (['["a"'], ['["a"] x'], ["nope"]):
        try:
            decode_briefs(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
