"""Remote drivers: the example plugins (examples/) as minidock's network and IPAM
drivers, on the real kernel, in a throwaway test host.

The reference is Docker itself: tests/reference/docker-plugin-calls.jsonl holds what
dockerd 20.10.24 sent to the same plugins for the same commands
(tests/reference/capture-docker-plugin-calls.sh). minidock must send the same calls,
in the same order, with the same bodies byte for byte, once IDs, sandbox paths and
random MACs are normalised. EndpointOperInfo (asked by dockerd's own inspect paths)
is left out of the comparison.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.plugin_env import PluginHost

REF = Path(__file__).resolve().parents[1] / "reference" / "docker-plugin-calls.jsonl"
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
RANDOM_MAC = re.compile(r'"02:42:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}"')


@pytest.fixture(params=["run", "path"])
def plugins(host, request):
    """The example plugins in /run/docker/plugins (private mount ns) or on
    MINIDOCK_PLUGIN_PATH."""
    ph = PluginHost(host, request.param)
    try:
        for name in ("vethnet", "simpleipam", "macipam"):
            ph.start(name)
        yield ph
        ph_teardown_checks(ph)
    finally:
        ph.destroy()


@pytest.fixture
def run_plugins(host):
    ph = PluginHost(host, "run")
    try:
        for name in ("vethnet", "simpleipam", "macipam"):
            ph.start(name)
        yield ph
        ph_teardown_checks(ph)
    finally:
        ph.destroy()


def ph_teardown_checks(ph: PluginHost) -> None:
    """After the test: remove everything, then nothing may be left in the store, the
    kernel or the plugins (those that still run)."""
    ids = ph.md("ps", "-aq").stdout.split()
    if ids:
        ph.md("rm", "-f", *ids)
    ph.md("network", "prune", "-f")
    names = ph.md("network", "ls", "--format", "{{.Name}}", check=False).stdout.split() or \
        [l.split()[1] for l in ph.md("network", "ls").stdout.splitlines()[1:]]
    assert sorted(names) == ["bridge", "host", "none"]
    assert "vn-" not in ph.sh("ip -o link show").stdout
    for name in ph.procs:
        state = ph.state(name)
        if state is None:
            continue
        if name == "vethnet":
            assert state == {"networks": {}, "endpoints": {}}
        else:
            assert state == {}, f"{name} still holds {state}"


def normalise(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(method, body) with IDs numbered by first appearance, sandbox paths and random
    MACs replaced; EndpointOperInfo dropped."""
    ids: dict[str, str] = {}

    def number(m: re.Match) -> str:
        return ids.setdefault(m.group(0), f"<id{len(ids) + 1}>")
    out = []
    for c in calls:
        if c["method"].endswith("EndpointOperInfo"):
            continue
        body = re.sub(r'"SandboxKey":"[^"]*"', '"SandboxKey":"<key>"', c["body"])
        body = RANDOM_MAC.sub('"<mac>"', HEX64.sub(number, body))
        out.append((c["method"], _sort_exposed(body)))
    return out


def _sort_exposed(body: str) -> str:
    """Docker's order of exposed ports is not deterministic (plugins/options.py): sort
    that one list before comparing."""
    key = '"com.docker.network.endpoint.exposedports":['
    start = body.find(key)
    if start < 0:
        return body
    start += len(key)
    end = body.index("]", start)
    items = re.findall(r"\{[^}]*\}", body[start:end])
    return body[:start] + ",".join(sorted(items)) + body[end:]


def docker_phases() -> dict[str, list[dict[str, Any]]]:
    phases: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for line in REF.read_text().splitlines():
        entry = json.loads(line)
        if "phase" in entry:
            current = entry["phase"]
            phases[current] = []
        else:
            phases[current].append(entry)
    return phases


# The commands of the reference run, phase by phase (tests/reference/...-cli.txt).
SCENARIO = [
    ("network create -d vethnet --ipam-driver simpleipam --ipam-opt simpleipam.first=2 "
     "-o vethnet.route=10.99.0.0/16 -o foo=bar plugnet", True),
    ("network create -d vethnet --ipam-driver simpleipam --subnet 10.124.5.0/24 --ip-range "
     "10.124.5.128/25 --gateway 10.124.5.254 --aux-address a=10.124.5.7 --aux-address "
     "b=10.124.5.200 --internal net2", True),
    ("network create -d vethnet --label k=v net3", True),
    ("network create --ipam-driver simpleipam brnet", True),
    ("run -d --name c1 --network plugnet busybox sleep 1000", True),
    ("run -d --name c2 --network plugnet -p 8080:80 --expose 90 --mac-address "
     "02:00:00:00:00:09 busybox sleep 1000", True),
    ("run -d --name c3 --network net2 --ip 10.124.5.140 busybox sleep 1000", True),
    ("network create -d vethnet --ipam-driver macipam macnet", True),
    ("run -d --name c5 --network macnet busybox sleep 1000", True),
    ("run -d --name c4 --network brnet busybox sleep 1000", True),
    ("stop c1", False),          # `docker stop -t 1 c1` in the reference
    ("rm -f c1 c2 c3 c4 c5", False),
    ("network rm plugnet net2 net3 brnet macnet", True),
]


