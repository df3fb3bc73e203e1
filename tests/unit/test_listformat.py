"""--format and --filter of the listings (pure parts)."""

from __future__ import annotations

import pytest

from minidock.runtime import listformat
from minidock.errors import InvalidArgument
from minidock.info import iptables_backend, text
from minidock.runtime import psformat

HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS"}
ROWS = [{"ID": "abc", "Names": "web", "Status": "Up 2 minutes"},
        {"ID": "def", "Names": "database", "Status": "Exited (0) 1 second ago"}]


def _default(rows: list[dict]) -> str:
    return "DEFAULT\n"


def test_plain_template_one_line_per_row_with_escapes() -> None:
    out = listformat.render(r"{{.Names}}\t{{.Status}}", ROWS, HEADERS, _default)
    assert out == "web\tUp 2 minutes\ndatabase\tExited (0) 1 second ago\n"


def test_table_template_has_titles_and_docker_columns() -> None:
    out = listformat.render(r"table {{.ID}}\t{{.Names}}", ROWS, HEADERS, _default)
    assert out.splitlines() == ["CONTAINER ID   NAMES", "abc            web",
                                "def            database"]


def test_table_alone_and_empty_are_the_default_table() -> None:
    assert listformat.render("table", ROWS, HEADERS, _default) == "DEFAULT\n"
    assert listformat.render("", ROWS, HEADERS, _default) == "DEFAULT\n"


def test_json_forms() -> None:
    out = listformat.render("json", ROWS[:1], HEADERS, _default)
    assert out == '{"ID":"abc","Names":"web","Status":"Up 2 minutes"}\n'
    assert listformat.render("{{json .}}", ROWS[:1], HEADERS, _default) == out


def test_range_in_a_template() -> None:
    rows = [{"Names": "web", "Nets": ["a", "b"]}]
    out = listformat.render("{{.Names}}:{{range .Nets}} {{.}}{{end}}", rows, {}, _default)
    assert out == "web: a b\n"


def test_filters_parse_and_reject_unknown_keys() -> None:
    got = listformat.parse_filters(["name=a", "name=b", "label=x=1"], ("name", "label"))
    assert got == {"name": ["a", "b"], "label": ["x=1"]}
    with pytest.raises(InvalidArgument, match="Invalid filter 'bogus'"):
        listformat.parse_filters(["bogus=1"], ("name",))
    with pytest.raises(InvalidArgument, match="bad format of filter"):
        listformat.parse_filters(["name"], ("name",))


def test_labels_match() -> None:
    assert listformat.labels_match({"a": "1", "b": ""}, ["a", "a=1", "b="])
    assert not listformat.labels_match({"a": "1"}, ["a=2"])
    assert not listformat.labels_match(None, ["a"])


def _ctr(name: str, status: str, code: int = 0, labels: dict | None = None) -> dict:
    return {"Id": name * 8, "Name": "/" + name, "Image": "sha256:feed", "Created": "",
            "State": {"Status": status, "ExitCode": code, "Running": status == "running"},
            "Config": {"Image": "busybox", "Labels": labels or {}},
            "NetworkSettings": {"Networks": {"bridge": {"NetworkID": "beef"}}}}


def test_ps_filters_or_within_a_key_and_across_keys() -> None:
    ctrs = [_ctr("web", "running", labels={"tier": "front"}), _ctr("db", "exited", 3),
            _ctr("job", "exited", 0)]
    pick = lambda f: [c["Name"] for c in psformat.filter_containers(ctrs, f)]  # noqa: E731
    assert pick({"status": ["running", "exited"]}) == ["/web", "/db", "/job"]
    assert pick({"status": ["exited"], "exited": ["3"]}) == ["/db"]
    assert pick({"name": ["^/w"]}) == ["/web"]
    assert pick({"label": ["tier=front"]}) == ["/web"]
    assert pick({"ancestor": ["busybox"], "network": ["bridge"]}) == ["/web", "/db", "/job"]
    assert pick({"network": ["other"]}) == []
    with pytest.raises(InvalidArgument, match="Unrecognised filter value for status: up"):
        psformat.filter_containers(ctrs, {"status": ["up"]})


def test_iptables_backend() -> None:
    assert iptables_backend("iptables v1.8.9 (nf_tables)") == "nf_tables"
    assert iptables_backend("iptables v1.8.9 (legacy)") == "legacy"
    assert iptables_backend("iptables v1.6.1") == "legacy"
    assert iptables_backend("") == ""


def test_info_text_names_the_network_side() -> None:
    doc = {"Containers": 2, "ContainersRunning": 1, "ContainersPaused": 0,
           "ContainersStopped": 1, "Images": 1, "Networks": 4, "ServerVersion": "0.1.0",
           "Driver": "overlay", "Plugins": {"Network": ["bridge", "host", "null"]},
           "DockerRootDir": "/r", "ExecRootDir": "/x", "NetnsLinks": "/run/netns/<name>@0a1b2c3d", "DaemonConfig": "",
           "DefaultBridge": {"Name": "bridge", "Device": "minidock0",
                             "Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"},
           "Iptables": True, "IptablesBackend": "nf_tables",
           "IptablesVersion": "iptables v1.8.9 (nf_tables)", "BridgeNfIptables": True,
           "BrNetfilterLoaded": True, "IPv4Forwarding": True, "Icc": False, "IpMasq": True,
           "UserlandProxy": False, "Mtu": 1500, "ClusterStore": "etcd://10.0.0.1:2379",
           "ClusterAdvertise": "", "KernelVersion": "6", "OperatingSystem": "Debian",
           "Architecture": "x86_64"}
    out = text(doc)
    assert " Default Bridge: bridge (minidock0, subnet 172.17.0.0/16, gateway 172.17.0.1)\n" in out
    assert " Iptables: true (nf_tables backend, iptables v1.8.9)\n" in out
    assert " Br_netfilter: loaded, bridge-nf-call-iptables=1\n" in out
    assert " ICC: false\n" in out and " Userland Proxy: false\n" in out
    assert " Cluster Store: etcd://10.0.0.1:2379\n" in out
    assert " Netns Links: /run/netns/<name>@0a1b2c3d\n" in out
    assert out.startswith("Server:\n Containers: 2\n  Running: 1\n")
