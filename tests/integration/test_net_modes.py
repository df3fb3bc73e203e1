"""Network modes, user-defined networks, isolation, connect/disconnect, and refusals
that must change nothing (compared with `ip -o link` and `iptables-save`)."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.test_net_bridge import _inspect, _run, _state, normalise_save


def _ifaces(host, pid: int) -> list[str]:
    return [i["ifname"] for i in json.loads(host.sh(f"nsenter -t {pid} -n ip -j link").stdout)]


def test_none_mode_only_lo(host):
    cid = _run(host, "--net", "none", "busybox", "sleep", "100")
    doc = _inspect(host, cid)
    assert _ifaces(host, doc["State"]["Pid"]) == ["lo"]
    out = host.md("exec", cid, "ip", "-o", "link").stdout
    assert "lo" in out and "UP" in out.split("\n")[0]
    assert list(doc["NetworkSettings"]["Networks"]) == ["none"]


def test_host_mode_shares_host_netns(host):
    cid = _run(host, "--net", "host", "busybox", "sleep", "100")
    doc = _inspect(host, cid)
    out = host.md("exec", cid, "ip", "-o", "link").stdout
    host_links = host.sh("ip -o link").stdout
    assert sorted(re.findall(r"^\d+: (\S+):", out, re.M)) == \
        sorted(re.findall(r"^\d+: (\S+):", host_links, re.M))
    assert host.md("exec", cid, "hostname").stdout.strip() == host.sh("hostname").stdout.strip()
    assert doc["NetworkSettings"]["SandboxKey"].endswith("/netns/default")


def test_container_mode_shares_netns_and_files(host):
    donor = _run(host, "busybox", "sleep", "100")
    cid = _run(host, "--net", f"container:{donor}", "busybox", "sleep", "100")
    a, b = _inspect(host, donor), _inspect(host, cid)
    ns_a = host.sh(f"readlink /proc/{a['State']['Pid']}/ns/net").stdout
    ns_b = host.sh(f"readlink /proc/{b['State']['Pid']}/ns/net").stdout
    assert ns_a == ns_b
    for key in ("HostsPath", "ResolvConfPath", "HostnamePath"):
        assert a[key] == b[key]
    assert host.md("exec", cid, "hostname").stdout.strip() == donor[:12]


@pytest.mark.parametrize("flags, message", [
    (["-p", "80:80"], "conflicting options: port publishing and the container type network mode"),
    (["--dns", "1.1.1.1"], "conflicting options: dns and the network mode"),
    (["--add-host", "a:1.2.3.4"], "conflicting options: custom host-to-IP mapping and the network mode"),
    (["-h", "foo"], "conflicting options: hostname and the network mode"),
])
def test_container_mode_conflicts(host, flags, message):
    donor = _run(host, "busybox", "sleep", "100")
    before = _state(host)
    proc = host.md("run", "-d", "--net", f"container:{donor}", *flags, "busybox", "true",
                   check=False)
    assert proc.returncode == 125 and message in proc.stderr
    assert _state(host) == before


def test_container_mode_non_running_donor(host):
    donor = host.md("create", "busybox", "true").stdout.strip()
    proc = host.md("run", "-d", "--net", f"container:{donor}", "busybox", "true", check=False)
    assert proc.returncode != 0
    assert f"cannot join network of a non running container: {donor}" in proc.stderr


def test_user_network_and_isolation(host):
    host.md("network", "create", "red")
    host.md("network", "create", "blue")
    r1 = _run(host, "--net", "red", "busybox", "sleep", "100")
    r2 = _run(host, "--net", "red", "busybox", "sleep", "100")
    b1 = _run(host, "--net", "blue", "busybox", "sleep", "100")
    ip = {c: _inspect(host, c)["NetworkSettings"]["Networks"] for c in (r1, r2, b1)}
    assert ip[r1]["red"]["IPAddress"] == "172.18.0.2"
    assert ip[r2]["red"]["IPAddress"] == "172.18.0.3"
    assert ip[b1]["blue"]["IPAddress"] == "172.19.0.2"
    host.md("exec", r1, "ping", "-c1", "-W1", "172.18.0.3")
    assert host.md("exec", r1, "ping", "-c1", "-W1", "172.19.0.2", check=False).returncode != 0
    assert host.md("exec", b1, "ping", "-c1", "-W1", "172.18.0.2", check=False).returncode != 0
    resolv = host.md("exec", r1, "cat", "/etc/resolv.conf").stdout
    assert "nameserver 127.0.0.11" in resolv
    inspect = json.loads(host.md("network", "inspect", "red").stdout)[0]
    assert set(inspect["Containers"]) == {r1, r2}
    proc = host.md("network", "rm", "red", check=False)
    assert proc.returncode != 0 and "has active endpoints" in proc.stderr


def test_user_network_fixed_ip_and_errors(host):
    host.md("network", "create", "--subnet", "10.77.0.0/24", "n77")
    cid = _run(host, "--net", "n77", "--ip", "10.77.0.50", "busybox", "sleep", "100")
    assert _inspect(host, cid)["NetworkSettings"]["Networks"]["n77"]["IPAddress"] == "10.77.0.50"
    host.md("network", "create", "auto")
    before = _state(host)
    cases = [
        (["--net", "auto", "--ip", "172.18.0.9"], "user specified IP address is supported only "
         "when connecting to networks with user configured subnets"),
        (["--ip", "172.17.0.9"], "user specified IP address is supported on user defined "
         "networks only"),
        (["--net", "nosuch"], "network nosuch not found"),
        (["--net", "n77", "--ip", "10.77.0.50"], "Address already in use"),
    ]
    for flags, message in cases:
        proc = host.md("run", "-d", *flags, "busybox", "sleep", "1", check=False)
        assert proc.returncode == 125, flags
        assert message in proc.stderr, (flags, proc.stderr)
        assert _state(host) == before, flags


def test_network_create_errors_change_nothing(host):
    host.md("network", "ls")
    before = _state(host)
    cases = [
        (["bridge"], "operation is not permitted on predefined bridge network "),
        (["--subnet", "10.1.0.0/16", "--gateway", "10.2.0.1", "x1"], "no matching subnet for gateway"),
        (["--subnet", "nonsense", "x2"], "invalid CIDR address: nonsense"),
        (["-d", "weird", "x3"], 'plugin "weird" not found'),
    ]
    for args, message in cases:
        proc = host.md("network", "create", *args, check=False)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
        assert _state(host) == before
    proc = host.md("network", "rm", "host", check=False)
    assert "host is a pre-defined network and cannot be removed" in proc.stderr


def test_network_ls_and_prune(host):
    out = host.md("network", "ls").stdout.splitlines()
    assert out[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    assert [ln.split()[1:] for ln in out[1:]] == [
        ["bridge", "bridge", "local"], ["host", "host", "local"], ["none", "null", "local"]]
    nid = host.md("network", "create", "tmpnet").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", nid)
    assert host.sh(f"ip -o link show br-{nid[:12]}").stdout
    assert host.md("network", "prune", "-f").stdout == "Deleted Networks:\ntmpnet\n"
    assert host.sh(f"ip -o link show br-{nid[:12]}", check=False).returncode != 0


def test_connect_disconnect_running(host):
    host.md("network", "create", "extra")
    cid = _run(host, "busybox", "sleep", "100")
    host.md("network", "connect", "extra", cid)
    pid = _inspect(host, cid)["State"]["Pid"]
    assert _ifaces(host, pid) == ["lo", "eth0", "eth1"]
    nets = _inspect(host, cid)["NetworkSettings"]["Networks"]
    assert nets["extra"]["IPAddress"] == "172.18.0.2"
    proc = host.md("network", "connect", "extra", cid, check=False)
    assert "already exists in network extra" in proc.stderr
    host.md("network", "disconnect", "extra", cid)
    assert _ifaces(host, pid) == ["lo", "eth0"]
    proc = host.md("network", "disconnect", "extra", cid, check=False)
    assert f"container {cid} is not connected to network extra" in proc.stderr


def test_bridge_is_idempotent_and_reused(host):
    host.md("network", "ls")
    save = normalise_save(host.sh("iptables-save").stdout)
    mac = json.loads(host.sh("ip -j link show minidock0").stdout)[0]["address"]
    host.sh(f"rm {host.exec_root}/network-init")
    host.md("network", "ls")
    assert normalise_save(host.sh("iptables-save").stdout) == save
    assert json.loads(host.sh("ip -j link show minidock0").stdout)[0]["address"] == mac


def test_daemon_bip_and_existing_bridge_name(host):
    host.write_daemon_json('{"bip": "192.168.100.1/24", "mtu": 1400}')
    cid = _run(host, "busybox", "sleep", "100")
    ns = _inspect(host, cid)["NetworkSettings"]
    assert (ns["IPAddress"], ns["Gateway"], ns["IPPrefixLen"]) == ("192.168.100.2", "192.168.100.1", 24)
    assert "mtu 1400" in host.md("exec", cid, "ip", "link", "show", "eth0").stdout
    host.md("rm", "-f", cid)
    host.write_daemon_json('{"bridge": "nosuchbr0"}')
    proc = host.md("network", "ls", check=False)
    assert "bridge device with non default name nosuchbr0 must be created manually" in proc.stderr
    host.write_daemon_json('{}')


def test_resolution_files_publish_all_and_ip_netns_link(host):
    cid = _run(host, "--name", "web1", "--add-host", "foo:1.2.3.4", "--dns", "9.9.9.9",
               "-P", "--expose", "90", "busybox", "sleep", "100")
    hosts = host.md("exec", cid, "cat", "/etc/hosts").stdout.splitlines()
    assert hosts[-2:] == ["1.2.3.4\tfoo", f"172.17.0.2\t{cid[:12]}"]
    assert "nameserver 9.9.9.9" in host.md("exec", cid, "cat", "/etc/resolv.conf").stdout
    assert host.md("exec", cid, "hostname").stdout.strip() == cid[:12]
    ports = _inspect(host, cid)["NetworkSettings"]["Ports"]
    assert ports["90/tcp"][0]["HostIp"] == "0.0.0.0" and int(ports["90/tcp"][0]["HostPort"]) > 0
    key = _inspect(host, cid)["NetworkSettings"]["SandboxKey"]
    import os
    from minidock.net.sandbox import root_tag
    link = f"/run/netns/web1@{root_tag(host.root, host.exec_root)}"   # a non-default root
    assert os.readlink(link) == key
    host.md("rm", "-f", cid)
    assert not os.path.lexists(link)


def test_daemon_icc_false_and_no_userland_proxy(host):
    host.write_daemon_json('{"icc": false, "userland-proxy": false}')
    a = _run(host, "busybox", "sleep", "100")
    b = _run(host, "busybox", "sleep", "100")
    save = host.sh("iptables-save").stdout
    assert "-A FORWARD -i minidock0 -o minidock0 -j DROP" in save
    assert "-A POSTROUTING -o minidock0 -m addrtype --src-type LOCAL -j MASQUERADE" in save
    assert host.sh("cat /proc/sys/net/ipv4/conf/minidock0/route_localnet").stdout.strip() == "1"
    ip_b = _inspect(host, b)["NetworkSettings"]["IPAddress"]
    assert host.md("exec", a, "ping", "-c1", "-W1", ip_b, check=False).returncode != 0


def test_stopped_container_keeps_entries(host):
    cid = host.md("run", "busybox", "true").stdout.strip() or \
        host.md("ps", "-aq").stdout.split()[0]
    ns = _inspect(host, cid)["NetworkSettings"]
    assert ns["Networks"]["bridge"]["NetworkID"]
    assert ns["Networks"]["bridge"]["IPAddress"] == "" and ns["IPAddress"] == ""
    assert ns["SandboxKey"] == ""
