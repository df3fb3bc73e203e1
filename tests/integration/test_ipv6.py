"""Dual-stack networking end to end in a throwaway test host (issue 13's done-when),
checked with `ip -j`, `nsenter`, `ip6tables-save`, busybox nc/ping/nslookup, and
compared with Docker 20.10's own outputs (tests/reference_data/docker-ipv6)."""

from __future__ import annotations

import json
import os
import time

import pytest

from minidock import trace

from tests.integration.test_net_bridge import ClientNetns, normalise_save
from tests.reference import REF6

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/net/if_inet6"),
                                reason="kernel without IPv6")

DAEMON6 = '{"ipv6": true, "fixed-cidr-v6": "2001:db8:1::/64"}'
SERVER = "while true; do echo hi | nc -l -p 80; done"


def _run(host, *args: str) -> str:
    return host.md("run", "-d", *args).stdout.strip()


def _inspect(host, ref: str) -> dict:
    return json.loads(host.md("inspect", ref).stdout)[0]


def _in(host, cid: str, cmd: str, check: bool = True):
    pid = _inspect(host, cid)["State"]["Pid"]
    return host.sh(f"nsenter -t {pid} -n {cmd}", check=check)


def _addrs6(host, cid: str, dev: str) -> list[tuple[str, int, str]]:
    out = json.loads(_in(host, cid, f"ip -j -6 addr show {dev}").stdout or "[]")
    return [(a["local"], a["prefixlen"], a.get("scope", "")) for i in out for a in i["addr_info"]]


def _retry(fn, tries: int = 30):
    out = ""
    for _ in range(tries):
        out = fn()
        if "hi" in out:
            return out
        time.sleep(0.3)
    return out


def reference6(name: str, bridges: dict[str, str] | None = None) -> list[str]:
    text = (REF6 / name).read_text().replace("DOCKER", "MINIDOCK").replace("docker0", "minidock0")
    for theirs, ours in (bridges or {}).items():
        text = text.replace(theirs, ours)
    return normalise_save(text)


@pytest.fixture
def host6(host):
    host.write_daemon_json(DAEMON6)
    return host


def test_dual_stack_container_on_default_bridge(host6):
    cid = _run(host6, "busybox", "sleep", "100")
    doc = _inspect(host6, cid)
    ns = doc["NetworkSettings"]
    want = json.loads((REF6 / "inspect-web.json").read_text())[0]["NetworkSettings"]
    for key in ("GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPv6Gateway",
                "LinkLocalIPv6Address", "MacAddress"):
        assert ns[key] == want[key] == ns["Networks"]["bridge"].get(key, want[key]), key
    assert ("2001:db8:1::242:ac11:2", 64, "global") in _addrs6(host6, cid, "eth0")
    routes = json.loads(_in(host6, cid, "ip -j -6 route show default").stdout)
    assert routes[0]["gateway"] == "2001:db8:1::1"
    bridge = json.loads(host6.sh("ip -j -6 addr show minidock0").stdout)[0]["addr_info"]
    assert {("2001:db8:1::1", 64), ("fe80::1", 64)} <= {(a["local"], a["prefixlen"]) for a in bridge}
    hosts = open(doc["HostsPath"]).read()
    assert hosts.endswith(f"172.17.0.2\t{cid[:12]}\n2001:db8:1::242:ac11:2\t{cid[:12]}\n")
    assert host6.sh("cat /proc/sys/net/ipv6/conf/all/forwarding").stdout.strip() == "1"
    port = json.loads(host6.sh("ip -j link show master minidock0").stdout)[0]["ifname"]
    assert host6.sh(f"cat /proc/sys/net/ipv6/conf/{port}/accept_ra").stdout.strip() == "0"
    assert host6.sh("cat /proc/sys/net/ipv6/conf/minidock0/accept_ra").stdout.strip() == "0"
    net = json.loads(host6.md("network", "inspect", "bridge").stdout)[0]
    assert net["EnableIPv6"] is True
    assert net["IPAM"]["Config"][1] == {"Subnet": "2001:db8:1::/64"}
    assert net["Containers"][cid]["IPv6Address"] == "2001:db8:1::242:ac11:2/64"


def test_ip6tables_match_docker_reference(host6):
    _run(host6, "-p", "8080:80", "--expose", "80", "busybox", "sh", "-c", SERVER)
    assert normalise_save(host6.sh("ip6tables-save").stdout) == \
        reference6("docker-bridge-ipv6.ip6tables")
    assert normalise_save(host6.sh("iptables-save").stdout) == \
        reference6("docker-bridge-ipv6.iptables")


