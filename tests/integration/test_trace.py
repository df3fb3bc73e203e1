"""`minidock --trace`: the tree of a `run` on the default bridge with a link and a
published port, step names as the article's, each kernel object noted by the step
that made it and checked against the kernel with ip, iptables-save and findmnt."""

from __future__ import annotations

import json
import re

import pytest

from minidock import trace

pytestmark = pytest.mark.integration


def _tree(stderr: str) -> dict[tuple[str, ...], trace.Node]:
    return {path: node for path, node in trace.walk(trace.parse(stderr))}


def _notes(node: trace.Node, kind: str, sign: str = "+") -> list[str]:
    return [n[len(sign) + len(kind) + 2:] for n in node.notes if n.startswith(f"{sign} {kind} ")]


@pytest.fixture
def traced_run(host):
    h = host
    h.write_daemon_json(json.dumps({"icc": False}))
    h.md("run", "-d", "--name", "db", "--expose", "5432", "busybox", "sleep", "1000")
    p = h.md("--trace", "run", "-d", "--name", "web", "-p", "8080:80", "--link", "db:al",
             "busybox", "sleep", "1000")
    return h, p


def test_run_tree_names_and_nesting(traced_run) -> None:
    _h, p = traced_run
    tree = _tree(p.stderr)
    start = ("start",)
    expected = [
        start + ("initializeNetworking",),
        start + ("initializeNetworking", "NewSandbox"),
        start + ("initializeNetworking", "allocateNetwork"),
        start + ("initializeNetworking", "allocateNetwork", "connectToNetwork"),
        start + ("initializeNetworking", "allocateNetwork", "connectToNetwork", "CreateEndpoint"),
        start + ("initializeNetworking", "allocateNetwork", "connectToNetwork", "allocatePorts"),
        start + ("initializeNetworking", "setupLinkedContainers"),
        start + ("initializeNetworking", "setupResolutionFiles"),
        start + ("setNetworkNamespaceKey",),
        start + ("setNetworkNamespaceKey", "SetKey"),
        start + ("setNetworkNamespaceKey", "populateNetworkResources"),
        start + ("setNetworkNamespaceKey", "populateNetworkResources", "Join"),
        start + ("setNetworkNamespaceKey", "populateNetworkResources",
                 "ProgramExternalConnectivity"),
        start + ("setNetworkNamespaceKey", "enableLinks"),
        start + ("setNetworkNamespaceKey", "updateParentHosts"),
    ]
    for path in expected:
        assert path in tree, (path, p.stderr)
    assert tree[("create",)].pipeline and tree[start].pipeline
    assert tree[expected[3]].detail == "bridge"
    order = [path for path in tree if len(path) == 2 and path[0] == "start"]
    assert order.index(start + ("initializeNetworking",)) < order.index(
        start + ("setNetworkNamespaceKey",))
    assert all(node.ms >= 0 and not node.error for node in tree.values())


def test_run_tree_objects_are_the_kernels(traced_run) -> None:
    h, p = traced_run
    tree = _tree(p.stderr)
    doc = json.loads(h.md("inspect", "web").stdout)[0]
    ns = doc["NetworkSettings"]
    pre = ("start", "setNetworkNamespaceKey")
    # SetKey: the bind mount of the netns on the key, and the ip netns link
    setkey = tree[pre + ("SetKey",)]
    (mount,) = _notes(setkey, "mount")
    assert mount == f"/proc/{doc['State']['Pid']}/ns/net on {ns['SandboxKey']}"
    assert h.sh(f"findmnt -n -o FSTYPE {ns['SandboxKey']}").stdout.strip() == "nsfs"
    (link,) = _notes(setkey, "netns")
    name, arrow, target = link.partition(" -> ")
    assert target == ns["SandboxKey"] and arrow and name.startswith("/run/netns/web@")
    assert h.sh(f"readlink {name}").stdout.strip() == ns["SandboxKey"]
    # connectToNetwork: the endpoint CreateEndpoint made (address, MAC), the port claim
    conn = ("start", "initializeNetworking", "allocateNetwork", "connectToNetwork")
    (ep,) = _notes(tree[conn], "endpoint")
    assert f"{ns['IPAddress']}/16" in ep and ns["MacAddress"] in ep
    assert _notes(tree[conn + ("allocatePorts",)], "port") == [
        "0.0.0.0:8080/tcp claimed for container port 80"]
    # Join: the veth pair, the address inside and the default route
    join = tree[pre + ("populateNetworkResources", "Join")]
    (veth,) = _notes(join, "veth")
    host_end, _, peer = veth.partition(" ⇄ ")
    assert peer.startswith("eth0")
    assert "master minidock0" in h.sh(f"ip -o link show {host_end}").stdout
    pid = doc["State"]["Pid"]
    assert f"{ns['IPAddress']}/16" in h.sh(f"nsenter -t {pid} -n ip -o -4 addr show eth0").stdout
    assert any(r.startswith("default via 172.17.0.1") for r in _notes(join, "route"))
    # ProgramExternalConnectivity and enableLinks: -A lines that iptables-save shows
    saved = h.sh("iptables-save").stdout.splitlines()
    pec = _notes(tree[pre + ("populateNetworkResources", "ProgramExternalConnectivity")],
                 "iptables")
    links = _notes(tree[pre + ("enableLinks",)], "iptables")
    assert any("--dport 8080" in r and "DNAT" in r for r in pec), pec
    assert sorted("--dport 5432" in r for r in links) == [False, True], links
    assert any("--sport 5432" in r for r in links), links
    for rule in pec + links:
        assert rule.startswith("-t ")
        assert re.sub(r"^-t \S+ ", "", rule) in saved, (rule, saved)
    assert any(n.startswith("+ proxy ") and ":8080" in n
               for n in tree[pre + ("populateNetworkResources",
                                    "ProgramExternalConnectivity")].notes)
    # setupLinkedContainers: the link's env and hosts entry, in web's /etc/hosts
    (link_note,) = _notes(tree[("start", "initializeNetworking", "setupLinkedContainers")],
                          "link")
    assert link_note.startswith("web -> db as al")
    hosts = h.md("exec", "web", "cat", "/etc/hosts").stdout
    assert re.search(r"^\S+\tal \S+ db$", hosts, re.M), hosts


def test_rm_tree_removes_what_run_made(traced_run) -> None:
    h, p = traced_run
    tree = _tree(p.stderr)
    pre = ("start", "setNetworkNamespaceKey")
    (veth,) = _notes(tree[pre + ("populateNetworkResources", "Join")], "veth")
    rm = h.md("--trace", "rm", "-f", "web")
    gone = _tree(rm.stderr)
    root = [path for path in gone if path[0] == "rm"]
    assert ("rm", "releaseNetwork") in root, rm.stderr
    removed = [n for node in gone.values() for n in node.notes if n.startswith("- ")]
    assert any(n.startswith("- iptables ") and "--dport 8080" in n for n in removed), removed
    assert any(n.startswith("- mount ") for n in removed), removed
    assert h.sh(f"ip link show {veth.split(' ')[0]}", check=False).returncode != 0


def test_trace_off_prints_nothing(host) -> None:
    p = host.md("run", "--rm", "busybox", "true")
    assert p.stderr == ""
    p = host.md("run", "--rm", "busybox", "true", env={"MINIDOCK_TRACE": "1"})
    assert trace.parse(p.stderr)[0].name == "create"
