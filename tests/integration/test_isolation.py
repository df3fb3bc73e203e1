"""Isolation probes from inside a container (issue 6): what a process in a container can
see and do, checked from inside it (busybox) and from the root shell (nsenter).

Each probe names the guarantee; a probe that fails means a container can reach past its
walls. The anti-spoofing probes model a compromised container that crafts packets with
CAP_NET_RAW (which Docker's default set keeps): raw IPv4 with another container's or
the gateway's source, and ARP claiming their addresses, sent from the host's Python
inside the attacker's netns; the victim's netns is then inspected.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from tests.integration.test_net_bridge import _inspect, _run


def sh_in(host, args: list[str], script: str, check: bool = False) -> subprocess.CompletedProcess:
    return host.md("run", "--rm", *args, "busybox", "sh", "-c", script, check=check)


def out(host, script: str, *args: str) -> str:
    return sh_in(host, list(args) or ["--net", "none"], script).stdout


# -- processes, files, privileges ------------------------------------------------------
def test_proc_shows_only_own_processes(host):
    _run(host, "busybox", "sleep", "100")       # a neighbour that must stay invisible
    pids = out(host, "ls -d /proc/[0-9]* | cut -d/ -f3").split()
    assert pids and all(int(p) < 10 for p in pids), pids
    assert "1" in pids


PRIVILEGED = [
    ("mount", "mount -t tmpfs t /mnt"),
    ("bind_mount", "mount --bind /bin /mnt"),
    ("unshare_user", "unshare -U true"),
    ("unshare_user_net", "unshare -Un true"),
    ("unshare_net", "unshare -n true"),
    ("unshare_mount", "unshare -m true"),
    ("unshare_pid", "unshare -p -f true"),
    ("setns", "nsenter -t 1 -n true"),
    ("insmod", "insmod /bin/busybox"),
    ("rmmod", "rmmod dummy"),
    ("swapon", "swapon /dev/null"),
    ("pivot_root", "mkdir -p /old && pivot_root / /old"),
    ("sethostname", "hostname evil"),
    # sets the clock to "now" (harmless if it ever worked); busybox exits 0 on failure
    ("clock", "! (date -s \"$(date '+%Y-%m-%d %H:%M:%S')\" 2>&1 | grep -q 'set date')"),
    ("chroot_escape_mknod", "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda"),
]


@pytest.mark.parametrize("name, cmd", PRIVILEGED, ids=[n for n, _c in PRIVILEGED])
def test_privileged_operations_refused(host, name, cmd):
    r = sh_in(host, ["--net", "none"], f"{cmd} >/dev/null 2>&1 && echo ALLOWED || echo refused")
    assert r.stdout.strip() == "refused", (name, r.stdout, r.stderr)


def test_seccomp_default_and_unconfined(host):
    script = "grep -E '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null && echo U || echo noU"
    assert out(host, script).split() == ["Seccomp:", "2", "noU"]
    unconfined = out(host, script, "--net", "none", "--security-opt", "seccomp=unconfined")
    assert unconfined.split() == ["Seccomp:", "0", "U"]


def test_seccomp_keeps_ordinary_work(host):
    """Threads, fork, clone without namespace flags, personality queries still work."""
    script = ("(sleep 0; echo sub) & wait; echo x | sed s/x/y/; linux64 true && echo p64; "
              "ps -o pid | wc -l >/dev/null && echo ps")
    assert out(host, script).split() == ["sub", "y", "p64", "ps"]


def test_kernel_files_readonly_and_masked(host):
    script = ("for f in /proc/sysrq-trigger /proc/sys/kernel/hostname /sys/kernel/uevent_helper; do "
              "  (echo x > $f) 2>/dev/null && echo W || echo ro; done; "
              "touch /sys/x 2>/dev/null && echo W || echo ro; "
              "for f in /proc/kcore /proc/keys /proc/timer_list; do "
              "  echo $(head -c 64 $f 2>/dev/null | wc -c); done")
    assert out(host, script).split() == ["ro"] * 4 + ["0"] * 3


def test_capabilities_and_no_new_privs(host):
    cid = _run(host, "busybox", "sleep", "100")
    want = {"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb",
            "CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb",
            "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
    script = "grep -E '^(Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status"
    for text in (out(host, script), host.md("exec", cid, "sh", "-c", script).stdout,
                 host.md("exec", "-u", "nobody", cid, "sh", "-c", script).stdout):
        got = dict(line.split(":\t") for line in text.splitlines())
        if got.get("CapEff") == "0000000000000000":     # -u nobody: no effective caps
            got.update(CapEff=want["CapEff"], CapPrm=want["CapPrm"])
        assert got == want


def test_only_std_fds(host):
    cid = _run(host, "busybox", "sleep", "100")
    script = "ls /proc/$$/fd; true"   # sh stays (no exec of ls) and holds no pipe
    assert out(host, script).split() == ["0", "1", "2"]
    assert host.md("exec", cid, "sh", "-c", script).stdout.split() == ["0", "1", "2"]
    assert host.md("exec", cid, "ls", "/proc/1/fd").stdout.split() == ["0", "1", "2"]


# -- network -----------------------------------------------------------------------------
def test_no_net_admin(host):
    cid = _run(host, "busybox", "sleep", "100")
    gw = _inspect(host, cid)["NetworkSettings"]["Gateway"]
    script = (f"ip addr add 10.99.0.1/32 dev eth0 2>/dev/null && echo W || echo no; "
              f"ip route add 10.98.0.0/16 via {gw} 2>/dev/null && echo W || echo no; "
              f"ip link set eth0 down 2>/dev/null && echo W || echo no; "
              f"ip link add d0 type dummy 2>/dev/null && echo W || echo no; "
              f"sysctl -w net.ipv4.ip_forward=1 >/dev/null 2>&1 && echo W || echo no")
    assert host.md("exec", cid, "sh", "-c", script).stdout.split() == ["no"] * 5


def test_ipv6_off_and_no_router_advertisements(host):
    cid = _run(host, "busybox", "sleep", "100")
    script = ("cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6 /proc/sys/net/ipv6/conf/eth0/accept_ra; "
              "ip -6 addr show dev eth0 | grep -c inet6 || true")
    values = host.md("exec", cid, "sh", "-c", script).stdout.split()
    assert values[1] == "0"
    assert values[0] == "1" or values[2] == "0"


LISTENER = textwrap.dedent("""
    import socket, sys
    socks = []
    for addr in sys.argv[1:]:
        ip, port = addr.rsplit(":", 1)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, int(port)))
        s.listen(8)
        socks.append(s)
    print("ready", flush=True)
    import select
    while True:
        for s in select.select(socks, [], [])[0]:
            c, _ = s.accept()
            c.sendall(b"hello\\n")
            c.close()