def test_user_networks_ip6tables_match_docker_reference(host6):
    _run(host6, "-p", "8080:80", "--expose", "80", "busybox", "sh", "-c", SERVER)
    n1 = host6.md("network", "create", "--ipv6", "--subnet", "172.30.0.0/16", "--subnet",
                  "2001:db8:2::/64", "v6net").stdout.strip()
    n2 = host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:3::/64", "--subnet",
                  "172.31.0.0/16", "--gateway", "2001:db8:3::100", "v6net2").stdout.strip()
    n3 = host6.md("network", "create", "v4only").stdout.strip()
    _run(host6, "--network", "v6net2", "-p", "9090:90", "busybox", "sleep", "100")
    names = {"br-ddd38fad4e8b": f"br-{n1[:12]}", "br-a79ceeea5241": f"br-{n2[:12]}",
             "br-3ea15990cdbd": f"br-{n3[:12]}"}
    assert normalise_save(host6.sh("ip6tables-save").stdout) == \
        reference6("docker-user-networks-ipv6.ip6tables", names)
    doc = json.loads(host6.md("network", "inspect", "v6net2").stdout)[0]
    want = json.loads((REF6 / "network-inspect-v6net2.json").read_text())[0]
    assert (doc["EnableIPv6"], doc["IPAM"]["Config"]) == (want["EnableIPv6"], want["IPAM"]["Config"])


def test_two_dual_stack_containers_by_address_and_name(host6):
    host6.md("network", "create", "--ipv6", "--subnet", "172.30.0.0/16", "--subnet",
             "2001:db8:2::/64", "v6net")
    a = _run(host6, "--network", "v6net", "--name", "ca", "busybox", "sleep", "100")
    b = _run(host6, "--network", "v6net", "--name", "cb", "busybox", "sleep", "100")
    assert _inspect(host6, b)["NetworkSettings"]["Networks"]["v6net"]["GlobalIPv6Address"] == \
        "2001:db8:2::3"
    host6.md("exec", a, "ping", "-6", "-c1", "-W3", "2001:db8:2::3")
    out = host6.md("exec", a, "nslookup", "-type=AAAA", "cb", "127.0.0.11").stdout
    assert "2001:db8:2::3" in out
    out = host6.md("exec", a, "ping", "-6", "-c1", "-W3", "cb").stdout
    assert "2001:db8:2::3" in out
    host6.md("exec", b, "ping", "-6", "-c1", "-W3", "ca")


def test_published_port_on_ipv6_loopback_and_host_address(host6):
    client = ClientNetns(host6)
    try:
        host6.sh("ip -6 addr add 2001:db8:ff::10/64 dev mdh0 nodad")
        client.sh("ip -6 addr add 2001:db8:ff::1/64 dev mdc0 nodad")
        _run(host6, "-p", "8080:80", "busybox", "sh", "-c", SERVER)
        nc = "timeout 5 busybox nc {} 8080 </dev/null"
        assert "hi" in _retry(lambda: host6.sh(nc.format("::1"), check=False).stdout)
        assert "hi" in _retry(lambda: client.sh(nc.format("2001:db8:ff::10"),
                                                check=False).stdout)
    finally:
        client.remove()


def test_two_ipv6_networks_are_isolated(host6):
    host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "v6a")
    host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:3::/64", "v6b")
    a = _run(host6, "--network", "v6a", "busybox", "sleep", "100")
    b = _run(host6, "--network", "v6b", "busybox", "sleep", "100")
    host6.md("exec", a, "ping", "-6", "-c1", "-W3", "2001:db8:2::1")      # own gateway: yes
    got = host6.md("exec", a, "ping", "-6", "-c1", "-W2", "2001:db8:3::2", check=False)
    assert got.returncode != 0
    got = host6.md("exec", b, "ping", "-6", "-c1", "-W2", "2001:db8:2::2", check=False)
    assert got.returncode != 0


def test_ipv4_only_network_has_no_ipv6_but_loopback(host6):
    host6.md("network", "create", "v4only")
    cid = _run(host6, "--network", "v4only", "busybox", "sleep", "100")
    assert _addrs6(host6, cid, "eth0") == []
    assert _addrs6(host6, cid, "lo") == [("::1", 128, "host")]
    ns = _inspect(host6, cid)["NetworkSettings"]["Networks"]["v4only"]
    assert (ns["GlobalIPv6Address"], ns["IPv6Gateway"]) == ("", "")
    port = json.loads(host6.sh("ip -j link show type veth").stdout)[0]["ifname"]
    assert host6.sh(f"cat /proc/sys/net/ipv6/conf/{port}/accept_ra").stdout.strip() == "0"


