"""net/kernel/netlink.py and net/kernel/netns.py on the real kernel, inside throwaway netns, with
what they made cross-checked by pyroute2 and by `ip -j` (independent code)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def two_netns():
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root")
    names = ["mdn-" + uuid.uuid4().hex[:10] for _ in range(2)]
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    try:
        yield [f"/run/netns/{n}" for n in names]
    finally:
        for n in names:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def _ip_j(path: str, *args: str) -> list:
    out = subprocess.run(["nsenter", f"--net={path}", "ip", "-j", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def test_bridge_veth_addr_route(two_netns):
    from minidock.net.kernel.netlink import Netlink
    from minidock.net.kernel.netns import open_netns
    host_ns, ctr_ns = two_netns
    hfd, cfd = open_netns(host_ns), open_netns(ctr_ns)
    try:
        with Netlink(netns_fd=hfd) as nl, Netlink(netns_fd=cfd) as inner:
            nl.bridge_add("mdbr0", mac="02:42:01:02:03:04", mtu=1400)
            br = nl.link_get("mdbr0")
            nl.addr_add(br.index, "172.30.0.1", 16)
            nl.link_set(br.index, up=True)
            nl.veth_add("veth0abcdef", "eth0", mtu=1400, master=br.index, up=True,
                        peer_netns_fd=cfd, peer_mac="02:42:ac:1e:00:02")
            nl.brport_set_hairpin(nl.link_get("veth0abcdef").index, True)
            eth0 = inner.link_get("eth0")
            inner.addr_add(eth0.index, "172.30.0.2", 16)
            inner.link_set(eth0.index, up=True)
            inner.route_add("0.0.0.0/0", "172.30.0.1")
            with pytest.raises(OSError) as err:
                nl.bridge_add("mdbr0")
            assert err.value.errno == 17
            assert nl.link_get("nosuch0") is None
            assert [r.dst for r in nl.route_list()] == ["172.30.0.0/16"]
            routes = inner.route_list()
            assert ("0.0.0.0/0", "172.30.0.1") in [(r.dst, r.gateway) for r in routes]
    finally:
        os.close(hfd)
        os.close(cfd)
    # cross-check with ip -j
    br = _ip_j(host_ns, "-d", "link", "show", "mdbr0")[0]
    assert br["address"] == "02:42:01:02:03:04" and br["mtu"] == 1400
    assert br["linkinfo"]["info_kind"] == "bridge"
    veth = _ip_j(host_ns, "-d", "link", "show", "veth0abcdef")[0]
    assert veth["master"] == "mdbr0" and veth["linkinfo"]["info_slave_data"]["hairpin"] is True
    eth0 = _ip_j(ctr_ns, "addr", "show", "eth0")[0]
    assert eth0["address"] == "02:42:ac:1e:00:02"
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"] \
        == [("172.30.0.2", 16)]
    # cross-check with pyroute2 (the project's dependency for exactly this)
    from pyroute2 import NetNS
    ns = NetNS(os.path.basename(ctr_ns))
    try:
        (link,) = ns.link_lookup(ifname="eth0")
        assert ns.get_links(link)[0].get_attr("IFLA_MTU") == 1400
        gws = [r.get_attr("RTA_GATEWAY") for r in ns.get_default_routes()]
        assert gws == ["172.30.0.1"]
    finally:
        ns.close()
    # reachability through the pair
    ping = subprocess.run(["nsenter", f"--net={ctr_ns}", "busybox", "ping", "-c1", "-W1", "172.30.0.1"],
                          capture_output=True)
    assert ping.returncode == 0, ping.stderr


def test_netns_key_enter_and_unbind(two_netns, tmp_path):
    from minidock.net.kernel import netns
    host_ns, _ = two_netns
    proc = subprocess.Popen(["nsenter", f"--net={host_ns}", "sh", "-c", "echo ready; exec sleep 30"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"  # now inside host_ns
        key = str(tmp_path / "netns" / "abc")
        netns.bind_key(proc.pid, key)
        netns.bind_key(proc.pid, key)  # idempotent
        assert netns.is_key(key)
        assert os.stat(key).st_ino == os.stat(host_ns).st_ino
        before = os.readlink("/proc/self/ns/net")
        with pytest.raises(RuntimeError):
            with netns.in_netns(key):
                assert os.readlink("/proc/thread-self/ns/net") != before
                raise RuntimeError("boom")
        assert os.readlink("/proc/thread-self/ns/net") == before
        netns.unbind_key(key)
        netns.unbind_key(key)  # idempotent
        assert not os.path.exists(key)
    finally:
        proc.kill()
        proc.wait()
