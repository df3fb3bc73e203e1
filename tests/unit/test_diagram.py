"""network diagram renderers (pure): tree layout and Graphviz source."""

from __future__ import annotations

from minidock.runtime import diagram

MODEL = {"networks": [
    {"name": "bridge", "id": "a" * 64, "driver": "bridge", "device": "minidock0",
     "subnet": "172.17.0.0/16", "gateway": "172.17.0.1", "internal": False, "user": False,
     "containers": [
         {"name": "db", "id": "d" * 64, "ip": "172.17.0.2", "prefixlen": 16,
          "mac": "02:42:ac:11:00:02", "host_veth": "veth1111111", "ifname": "eth0",
          "ports": [], "links": [], "dns": []},
         {"name": "web", "id": "e" * 64, "ip": "172.17.0.3", "prefixlen": 16,
          "mac": "02:42:ac:11:00:03", "host_veth": "veth2222222", "ifname": "eth0",
          "ports": ["0.0.0.0:8080->80/tcp"], "links": [("db", "al")], "dns": []}]},
    {"name": "n1", "id": "b" * 64, "driver": "bridge", "device": "br-bbbbbbbbbbbb",
     "subnet": "10.77.0.0/24", "gateway": "10.77.0.1", "internal": True, "user": True,
     "containers": [
         {"name": "web", "id": "e" * 64, "ip": "10.77.0.3", "prefixlen": 24,
          "mac": "02:42:0a:4d:00:03", "host_veth": "veth3333333", "ifname": "eth1",
          "ports": [], "links": [], "dns": ["web", "eeeeeeeeeeee"]}]}]}


def test_text_tree() -> None:
    assert diagram.text(MODEL).splitlines() == [
        "bridge  bridge minidock0  172.17.0.0/16  gateway 172.17.0.1",
        "├─ db   veth1111111 ⇄ eth0  172.17.0.2/16  02:42:ac:11:00:02",
        "└─ web  veth2222222 ⇄ eth0  172.17.0.3/16  02:42:ac:11:00:03",
        "     ports  0.0.0.0:8080->80/tcp",
        "     link   db as al  (web's /etc/hosts: al db)",
        "n1  bridge br-bbbbbbbbbbbb  10.77.0.0/24  gateway 10.77.0.1  internal",
        "└─ web  veth3333333 ⇄ eth1  10.77.0.3/24  02:42:0a:4d:00:03",
        "     dns    web, eeeeeeeeeeee",
    ]


def test_dot_has_clusters_interfaces_links_and_ports_once_per_container() -> None:
    src = diagram.dot(MODEL)
    assert src.count("subgraph cluster_") == 2
    assert src.count('ctr_eeeeeeeeeeee [shape=box, label="web"];') == 1
    assert 'net_aaaaaaaaaaaa -> ctr_eeeeeeeeeeee [dir=both, label="veth2222222 ⇄ eth0\\n172.17.0.3"];' in src
    assert 'ctr_eeeeeeeeeeee -> ctr_dddddddddddd [style=dashed, label="link al"];' in src
    assert 'ctr_eeeeeeeeeeee_port0 -> ctr_eeeeeeeeeeee [label="80/tcp"];' in src
    assert diagram.text({"networks": []}) == ""
