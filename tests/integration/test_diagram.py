"""`network diagram` on a host with two networks and a link: the tree and the Graphviz
source name what the kernel has (veth pairs, addresses, MACs), `dot` accepts it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def topology(host):
    h = host
    h.md("network", "create", "--subnet", "10.77.0.0/24", "n1")
    h.md("run", "-d", "--name", "db", "--expose", "5432", "busybox", "sleep", "1000")
    h.md("run", "-d", "--name", "web", "-p", "8080:80", "--link", "db:al", "busybox",
         "sleep", "1000")
    h.md("run", "-d", "--name", "api", "--network", "n1", "--network-alias", "backend",
         "busybox", "sleep", "1000")
    h.md("network", "connect", "n1", "web")
    return h


def _kernel_iface(h, name: str, ifname: str) -> tuple[str, str, str]:
    """(host-side veth, address/prefix, MAC) of `ifname` in container `name`, from ip."""
    pid = h.md("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    link = h.sh(f"nsenter -t {pid} -n ip -o link show {ifname}").stdout
    peer_index = re.search(r"@if(\d+):", link).group(1)
    mac = re.search(r"link/ether (\S+)", link).group(1)
    addr = h.sh(f"nsenter -t {pid} -n ip -o -4 addr show {ifname}").stdout.split()[3]
    veth = h.sh(f"ip -o link show | awk -F': ' '$1 == {peer_index} {{print $2}}'").stdout
    return veth.strip().split("@")[0], addr, mac


def test_text_tree_matches_the_kernel(topology) -> None:
    h = topology
    out = h.md("network", "diagram").stdout
    lines = out.splitlines()
    assert lines[0] == "bridge  bridge minidock0  172.17.0.0/16  gateway 172.17.0.1"
    n1 = lines.index(next(ln for ln in lines if ln.startswith("n1  ")))
    assert lines[n1].startswith("n1  bridge br-") and "10.77.0.0/24  gateway 10.77.0.1" in lines[n1]
    bridge_part, n1_part = "\n".join(lines[:n1]), "\n".join(lines[n1:])
    for part, name, ifname in ((bridge_part, "db", "eth0"), (bridge_part, "web", "eth0"),
                               (n1_part, "web", "eth1"), (n1_part, "api", "eth0")):
        veth, addr, mac = _kernel_iface(h, name, ifname)
        assert re.search(rf"─ {name}\s+{veth} ⇄ {ifname}  {addr}  {mac}$", part, re.M), (name, part)
    assert "     ports  0.0.0.0:8080->80/tcp, :::8080->80/tcp" in bridge_part
    assert "     link   db as al  (web's /etc/hosts: al db)" in bridge_part
    assert "│    dns    api, " in n1_part and n1_part.split("│    dns    api, ")[1].startswith(
        json.loads(h.md("inspect", "api").stdout)[0]["Id"][:12] + ", backend")
    assert "link" not in n1_part
    only = h.md("network", "diagram", "n1").stdout
    assert only == n1_part + "\n"


def test_dot_is_accepted_by_graphviz(topology) -> None:
    h = topology
    src = h.md("network", "diagram", "--format", "dot").stdout
    assert src.startswith("digraph minidock {") and src.count("subgraph cluster_") == 2
    veth, _addr, _mac = _kernel_iface(h, "web", "eth1")
    assert f'label="{veth} ⇄ eth1\\n10.77.0.3' in src
    assert 'style=dashed, label="link al"' in src
    assert '[shape=note, label="0.0.0.0:8080"]' in src
    if shutil.which("dot") is None:
        pytest.skip("graphviz is in APT_PKGS; `make setup` installs it")
    p = subprocess.run(["dot", "-Tsvg"], input=src, capture_output=True, text=True)
    assert p.returncode == 0 and not p.stderr, p.stderr
    svg = h.md("network", "diagram", "--format", "svg").stdout
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "web" in svg