def test_default_gateway_moves_default_routes(host):
    host.write_daemon_json('{"ipv6": true, "fixed-cidr-v6": "2001:db8:1::/64", '
                           '"default-gateway": "172.17.0.254", '
                           '"default-gateway-v6": "2001:db8:1::254"}')
    cid = _run(host, "busybox", "sleep", "100")
    r4 = json.loads(_in(host, cid, "ip -j route show default").stdout)
    r6 = json.loads(_in(host, cid, "ip -j -6 route show default").stdout)
    assert (r4[0]["gateway"], r6[0]["gateway"]) == ("172.17.0.254", "2001:db8:1::254")
    ns = _inspect(host, cid)["NetworkSettings"]
    assert (ns["Gateway"], ns["IPv6Gateway"]) == ("172.17.0.254", "2001:db8:1::254")
    cfg = json.loads(host.md("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"]
    assert cfg[0]["AuxiliaryAddresses"] == {"DefaultGatewayIPv4": "172.17.0.254"}
    assert cfg[1]["AuxiliaryAddresses"] == {"DefaultGatewayIPv6": "2001:db8:1::254"}


def _kernel_state(host) -> tuple[str, list[str], list[str]]:
    return (host.sh("ip -o link show type bridge").stdout,
            normalise_save(host.sh("ip6tables-save").stdout),
            normalise_save(host.sh("iptables-save").stdout))


@pytest.mark.parametrize("daemon, message", [
    ('{"ipv6": true}', "IPv6 is enabled for the default bridge, but no subnet is configured. "
                       "Specify an IPv6 subnet using --fixed-cidr-v6"),
    ('{"ipv6": true, "fixed-cidr-v6": "2001:db8:zz::/64"}', "invalid CIDR address: 2001:db8:zz::/64"),
    ('{"ipv6": true, "fixed-cidr-v6": "2001:db8:1::/64", "default-gateway-v6": "2001:db8:9::1"}',
     "auxiliary address: (DefaultGatewayIPv6:2001:db8:9::1) must belong to the master pool: "
     "2001:db8:1::/64"),
    ('{"default-gateway": "10.9.9.9"}',
     "auxiliary address: (DefaultGatewayIPv4:10.9.9.9) must belong to the master pool: "
     "172.17.0.0/16"),
])
def test_bad_ipv6_daemon_options_refused(host, daemon, message):
    before = _kernel_state(host)
    host.write_daemon_json(daemon)
    got = host.md("run", "-d", "busybox", "sleep", "100", check=False)
    assert got.returncode == 125
    assert message in got.stderr and "Traceback" not in got.stderr
    if "10.9.9.9" not in daemon:        # found at load: nothing at all was done
        assert host.md("ps", "-aq").stdout == ""
        assert _kernel_state(host) == before
    else:                               # found when the default bridge is planned
        assert "minidock0" not in host.sh("ip -o link show type bridge").stdout


@pytest.mark.parametrize("args, message", [
    (["--ipv6"], "could not find an available, non-overlapping IPv6 address pool among the "
                 "defaults to assign to the network"),
    (["--ipv6", "--subnet", "2001:db8:zz::/64"],
     "Invalid subnet 2001:db8:zz::/64 : invalid CIDR address: 2001:db8:zz::/64"),
    (["--ipv6", "--subnet", "2001:db8:4::/64", "--gateway", "2001:db8:5::1"],
     "no matching subnet for gateway 2001:db8:5::1"),
    (["--ipv6", "--subnet", "2001:db8:7::/64", "--subnet", "2001:db8:8::/64"],
     "bridge driver doesn't support multiple subnets"),
    (["--ipv6", "--subnet", "2001:db8:2:0:1::/80"], "Pool overlaps with other one on this address space"),
])
def test_bad_ipv6_network_options_refused(host6, args, message):
    host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "first")
    before = (_kernel_state(host6), host6.md("network", "ls").stdout)
    got = host6.md("network", "create", *args, "bad", check=False)
    assert got.returncode != 0 and message in got.stderr
    assert "Traceback" not in got.stderr
    assert (_kernel_state(host6), host6.md("network", "ls").stdout) == before


def test_setup_queue_is_traced_in_the_articles_order(host6):
    got = host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "traced",
                   env={"MINIDOCK_TRACE": "1"})
    create = [n for n in trace.parse(got.stderr) if n.name == "network_create"]
    assert create, got.stderr
    steps = [names[-1] for names, _ in trace.walk(create)]
    queue = ["setupBridgeIPv4", "setupBridgeIPv6", "setupIPv6Forwarding",
             "setupLoopbackAddressing", "setupIPTables", "setupGatewayIPv4",
             "setupGatewayIPv6", "setupNetworkIsolation", "setupBridgeNetFiltering"]
    assert [s for s in steps if s in queue] == queue