""")


def start_listener(host, *addrs: str) -> subprocess.Popen:
    proc = subprocess.Popen(["nsenter", f"--net={host.netns}", sys.executable, "-c", LISTENER,
                             *addrs], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_host_loopback_services_unreachable(host):
    cid = _run(host, "busybox", "sleep", "100")
    gw = _inspect(host, cid)["NetworkSettings"]["Gateway"]
    listener = start_listener(host, "127.0.0.1:7001", f"{gw}:7002")
    try:
        def probe(ip: str, port: int) -> str:
            r = host.md("exec", cid, "sh", "-c", f"nc -w 2 {ip} {port} </dev/null", check=False)
            return r.stdout.strip()
        assert probe(gw, 7002) == "hello"          # the method works: a gateway listener
        assert probe(gw, 7001) == ""               # the host's 127.0.0.1 via the gateway
        assert probe("127.0.0.1", 7001) == ""      # the container's own loopback
        rl = host.sh(f"cat /proc/sys/net/ipv4/conf/all/route_localnet").stdout.strip()
        assert rl == "0"
    finally:
        stop(listener)


def test_other_network_unreachable(host):
    host.md("network", "create", "n1")
    host.md("network", "create", "n2")
    a = _run(host, "--net", "n1", "busybox", "sleep", "100")
    b = _run(host, "--net", "n1", "busybox", "sleep", "100")
    c = _run(host, "--net", "n2", "busybox", "sleep", "100")
    ip = {k: _inspect(host, k)["NetworkSettings"]["Networks"][n]["IPAddress"]
          for k, n in ((b, "n1"), (c, "n2"))}
    ping = "ping -c 1 -W 1 {} >/dev/null 2>&1 && echo reach || echo blocked"
    assert host.md("exec", a, "sh", "-c", ping.format(ip[b])).stdout.strip() == "reach"
    assert host.md("exec", a, "sh", "-c", ping.format(ip[c])).stdout.strip() == "blocked"


# -- anti-spoofing ------------------------------------------------------------------------
RECEIVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9999))
    s.settimeout(5)
    print("ready", flush=True)
    got = []
    try:
        while True:
            data, (src, _port) = s.recvfrom(100)
            got.append([src, data.decode()])
            if data == b"end":
                break
    except socket.timeout:
        pass
    print(__import__("json").dumps(got), flush=True)
""")