def test_calls_and_bodies_are_dockers(run_plugins: PluginHost) -> None:
    """Every phase of the reference run: the same calls, in Docker's order, with
    Docker's bodies byte for byte; plus the network works (addresses, MAC, routes)."""
    ph = run_plugins
    ref = docker_phases()
    ours: dict[str, list[dict[str, Any]]] = {}
    for phase, exact in SCENARIO:
        mark = ph.mark()
        args = phase.split()
        if args[0] == "stop":
            args = ["stop", "-t", "1", *args[1:]]
        ph.md(*args)
        ours[phase] = ph.since(mark)
        if phase.startswith("run -d --name c2"):
            check_datapath(ph)
    want_all = normalise([c for p, _e in SCENARIO for c in ref[p]])
    got_all = normalise([c for p, _e in SCENARIO for c in ours[p]])
    # compare phase by phase (numbering is global, so slice the normalised lists)
    i = j = 0
    for phase, exact in SCENARIO:
        n_want = len(normalise_count(ref[phase]))
        n_got = len(normalise_count(ours[phase]))
        want, got = want_all[i:i + n_want], got_all[j:j + n_got]
        i, j = i + n_want, j + n_got
        if exact:
            assert got == want, f"phase {phase!r}"
        else:                     # dockerd removes containers in parallel
            assert sorted(got) == sorted(want), f"phase {phase!r}"


def normalise_count(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if not c["method"].endswith("EndpointOperInfo")]