def test_spoofed_ipv6_source_cannot_reach_neighbour(host6):
    """A container that got NET_ADMIN takes another IPv6 address: nothing it sends from
    that address (nor neighbour advertisements for it) passes its bridge port."""
    host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "v6net")
    a = _run(host6, "--network", "v6net", "busybox", "sleep", "100")
    b = _run(host6, "--network", "v6net", "busybox", "sleep", "100")
    pa = _inspect(host6, a)["State"]["Pid"]
    ping = "nsenter -t {} -n busybox ping -6 -c 1 -W 2 {}"
    assert host6.sh(ping.format(pa, "2001:db8:2::3")).returncode == 0
    host6.sh(f"nsenter -t {pa} -n ip -6 addr add 2001:db8:2::99/64 dev eth0 nodad")
    got = host6.sh(ping.format(pa, "-I 2001:db8:2::99 2001:db8:2::3"), check=False)
    assert got.returncode != 0
    pb = _inspect(host6, b)["State"]["Pid"]
    neigh = host6.sh(f"nsenter -t {pb} -n ip -6 neigh show 2001:db8:2::99").stdout
    assert "lladdr" not in neigh
    host6.md("rm", "-f", a, b)
    for _ in range(100):
        if not host6.sh("ip -o link show type veth").stdout.strip():
            break
        time.sleep(0.1)


def test_link_with_icc_false_as_docker(host):
    """Docker 20.10: the link's hosts entry gets an IPv6 line, its env vars and its
    ACCEPT pair stay IPv4 (linked containers cannot talk over IPv6 with icc=false)."""
    host.write_daemon_json((REF6 / "daemon-icc-false-gw.json").read_text())  # Docker's, as is
    web = _run(host, "--name", "web", "--expose", "80", "busybox", "sleep", "100")
    client = _run(host, "--name", "client", "--link", "web:db", "busybox", "sleep", "100")
    assert normalise_save(host.sh("ip6tables-save").stdout) == \
        reference6("docker-link-icc-false-ipv6.ip6tables")
    assert normalise_save(host.sh("iptables-save").stdout) == \
        reference6("docker-link-icc-false-ipv6.iptables")
    ref = (REF6 / "link-icc-false.txt").read_text()
    env = sorted(ln for ln in host.md("exec", client, "env").stdout.splitlines()
                 if ln.startswith("DB_"))
    assert env == [ln for ln in ref.split("## client hosts")[0].splitlines()
                   if ln.startswith("DB_")]
    hosts = host.md("exec", client, "cat", "/etc/hosts").stdout
    want = ref.split("## client hosts\n")[1].split("## ")[0]
    want = want.replace("72cb0732e6df", web[:12]).replace("b702cf203aeb", client[:12])
    assert hosts == want


def test_connect_and_disconnect_ipv6_network(host6):
    host6.md("network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "v6net")
    peer = _run(host6, "--network", "v6net", "--name", "peer", "busybox", "sleep", "100")
    cid = _run(host6, "--name", "late", "busybox", "sleep", "100")
    host6.md("network", "connect", "v6net", "late")
    ns = _inspect(host6, cid)["NetworkSettings"]["Networks"]["v6net"]
    assert (ns["GlobalIPv6Address"], ns["GlobalIPv6PrefixLen"], ns["IPv6Gateway"]) == \
        ("2001:db8:2::3", 64, "2001:db8:2::1")
    assert ("2001:db8:2::3", 64, "global") in _addrs6(host6, cid, "eth1")
    # the file itself: connect replaces it (os.replace), the container's bind mount
    # keeps showing the old copy
    hosts_path = _inspect(host6, cid)["HostsPath"]
    assert f"2001:db8:2::3\t{cid[:12]}\n" in open(hosts_path).read()
    out = host6.md("exec", peer, "nslookup", "-type=AAAA", "late", "127.0.0.11").stdout
    assert "2001:db8:2::3" in out
    host6.md("network", "disconnect", "v6net", "late")
    assert "2001:db8:2::3" not in open(hosts_path).read()
    got = host6.md("exec", peer, "nslookup", "-type=AAAA", "late", "127.0.0.11", check=False)
    assert "2001:db8:2::3" not in got.stdout
    host6.md("network", "connect", "v6net", "late")          # the address is free again
    ns = _inspect(host6, cid)["NetworkSettings"]["Networks"]["v6net"]
    assert ns["GlobalIPv6Address"] == "2001:db8:2::3"