SENDER = textwrap.dedent("""
    import socket, struct, sys
    src, dst, *spoofs = sys.argv[1:]

    def csum(b):
        if len(b) % 2:
            b += b"\\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xffff)
        return ~(s + (s >> 16)) & 0xffff

    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for fake in spoofs:
        payload = ("spoof " + fake).encode()
        udp = struct.pack("!HHHH", 4444, 9999, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(fake), socket.inet_aton(dst))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        raw.sendto(ip + udp, (dst, 0))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"legit", (dst, 9999))
    u.sendto(b"end", (dst, 9999))
""")

ARP = textwrap.dedent("""
    import socket, struct, sys
    ifname, my_mac, target_ip, *claims = sys.argv[1:]
    mac = bytes.fromhex(my_mac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    for claim in claims:
        sender_ip, sender_mac = claim.split("@")
        smac = bytes.fromhex(sender_mac.replace(":", ""))
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, smac,
                          socket.inet_aton(sender_ip), b"\\0" * 6, socket.inet_aton(target_ip))
        s.send(b"\\xff" * 6 + smac + b"\\x08\\x06" + arp)
""")


def _pyin(host, pid: int, code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", code, *args],
                            stdout=subprocess.PIPE, text=True, **kw)


def _three(host):
    ids = [_run(host, "busybox", "sleep", "100") for _ in range(3)]
    docs = [_inspect(host, i) for i in ids]
    return [(d["State"]["Pid"], d["NetworkSettings"]["IPAddress"],
             d["NetworkSettings"]["MacAddress"]) for d in docs], docs[0]["NetworkSettings"]["Gateway"]


def test_spoofed_ipv4_source_does_not_reach_victim(host):
    (a, b, c), gw = _three(host)
    receiver = _pyin(host, b[0], RECEIVER)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        sender = _pyin(host, a[0], SENDER, a[1], b[1], c[1], gw, "10.99.99.99")
        sender.wait(timeout=10)
        got = json.loads(receiver.stdout.readline())
    finally:
        receiver.kill()
        receiver.wait()
    assert [a[1], "legit"] in got                     # the method works
    assert not [g for g in got if g[1].startswith("spoof")], got


def _neigh(host, pid: int, ip: str) -> str:
    return host.sh(f"nsenter -t {pid} -n ip neigh show {ip}").stdout


def test_spoofed_arp_does_not_reach_victim(host):
    (a, b, c), gw = _three(host)
    claims = [f"{c[1]}@{a[2]}", f"{gw}@{a[2]}", f"{a[1]}@{a[2]}", f"{c[1]}@{c[2]}"]
    sender = _pyin(host, a[0], ARP, "eth0", a[2], b[1], *claims)
    sender.wait(timeout=10)
    time.sleep(0.2)
    assert a[2] in _neigh(host, b[0], a[1])             # the honest claim arrived
    assert a[2] not in _neigh(host, b[0], c[1])         # C's address, A's MAC
    assert a[2] not in _neigh(host, b[0], gw)           # the gateway, A's MAC
    assert c[2] not in _neigh(host, b[0], c[1])         # C's identity, sent from A's port
    assert a[2] not in host.sh(f"ip neigh show {gw}").stdout


def test_spoofed_address_added_with_net_admin_cannot_ping(host):
    """A compromised container that got NET_ADMIN takes C's address: nothing reaches B."""
    (a, b, c), _gw = _three(host)
    host.sh(f"nsenter -t {a[0]} -n ip addr add {c[1]}/32 dev eth0")
    ping = "nsenter -t {} -n busybox ping -c 1 -W 1 {}"
    r = host.sh(ping.format(a[0], f"-I {c[1]} {b[1]}"), check=False)
    assert r.returncode != 0
    assert host.sh(ping.format(c[0], b[1])).returncode == 0     # C itself still reaches B
    host.md("rm", "-f", *host.md("ps", "-q").stdout.split())
    # the kernel frees A's netns (and so the veths) ~2 s later: a route cached for the
    # foreign address holds a device reference until the next garbage collection
    for _ in range(100):
        if not host.sh("ip -o link show type veth").stdout.strip():
            break
        time.sleep(0.1)


def test_antispoof_rules_not_in_iptables_and_removed(host):
    cid = _run(host, "busybox", "sleep", "100")
    veths = host.sh("ip -o link show type veth").stdout
    name = veths.split(":")[1].strip().split("@")[0]
    nft = host.sh("nft list table bridge minidock").stdout
    assert name in nft
    assert name not in host.sh("iptables-save").stdout
    host.md("rm", "-f", cid)
    assert name not in host.sh("nft list table bridge minidock", check=False).stdout