def check_datapath(ph: PluginHost) -> None:
    """c1 and c2 on plugnet: the IPAM's addresses, the plugin's MAC (c1) or the user's
    (c2), the plugin's gateway and static route, and they reach each other."""
    addr = ph.md("exec", "c1", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert "inet 10.123.0.3/24" in addr
    link = ph.md("exec", "c1", "ip", "-o", "link", "show", "eth0").stdout
    assert "02:76:0a:7b:00:03" in link
    link2 = ph.md("exec", "c2", "ip", "-o", "link", "show", "eth0").stdout
    assert "02:00:00:00:00:09" in link2
    routes = ph.md("exec", "c1", "ip", "route").stdout
    assert "default via 10.123.0.1 dev eth0" in routes
    assert "10.99.0.0/16 via 10.123.0.1 dev eth0" in routes
    ping = ph.md("exec", "c1", "ping", "-c1", "-W5", "10.123.0.4", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # the host end is the plugin's, on the plugin's bridge
    assert "master vn-" in ph.sh("ip -o link show type veth").stdout
    net = json.loads(ph.md("network", "inspect", "plugnet").stdout)[0]
    assert net["Driver"] == "vethnet"
    assert net["IPAM"] == {"Driver": "simpleipam", "Options": {"simpleipam.first": "2"},
                           "Config": [{"Subnet": "10.123.0.0/24", "Gateway": "10.123.0.1"}]}
    assert net["Options"] == {"foo": "bar", "vethnet.route": "10.99.0.0/16"}
    c1 = json.loads(ph.md("inspect", "c1").stdout)[0]["NetworkSettings"]["Networks"]["plugnet"]
    assert (c1["IPAddress"], c1["Gateway"], c1["MacAddress"]) == \
        ("10.123.0.3", "10.123.0.1", "02:76:0a:7b:00:03")


def test_two_containers_via_plugin_path(plugins: PluginHost) -> None:
    """Both discovery places: /run/docker/plugins and MINIDOCK_PLUGIN_PATH."""
    ph = plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "pn")
    ph.md("run", "-d", "--name", "ca", "--network", "pn", "busybox", "sleep", "1000")
    ph.md("run", "-d", "--name", "cb", "--network", "pn", "busybox", "sleep", "1000")
    assert "inet 10.123.0.3/24" in ph.md("exec", "cb", "ip", "-o", "-4", "addr").stdout
    ping = ph.md("exec", "cb", "ping", "-c1", "-W5", "10.123.0.2", check=False)
    assert ping.returncode == 0, ping.stdout
    mark = ph.mark()
    ph.md("rm", "-f", "ca")
    assert [m.split(".")[1] for m in ph.methods()[mark:]] == [
        "RevokeExternalConnectivity", "Leave", "DeleteEndpoint", "ReleaseAddress"]
    ph.md("rm", "-f", "cb")
    mark = ph.mark()
    ph.md("network", "rm", "pn")
    assert [m.split(".")[1] for m in ph.methods()[mark:]] == [
        "ReleaseAddress", "ReleasePool", "DeleteNetwork"]


def test_remote_ipam_under_bridge(run_plugins: PluginHost) -> None:
    ph = run_plugins
    ph.md("network", "create", "--ipam-driver", "simpleipam", "--ipam-opt", "simpleipam.first=4", "br")
    net = json.loads(ph.md("network", "inspect", "br").stdout)[0]
    assert net["Driver"] == "bridge" and net["IPAM"]["Driver"] == "simpleipam"
    bridge = f"br-{net['Id'][:12]}"
    assert "inet 10.123.0.1/24" in ph.sh(f"ip -o -4 addr show {bridge}").stdout
    ph.md("run", "-d", "--name", "cx", "--network", "br", "busybox", "sleep", "1000")
    assert "inet 10.123.0.5/24" in ph.md("exec", "cx", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert ph.md("exec", "cx", "ping", "-c1", "-W5", "10.123.0.1", check=False).returncode == 0
    assert ph.state("simpleipam") == {"simple-local:10.123.0.0/24": ["10.123.0.1", "10.123.0.5"]}
    ph.md("rm", "-f", "cx")
    ph.md("network", "rm", "br")
    assert ph.state("simpleipam") == {}


@pytest.mark.parametrize("method", ["IpamDriver.RequestPool", "IpamDriver.RequestAddress",
                                    "NetworkDriver.CreateNetwork"])
def test_network_create_failure_leaves_nothing(run_plugins: PluginHost, method: str) -> None:
    ph = run_plugins
    ph.fail("simpleipam" if method.startswith("Ipam") else "vethnet", method)
    out = ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "bad",
                check=False)
    assert out.returncode == 125
    plugin = "simpleipam" if method.startswith("Ipam") else "vethnet"
    assert out.stderr.strip().splitlines() == [
        f'Error response from daemon: plugin "{plugin}": {method}: injected failure']
    assert "bad" not in ph.md("network", "ls").stdout
    assert ph.state("simpleipam") in (None, {})
    assert (ph.state("vethnet") or {}).get("networks", {}) == {}
    assert "vn-" not in ph.sh("ip -o link show").stdout


@pytest.mark.parametrize("method", ["IpamDriver.RequestAddress", "NetworkDriver.CreateEndpoint",
                                    "NetworkDriver.Join",
                                    "NetworkDriver.ProgramExternalConnectivity"])
def test_run_failure_leaves_nothing(run_plugins: PluginHost, method: str) -> None:
    ph = run_plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "pn")
    ph.fail("simpleipam" if method.startswith("Ipam") else "vethnet", method)
    out = ph.md("run", "-d", "--name", "ca", "--network", "pn", "busybox", "sleep", "1000",
                check=False)
    assert out.returncode != 0
    assert f'": {method}: injected failure' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert ph.state("simpleipam") == {"simple-local:10.123.0.0/24": ["10.123.0.1"]}
    assert ph.state("vethnet")["endpoints"] == {}
    assert not ph.sh("ip -o link show type veth").stdout.strip()
    assert json.loads(ph.md("network", "inspect", "pn").stdout)[0]["Containers"] == {}


def test_plugin_killed_midway_then_restarted(run_plugins: PluginHost) -> None:
    """The plugin dies while answering Join: a clear error, the address given back;
    restarted, it has forgotten the network: the next call says so."""
    ph = run_plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "pn")
    ph.fail("vethnet", "NetworkDriver.Join die")
    out = ph.md("run", "-d", "--name", "ca", "--network", "pn", "busybox", "sleep", "1000",
                check=False)
    assert out.returncode != 0
    assert 'plugin "vethnet": NetworkDriver.Join: ' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert ph.state("simpleipam") == {"simple-local:10.123.0.0/24": ["10.123.0.1"]}
    assert not ph.sh("ip -o link show type veth").stdout.strip()
    ph.fail("vethnet")
    ph.procs.pop("vethnet").wait()
    ph.sh(f"rm -f {ph.sock('vethnet')}")
    ph.start("vethnet")
    out = ph.md("run", "-d", "--name", "cb", "--network", "pn", "busybox", "sleep", "1000",
                check=False)
    assert out.returncode != 0
    assert 'plugin "vethnet": NetworkDriver.CreateEndpoint:' in out.stderr
    assert "restarted since network pn was created" in out.stderr
    assert ph.state("simpleipam") == {"simple-local:10.123.0.0/24": ["10.123.0.1"]}
    ph.md("rm", "-f", "ca", "cb")
    out = ph.md("network", "rm", "pn", check=False)      # the driver fails; Docker removes
    assert "pn" not in ph.md("network", "ls").stdout
    assert ph.state("simpleipam") == {}
    # the bridge of the plugin's first life is the plugin's own leftover, not minidock's
    ph.sh("for l in $(ip -o link show | awk -F': ' '/ vn-/{print $2}'); do ip link del $l; done")


