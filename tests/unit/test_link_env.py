"""Legacy links: spec parsing, Docker's env vars (order and quirks), hosts entry."""


import pytest

from minidock.errors import InvalidArgument
from minidock.net.links.env import link_env, link_hosts_entry, parse_link

from tests.reference import REF  # noqa: E402


def test_parse_link():
    assert parse_link("db:webdb") == ("db", "webdb")
    assert parse_link("db") == ("db", "db")
    assert parse_link("/db:/web/webdb") == ("db", "webdb")
    with pytest.raises(InvalidArgument, match="^bad format for links: a:b:c$"):
        parse_link("a:b:c")
    with pytest.raises(InvalidArgument):
        parse_link("")


def test_reference_link_env():
    env = link_env("web", "webdb", "db", "172.17.0.2", [(5432, "tcp")],
                   ["PATH=/usr/bin", "doc=docker", "HOME=/root", "novalue"])
    ref = [l for l in (REF / "link-env.txt").read_text().splitlines() if l.startswith("WEBDB_")]
    assert sorted(env) == ref
    assert env == ["WEBDB_PORT=tcp://172.17.0.2:5432",
                   "WEBDB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                   "WEBDB_PORT_5432_TCP_ADDR=172.17.0.2",
                   "WEBDB_PORT_5432_TCP_PORT=5432",
                   "WEBDB_PORT_5432_TCP_PROTO=tcp",
                   "WEBDB_NAME=/web/webdb",
                   "WEBDB_ENV_doc=docker"]


def test_no_ports_and_alias_mangling():
    env = link_env("/p", "my-db.x", "db", "1.2.3.4", [], [])
    assert env == ["MY_DB.X_NAME=/p/my-db.x"]


def test_ranges_and_tcp_first():
    ports = [(8002, "tcp"), (53, "udp"), (8000, "tcp"), (8001, "tcp"), (53, "tcp")]
    env = link_env("p", "c", "c", "10.0.0.2", ports, [])
    assert env[0] == "C_PORT=tcp://10.0.0.2:53"
    assert env[1:7] == ["C_PORT_8000_TCP_START=tcp://10.0.0.2:8000",
                        "C_PORT_8000_TCP_ADDR=10.0.0.2",
                        "C_PORT_8000_TCP_PROTO=tcp",
                        "C_PORT_8000_TCP_PORT_START=8000",
                        "C_PORT_8000_TCP_END=tcp://10.0.0.2:8002",
                        "C_PORT_8000_TCP_PORT_END=8002"]
    per_port = [e.split("=")[0] for e in env[7:] if e.endswith(("_TCP", "_UDP")) or "=" in e]
    assert env[7] == "C_PORT_53_TCP=tcp://10.0.0.2:53"
    assert env[11] == "C_PORT_53_UDP=udp://10.0.0.2:53"
    assert env[15] == "C_PORT_8000_TCP=tcp://10.0.0.2:8000"
    assert env[-1] == "C_NAME=/p/c" and len(per_port) == len(env) - 7


def test_two_consecutive_ports_are_not_a_range():
    env = link_env("p", "c", "c", "10.0.0.2", [(80, "tcp"), (81, "tcp")], [])
    assert not any("_START" in e for e in env)


def test_hosts_entry():
    assert link_hosts_entry("webdb", "e8921be29938", "/db", "172.17.0.2") == (
        "172.17.0.2", "webdb e8921be29938 db")
    assert link_hosts_entry("db", "e8921be29938", "db", "172.17.0.2") == (
        "172.17.0.2", "db e8921be29938")
