"""Legacy links, the article's example end to end (issue: links and icc).

`db` (training/postgres: ENV doc=docker, EXPOSE 5432, a TCP service) and
`web --link db:webdb`, with `icc: false`, in a throwaway test host. Checked with
tools other than minidock where it matters (iptables-save, the container's own files).
"""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import REPO

from tests.reference import REF  # noqa: E402
DB_TAR = REPO / "build" / "training-postgres.tar"


@pytest.fixture
def linked(host):
    host.write_daemon_json('{"icc": false}')
    host.md("image", "load", "-i", str(DB_TAR))
    host.md("run", "-d", "--name", "db", "training/postgres")
    host.md("run", "-d", "--name", "web", "--link", "db:webdb", "busybox", "sleep", "600")
    return host


def _ip(host, name: str) -> str:
    return host.md("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()


def _hostname(host, name: str) -> str:
    return host.md("inspect", "-f", "{{.Config.Hostname}}", name).stdout.strip()


def _minidock_chain(host) -> list[str]:
    out = host.sh("iptables-save -t filter").stdout.splitlines()
    return [ln for ln in out if ln.startswith("-A MINIDOCK ")]


def _normalise(text: str, subst: dict[str, str]) -> list[str]:
    for old, new in subst.items():
        text = text.replace(old, new)
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_env_matches_docker(linked):
    env = linked.md("exec", "web", "env").stdout.splitlines()
    ours = sorted(ln for ln in env if ln.startswith("WEBDB_"))
    ref = (REF / "link-env.txt").read_text().splitlines()
    theirs = sorted(ln.replace("172.17.0.2", _ip(linked, "db")) for ln in ref
                    if ln.startswith("WEBDB_"))
    assert ours == theirs


def test_hosts_matches_docker(linked):
    hosts = linked.md("exec", "web", "cat", "/etc/hosts").stdout
    ref = (REF / "link-web-hosts.txt").read_text()
    ref = ref.replace("e8921be29938", _hostname(linked, "db"))
    ref = ref.replace("79e9dd98bf98", _hostname(linked, "web"))
    assert hosts == ref


def test_filter_table_equals_reference(linked):
    ref = (REF / "docker-bridge-link-icc-false.iptables").read_text()
    subst = {"DOCKER": "MINIDOCK", "docker0": "minidock0"}
    want = [ln for ln in _normalise(ref, subst)]
    got = _normalise(linked.sh("iptables-save").stdout, {})
    got = [re.sub(r"\[\d+:\d+\]", "[0:0]", ln) for ln in got]
    assert got == want


def test_alias_reaches_port_ping_dropped_third_isolated(linked):
    out = linked.md("exec", "web", "sh", "-c", "echo | nc -w 2 webdb 5432").stdout
    assert "hello from db" in out
    ping = linked.md("exec", "web", "ping", "-c1", "-W1", "webdb", check=False)
    assert ping.returncode != 0
    linked.md("run", "-d", "--name", "third", "busybox", "sleep", "600")
    for target in ("db", "web"):
        ip = _ip(linked, target)
        probe = linked.md("exec", "third", "sh", "-c", f"echo | nc -w 1 {ip} 5432",
                          check=False)
        assert "hello from db" not in probe.stdout
        assert linked.md("exec", "third", "ping", "-c1", "-W1", ip, check=False).returncode != 0


def test_child_restart_updates_hosts_and_rules(linked):
    old_ip = _ip(linked, "db")
    linked.md("stop", "-t", "1", "db")
    assert _minidock_chain(linked) == []
    linked.md("run", "-d", "--name", "filler", "busybox", "sleep", "600")  # takes db's old address
    linked.md("start", "db")
    new_ip = _ip(linked, "db")
    assert new_ip != old_ip
    hosts = linked.md("exec", "web", "cat", "/etc/hosts").stdout
    assert f"{new_ip}\twebdb {_hostname(linked, 'db')} db" in hosts
    assert old_ip + "\twebdb" not in hosts
    rules = _minidock_chain(linked)
    assert len(rules) == 2 and all(new_ip + "/32" in r for r in rules)
    out = linked.md("exec", "web", "sh", "-c", "echo | nc -w 2 webdb 5432").stdout
    assert "hello from db" in out


@pytest.mark.parametrize("victim", ["web", "db"])
def test_removing_either_side_removes_rules(linked, victim):
    assert len(_minidock_chain(linked)) == 2
    linked.md("rm", "-f", victim)
    assert _minidock_chain(linked) == []


def test_inspect_links(linked):
    out = linked.md("inspect", "-f", "{{json .HostConfig.Links}}", "web").stdout.strip()
    assert out == '["/db:/web/webdb"]'


@pytest.mark.parametrize("args, message", [
    (["--link", "nosuch:x"], "could not get container for nosuch: No such container: nosuch"),
    (["--link", "a:b:c"], "bad format for links: a:b:c"),
    (["--link", "stopped:s"], "Cannot link to a non running container: /stopped AS /"),
    (["--net", "host", "--link", "db:x"], "conflicting options: host type networking can't be used with links"),
])
def test_link_errors_leave_nothing(host, args, message):
    host.md("load", "-i", str(DB_TAR))
    host.md("run", "-d", "--name", "db", "training/postgres")
    host.md("create", "--name", "stopped", "busybox", "true")
    before = host.sh("iptables-save | grep -v '^#'").stdout
    proc = host.md("run", "-d", *args, "busybox", "sleep", "60", check=False)
    assert proc.returncode == 125
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    after = host.sh("iptables-save | grep -v '^#'").stdout
    assert before == after


def test_link_on_user_network_is_dns_alias_only(host):
    host.md("network", "create", "appnet")
    host.md("run", "-d", "--name", "api", "--network", "appnet", "busybox", "sleep", "600")
    host.md("run", "-d", "--name", "cli", "--network", "appnet", "--link", "api:backend",
            "busybox", "sleep", "600")
    env = host.md("exec", "cli", "env").stdout
    assert "BACKEND_" not in env
    assert "backend" not in host.md("exec", "cli", "cat", "/etc/hosts").stdout
    out = host.md("exec", "cli", "nslookup", "backend", "127.0.0.11", check=False).stdout
    api_ip = host.md("inspect", "-f", "{{.NetworkSettings.Networks.appnet.IPAddress}}",
                     "api").stdout.strip()
    assert api_ip in out