def test_system_prune_asks_plugins_nothing(run_plugins: PluginHost) -> None:
    ph = run_plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "pn")
    ph.md("run", "-d", "--name", "ca", "--network", "pn", "busybox", "sleep", "1000")
    mark = ph.mark()
    ph.md("system", "prune", "-f")
    assert ph.since(mark) == []
    ph.md("exec", "ca", "true")


def test_unknown_driver_and_bad_plugin(run_plugins: PluginHost) -> None:
    ph = run_plugins
    out = ph.md("network", "create", "-d", "nosuch", "x", check=False)
    assert out.returncode == 125
    assert out.stderr.strip() == 'Error response from daemon: plugin "nosuch" not found'
    out = ph.md("network", "create", "-d", "simpleipam", "x", check=False)
    assert 'plugin "simpleipam" does not implement NetworkDriver' in out.stderr
    out = ph.md("network", "create", "--ipam-driver", "nosuch", "x", check=False)
    assert out.stderr.strip() == 'Error response from daemon: plugin "nosuch" not found'


def test_connect_and_disconnect(run_plugins: PluginHost) -> None:
    """A running container joins a plugin network as eth1 and leaves it: the plugin
    gets its interface back under its own name (libnetwork moves it out of the
    sandbox before Leave), then deletes it."""
    ph = run_plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "pn")
    ph.md("run", "-d", "--name", "ca", "busybox", "sleep", "1000")
    mark = ph.mark()
    ph.md("network", "connect", "pn", "ca")
    assert [m.split(".")[1] for m in ph.methods()[mark:]] == [
        "RequestAddress", "CreateEndpoint", "Join"]
    link = ph.md("exec", "ca", "ip", "-o", "link", "show", "eth1").stdout
    assert "02:76:0a:7b:00:02" in link
    assert "inet 10.123.0.2/24" in ph.md("exec", "ca", "ip", "-o", "-4", "addr", "show", "eth1").stdout
    mark = ph.mark()
    ph.md("network", "disconnect", "pn", "ca")
    assert [m.split(".")[1] for m in ph.methods()[mark:]] == [
        "RevokeExternalConnectivity", "Leave", "DeleteEndpoint", "ReleaseAddress"]
    assert ph.md("exec", "ca", "ip", "link", "show", "eth1", check=False).returncode != 0
    assert "vnc" not in ph.sh("ip -o link show").stdout
    assert ph.state("vethnet")["endpoints"] == {}


def test_teardown_when_the_plugins_are_gone(run_plugins: PluginHost) -> None:
    """Both plugins stopped (sockets gone): rm and network rm still release everything
    of minidock's, and say which plugin they could not reach."""
    ph = run_plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam", "pn")
    ph.md("run", "-d", "--name", "ca", "--network", "pn", "busybox", "sleep", "1000")
    for name in ("vethnet", "simpleipam"):
        ph.kill(name)
        ph.sh(f"rm -f {ph.sock(name)}")
    out = ph.md("rm", "-f", "ca", check=False)
    assert 'plugin "vethnet" not found' in out.stderr
    assert ph.md("ps", "-aq").stdout.strip() == ""
    out = ph.md("network", "rm", "pn", check=False)
    assert "pn" not in ph.md("network", "ls").stdout
    assert not ph.sh("ip -o link show type veth").stdout.strip()
    ph.sh("for l in $(ip -o link show | awk -F': ' '/ vn-/{print $2}'); do ip link del $l; done")


def test_interface_named_after_the_drivers_dst_prefix(plugins: PluginHost) -> None:
    """Join's DstPrefix names the interface in the sandbox, prefix + index, as
    libnetwork does; leave and network rm still find it."""
    ph = plugins
    ph.md("network", "create", "-d", "vethnet", "--ipam-driver", "simpleipam",
          "-o", "vethnet.prefix=vn", "pn")
    ph.md("run", "-d", "--name", "ca", "--network", "pn", "busybox", "sleep", "1000")
    links = ph.md("exec", "ca", "ip", "-o", "link").stdout
    assert " vn0@" in links and " eth0" not in links, links
    assert "inet 10.123.0.2/24" in ph.md("exec", "ca", "ip", "-o", "-4", "addr", "show",
                                         "vn0").stdout
    ph.md("rm", "-f", "ca")
    ph.md("network", "rm", "pn")
    state = ph.state("vethnet")
    assert not state or (state["networks"], state["endpoints"]) == ({}, {})
