"""The overlay driver across three test hosts and a three-member etcd cluster.

Checked with other tools: `etcdctl` for the store, `bridge fdb` / `ip neigh` in the
network's namespace, `ping` and `nslookup` inside containers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.cluster import TTL, UNDERLAY_GW, Cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster():
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root")
    if shutil.which("etcd") is None:
        pytest.skip("etcd not installed (Debian etcd-server, in the Makefile's APT_PKGS)")
    c = Cluster(3, 3)
    try:
        for h in c.hosts:
            h.load_busybox()
        yield c
        c.restart_members()
        for h in c.hosts:
            ids = h.md("ps", "-aq", check=False).stdout.split()
            if ids:
                h.md("rm", "-f", *ids, check=False)
        for h in c.hosts[:1]:
            for name, (_drv, scope) in nets(h).items():
                if scope == "global":   # a dead host's endpoints may still hold it a while
                    wait_for(lambda: h.md("network", "rm", name, check=False).returncode == 0,
                             timeout=90, interval=2, what=f"network rm {name}")
        for h in c.hosts:   # the agent leaves once idle, taking the namespaces along
            h.stop_template()
            wait_for(lambda: not h.pids(), timeout=60, what=f"{h.name} agent to exit")
            h.md("network", "prune", "-f", check=False)
            leaks = [ln for ln in h.leaks() if " ul0@" not in ln]   # the underlay link
            assert not leaks, f"leaked on {h.name}: {leaks}"
            ns_dir = os.path.join(h.exec_root, "overlay", "netns")
            assert not os.listdir(ns_dir) if os.path.isdir(ns_dir) else True
        assert not c.leaks(), c.leaks()
    finally:
        c.destroy()


def nets(h) -> dict[str, tuple[str, str]]:
    """`network ls` as {name: (driver, scope)}."""
    rows = h.md("network", "ls", check=False).stdout.splitlines()[1:]
    return {r.split()[1]: (r.split()[2], r.split()[3]) for r in rows if len(r.split()) == 4}


def ov_netns(h, name: str = "ov") -> str:
    nid = h.md("network", "inspect", "-f", "{{.Id}}", name).stdout.strip()
    return os.path.join(h.exec_root, "overlay", "netns", f"1-{nid[:10]}")


def fdb_neigh(h, name: str = "ov") -> tuple[list[str], list[str]]:
    path = ov_netns(h, name)
    if not os.path.exists(path):
        return [], []
    fdb = h.sh(f"nsenter --net={path} bridge fdb show dev vxlan0", check=False).stdout
    neigh = h.sh(f"nsenter --net={path} ip neigh show dev vxlan0", check=False).stdout
    return ([ln for ln in fdb.splitlines() if " dst " in ln],
            [ln for ln in neigh.splitlines() if "PERMANENT" in ln])


def ip_of(h, ctr: str, net: str = "ov") -> str:
    return h.md("inspect", "-f", f"{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}",
                ctr).stdout.strip()


def run_many(c: Cluster, per_host: int) -> dict[str, tuple]:
    """`per_host` containers started in parallel on every host; name -> (host, ip)."""
    jobs = [(h, f"c{i}-{j}") for i, h in enumerate(c.hosts, 1) for j in range(per_host)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        list(pool.map(lambda hj: hj[0].md("run", "-d", "--name", hj[1], "--net", "ov",
                                          "busybox", "sleep", "600", timeout=240), jobs))
    return {name: (h, ip_of(h, name)) for h, name in jobs}


def test_network_created_on_one_host_appears_on_all(cluster):
    h1, h2, h3 = cluster.hosts
    h1.md("network", "create", "-d", "overlay", "ov")
    for h in (h2, h3):
        assert nets(h)["ov"] == ("overlay", "global")
    doc = json.loads(h3.md("network", "inspect", "ov").stdout)[0]
    assert doc["Scope"] == "global" and doc["Driver"] == "overlay"
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert doc["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "256"
    h2.md("network", "create", "-d", "overlay", "--subnet", "10.200.0.0/24", "ov2")
    doc2 = json.loads(h1.md("network", "inspect", "ov2").stdout)[0]
    assert doc2["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "257"
    dup = h3.md("network", "create", "-d", "overlay", "ov", check=False)
    assert dup.returncode == 125 and "network with name ov already exists" in dup.stderr
    over = h3.md("network", "create", "-d", "overlay", "--subnet", "10.200.0.0/16", "ov3",
                 check=False)
    assert over.returncode == 125 and "overlaps" in over.stderr
    keys = cluster.keys()
    assert sum(k.startswith("/minidock/network/") for k in keys) == 2
    h3.md("network", "rm", "ov2")
    assert "ov2" not in h1.md("network", "ls").stdout


def test_overlay_refused_without_cluster_store(host):
    proc = host.md("network", "create", "-d", "overlay", "ov", check=False)
    assert proc.returncode == 125
    assert "cluster-store" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_unreachable_store_fails_fast_and_changes_nothing(host):
    host.write_daemon_json(json.dumps({"cluster-store": "etcd://192.0.2.99:2379",
                                       "cluster-advertise": "192.0.2.10"}))
    t0 = time.monotonic()
    proc = host.md("network", "create", "-d", "overlay", "ov", check=False)
    assert time.monotonic() - t0 < 30   # 5 s budget on an idle machine; never a hang
    assert proc.returncode == 125
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "etcd://192.0.2.99:2379" in lines[0] and "unreachable" in lines[0]
    assert "ov" not in host.md("network", "ls", check=False).stdout


def _cross_host(c: Cluster, per_host: int) -> None:
    h1 = c.hosts[0]
    h1.md("network", "create", "-d", "overlay", "ov")
    ctrs = run_many(c, per_host)
    ips = [ip for _h, ip in ctrs.values()]
    assert len(set(ips)) == len(ips) and all(ip.startswith("10.0.0.") for ip in ips)
    # each host: eth0 MTU 1450 on the overlay, eth1 on the gateway bridge
    for i, h in enumerate(c.hosts, 1):
        out = h.md("exec", f"c{i}-0", "ip", "-o", "link", "show", "eth0").stdout
        assert "mtu 1450" in out
    # every host pings one container of every other host, by address and by name
    for i, h in enumerate(c.hosts, 1):
        for j, _other in enumerate(c.hosts, 1):
            if i == j:
                continue
            target = f"c{j}-{per_host - 1}"
            h.md("exec", f"c{i}-0", "ping", "-c1", "-W5", ctrs[target][1], timeout=60)
            h.md("exec", f"c{i}-0", "ping", "-c1", "-W5", target, timeout=60)
        h.md("exec", f"c{i}-0", "ping", "-c1", "-W5", UNDERLAY_GW, timeout=60)
    # forwarding entries: one FDB and one neighbour entry per remote endpoint
    fdb, neigh = fdb_neigh(h1)
    assert len(fdb) == len(neigh) == 2 * per_host
    # inspect lists the containers of this host
    doc = json.loads(h1.md("network", "inspect", "ov").stdout)[0]
    assert sorted(v["Name"] for v in doc["Containers"].values()) == \
        sorted(f"c1-{j}" for j in range(per_host))
    # rm everywhere, then network rm from another host: nothing left
    for h in c.hosts:
        h.md("rm", "-f", *[n for n, (hh, _ip) in ctrs.items() if hh is h], timeout=240)
    c.hosts[2].md("network", "rm", "ov")
    wait_for(lambda: not c.keys(), timeout=30, what="etcd to be empty")


def test_cross_host_five_per_host(cluster):
    _cross_host(cluster, 5)


@pytest.mark.long
def test_cross_host_twenty_per_host(cluster):
    _cross_host(cluster, 20)


def test_network_rm_refused_while_endpoint_on_another_host(cluster):
    h1, h2, _h3 = cluster.hosts
    h1.md("network", "create", "-d", "overlay", "ov")
    h2.md("run", "-d", "--name", "ctrb", "--net", "ov", "busybox", "sleep", "600")
    proc = h1.md("network", "rm", "ov", check=False)
    assert proc.returncode != 0 and "has active endpoints" in proc.stderr
    path = ov_netns(h2)
    h2.md("rm", "-f", "ctrb")
    h1.md("network", "rm", "ov")
    wait_for(lambda: not os.path.exists(path), timeout=60, what="namespace removed on host 2")


def test_etcd_member_killed_changes_nothing(cluster):
    h1, h2, _h3 = cluster.hosts
    h1.md("network", "create", "-d", "overlay", "ov")
    h1.md("run", "-d", "--name", "ctra", "--net", "ov", "busybox", "sleep", "600")
    cluster.members[0].kill()
    h2.md("network", "create", "-d", "overlay", "ov2")
    h2.md("run", "-d", "--name", "ctrb", "--net", "ov", "busybox", "sleep", "600")
    h2.md("exec", "ctrb", "ping", "-c1", "-W5", "ctra", timeout=60)
    time.sleep(TTL + 2)     # leases are kept alive through the other members
    h2.md("exec", "ctrb", "ping", "-c1", "-W5", "ctra", timeout=60)
    h2.md("network", "rm", "ov2")


def test_killed_host_is_forgotten_within_ttl(cluster):
    h1, h2, _h3 = cluster.hosts
    h1.md("network", "create", "-d", "overlay", "--subnet", "10.10.0.0/24", "ov")
    h1.md("run", "-d", "--name", "ctra", "--net", "ov", "busybox", "sleep", "600")
    h2.md("run", "-d", "--name", "ctrb", "--net", "ov", "busybox", "sleep", "600")
    b_ip = ip_of(h2, "ctrb")
    wait_for(lambda: len(fdb_neigh(h1)[0]) == 1, timeout=30, what="peer on host 1")
    cluster.kill_host(h2)
    t0 = time.monotonic()
    wait_for(lambda: fdb_neigh(h1) == ([], []), timeout=TTL * 6, what="host 2 forgotten")
    assert time.monotonic() - t0 < TTL * 6
    assert not [k for k in cluster.keys() if b_ip in k]
    # its address comes back
    h1.md("run", "-d", "--name", "ctra2", "--net", "ov", "--ip", b_ip, "busybox", "sleep", "600")


def test_agent_killed_is_restarted_and_resyncs(cluster):
    h1, h2, _h3 = cluster.hosts
    h1.md("network", "create", "-d", "overlay", "ov")
    h1.md("run", "-d", "--name", "ctra", "--net", "ov", "busybox", "sleep", "600")
    h2.md("run", "-d", "--name", "ctrb", "--net", "ov", "busybox", "sleep", "600")
    wait_for(lambda: len(fdb_neigh(h1)[0]) == 1, timeout=30, what="peer on host 1")
    pid = int(open(os.path.join(h1.exec_root, "overlay", "pid")).read())
    os.kill(pid, signal.SIGKILL)
    h1.md("network", "ls")     # the next command restarts it
    new = int(open(os.path.join(h1.exec_root, "overlay", "pid")).read())
    assert new != pid
    h2.md("run", "-d", "--name", "ctrb2", "--net", "ov", "busybox", "sleep", "600")
    wait_for(lambda: len(fdb_neigh(h1)[0]) == 2, timeout=30, what="second peer on host 1")
    fdb, neigh = fdb_neigh(h1)
    assert len(set(fdb)) == len(fdb) == 2 and len(set(neigh)) == len(neigh) == 2
    h1.md("exec", "ctra", "ping", "-c1", "-W5", "ctrb2", timeout=60)


def test_etcd_down_errors_and_leaves_nothing_half_made(cluster):
    h1, h2, _h3 = cluster.hosts
    h1.md("network", "create", "-d", "overlay", "ov")
    h1.md("run", "-d", "--name", "ctrc", "--net", "ov", "busybox", "sleep", "600")
    h1.md("run", "-d", "--name", "ctrd", "--net", "ov", "busybox", "sleep", "600")
    for m in cluster.members:
        m.kill()
    h1.md("rm", "-f", "ctrc", timeout=120)      # local teardown completes; etcd later
    ls = h1.md("network", "ls", timeout=120)    # global networks as last seen, a warning
    assert "ov" in ls.stdout and "unreachable" in ls.stderr
    proc = h2.md("network", "rm", "ov", check=False, timeout=120)
    assert proc.returncode != 0 and "unreachable" in proc.stderr
    proc = h1.md("network", "create", "-d", "overlay", "ov2", check=False, timeout=120)
    assert proc.returncode == 125 and "unreachable" in proc.stderr
    proc = h2.md("run", "-d", "--name", "ctrb", "--net", "ov", "busybox", "sleep", "600",
                 check=False, timeout=120)
    assert proc.returncode != 0 and "unreachable" in proc.stderr
    assert not h2.md("ps", "-q").stdout.strip()
    cluster.restart_members()
    assert "ov2" not in h1.md("network", "ls").stdout
    h2.md("rm", "-f", "ctrb", check=False)
    assert "ov" in h1.md("network", "ls").stdout
    h2.md("run", "-d", "--name", "ctrb", "--net", "ov", "busybox", "sleep", "600")
    # ctrc's claim, left by an rm while etcd was down, is swept by host 1's agent
    wait_for(lambda: len([k for k in cluster.keys() if "/ip/" in k]) == 3, timeout=90,
             what="only the gateway's, ctrd's and ctrb's addresses claimed")
    assert ip_of(h2, "ctrb") in ("10.0.0.2", "10.0.0.4")
    assert len([k for k in cluster.keys() if "/endpoint/" in k]) == 2


def test_published_port_of_overlay_container_via_gateway_bridge(cluster):
    h1 = cluster.hosts[0]
    h1.md("network", "create", "-d", "overlay", "ov")
    h1.md("run", "-d", "--name", "web", "--net", "ov", "-p", "8080:80", "busybox",
          "httpd", "-f", "-p", "80", "-h", "/etc")
    eth1 = h1.md("exec", "web", "ip", "-o", "-4", "addr", "show", "eth1").stdout
    assert "172.18." in eth1
    route = h1.md("exec", "web", "ip", "route").stdout
    assert "default via 172.18.0.1 dev eth1" in route
    from tests.integration.cluster import _ns
    out = wait_for(lambda: _ns(cluster.underlay, f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' "
                                                 f"http://{h1.addr}:8080/passwd",
                               check=False).stdout.strip() == "200",
                   timeout=30, what="published port from the underlay")
    assert out


def test_concurrent_creates_on_three_hosts(cluster):
    """Same name at once: one wins. Different names at once: different pools and VNIs."""
    hosts = cluster.hosts
    with ThreadPoolExecutor(max_workers=3) as pool:
        same = list(pool.map(lambda h: h.md("network", "create", "-d", "overlay", "dup",
                                            check=False), hosts))
    assert sorted(p.returncode for p in same) == [0, 125, 125]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda ih: ih[1].md("network", "create", "-d", "overlay", f"n{ih[0]}"),
                      enumerate(hosts)))
    docs = [json.loads(hosts[0].md("network", "inspect", f"n{i}").stdout)[0] for i in range(3)]
    subnets = {d["IPAM"]["Config"][0]["Subnet"] for d in docs}
    vnis = {d["Options"]["com.docker.network.driver.overlay.vxlanid_list"] for d in docs}
    assert len(subnets) == 3 and len(vnis) == 3
    for i in range(3):
        hosts[i].md("network", "rm", f"n{i}")
