"""--format and --filter on every listing, `inspect --format`, and `system info`,
run as a Docker user types them, checked against `ip` and the store's own JSON."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def populated(host):
    host.md("network", "create", "--label", "env=dev", "--subnet", "10.77.0.0/24", "n1")
    host.md("run", "-d", "--name", "web", "-l", "tier=front", "-p", "8080:80",
            "busybox", "sleep", "1000")
    host.md("run", "-d", "--name", "db", "--network", "n1", "busybox", "sleep", "1000")
    host.md("run", "--name", "job", "busybox", "sh", "-c", "exit 3", check=False)
    return host


def _lines(host, *args: str) -> list[str]:
    return host.md(*args).stdout.splitlines()


def test_ps_format_and_filter(populated) -> None:
    h = populated
    assert sorted(_lines(h, "ps", "--format", r"{{.Names}}\t{{.State}}")) == [
        "db\trunning", "web\trunning"]
    table = _lines(h, "ps", "-a", "--format", r"table {{.Names}}\t{{.Networks}}\t{{.Ports}}")
    assert table[0].split() == ["NAMES", "NETWORKS", "PORTS"]
    assert "web       bridge     0.0.0.0:8080->80/tcp, :::8080->80/tcp" in table
    rows = [json.loads(line) for line in _lines(h, "ps", "--format", "{{json .}}")]
    assert {r["Names"] for r in rows} == {"web", "db"}
    assert {"ID", "Image", "Command", "CreatedAt", "RunningFor", "Status", "Labels"} <= set(rows[0])
    assert _lines(h, "ps", "-f", "status=exited", "--format", "{{.Names}}") == ["job"]
    assert _lines(h, "ps", "-a", "-f", "exited=3", "-q") == [
        json.loads(h.md("inspect", "job").stdout)[0]["Id"][:12]]
    assert _lines(h, "ps", "-f", "label=tier=front", "--format", "{{.Names}} {{.Labels}}") == [
        "web tier=front"]
    assert _lines(h, "ps", "-f", "network=n1", "--format", "{{.Names}}") == ["db"]
    assert sorted(_lines(h, "ps", "-f", "name=web", "-f", "name=db", "--format",
                         "{{.Names}}")) == ["db", "web"]
    bad = h.md("ps", "-f", "colour=red", check=False)
    assert bad.returncode == 125 and "Invalid filter 'colour'" in bad.stderr


def test_network_ls_format_and_filter(populated) -> None:
    h = populated
    assert _lines(h, "network", "ls", "-f", "label=env=dev", "--format", "{{.Name}} {{.Labels}}") == [
        "n1 env=dev"]
    assert _lines(h, "network", "ls", "-f", "type=custom", "--format", "{{.Name}}") == ["n1"]
    assert _lines(h, "network", "ls", "-f", "driver=null", "--format", "{{.Name}}") == ["none"]
    table = _lines(h, "network", "ls", "--format", r"table {{.Name}}\t{{.Driver}}\t{{.Scope}}")
    assert table[0].split() == ["NAME", "DRIVER", "SCOPE"] and len(table) == 5
    docs = [json.loads(line) for line in _lines(h, "network", "ls", "--format", "json")]
    assert [d["Name"] for d in docs] == ["bridge", "host", "n1", "none"]
    assert docs[2]["ID"] == json.loads(h.md("network", "inspect", "n1").stdout)[0]["Id"][:12]


def test_image_ls_format_and_filter(populated) -> None:
    h = populated
    assert _lines(h, "images", "--format", "{{.Repository}}:{{.Tag}}") == ["busybox:latest"]
    assert _lines(h, "image", "ls", "-f", "reference=busy*", "--format", "{{.Repository}}") == [
        "busybox"]
    assert _lines(h, "images", "-f", "reference=alpine", "--format", "{{.ID}}") == []
    assert _lines(h, "images", "-f", "dangling=false", "-q") == _lines(h, "images", "-q")
    table = _lines(h, "images", "--format", r"table {{.Repository}}\t{{.ID}}\t{{.Size}}")
    assert table[0].split() == ["REPOSITORY", "IMAGE", "ID", "SIZE"]
    (row,) = [json.loads(line) for line in _lines(h, "images", "--format", "json")]
    assert row["Repository"] == "busybox" and row["Tag"] == "latest"


def test_inspect_formats_match_the_kernel(populated) -> None:
    h = populated
    ip = h.md("inspect", "--format", "{{.NetworkSettings.Networks.n1.IPAddress}}", "db").stdout.strip()
    pid = h.md("inspect", "-f", "{{.State.Pid}}", "db").stdout.strip()
    assert f"inet {ip}/24" in h.sh(f"nsenter -t {pid} -n ip -4 addr show eth0").stdout
    out = h.md("network", "inspect", "-f",
               "{{range $id, $c := .Containers}}{{$c.Name}} {{$c.IPv4Address}}{{end}}", "n1")
    assert out.stdout.strip() == f"db {ip}/24"
    assert h.md("network", "inspect", "--format", "{{json .Labels}}", "n1").stdout.strip() == \
        '{"env":"dev"}'
    ports = h.md("inspect", "--format", "{{json .NetworkSettings.Ports}}", "web").stdout
    assert json.loads(ports)["80/tcp"][0]["HostPort"] == "8080"


def test_system_info(populated) -> None:
    h = populated
    out = h.md("system", "info").stdout
    assert " Containers: 3\n  Running: 2\n  Paused: 0\n  Stopped: 1\n" in out
    assert f" Minidock Root Dir: {h.root}\n" in out
    backend = "nf_tables" if "nf_tables" in h.sh("iptables --version").stdout else "legacy"
    assert f"({backend} backend," in out
    addr = h.sh("ip -4 -o addr show minidock0").stdout.split()[3]          # 172.17.0.1/16
    assert f"gateway {addr.split('/')[0]})" in out and "subnet 172.17.0.0/16" in out
    doc = json.loads(h.md("info", "--format", "{{json .}}").stdout)
    assert (doc["Networks"], doc["Images"], doc["ExecRootDir"]) == (4, 1, h.exec_root)
