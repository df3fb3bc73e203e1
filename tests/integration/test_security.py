"""Security (issue 14): Docker's seccomp allow-list, capabilities on demand, sysctls,
--privileged, --read-only, on the real kernel in a throwaway test host.

The seccomp checks use a static probe (probe/probe.c, built with gcc at test time and
imported as an image beside the host's static busybox): it makes raw syscalls, so no
libc substitutes another call, and prints the errno the kernel (or the filter) gave.
Results are read back with tools other than minidock where there is one (`nsenter`
into the container's netns, `sysctl` on the test host).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_hostile_images import _base
from tests.integration.test_images import layer_tar, member

PROBE_SRC = Path(__file__).parent / "probe" / "probe.c"


@pytest.fixture(scope="module")
def probe_binary(tmp_path_factory) -> bytes:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed (make apt)")
    out = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(PROBE_SRC)], check=True)
    return out.read_bytes()


@pytest.fixture
def probe_host(host, probe_binary, tmp_path):
    """The test host with `probe:latest`: busybox plus /probe."""
    tar = tmp_path / "probe.tar"
    tar.write_bytes(layer_tar(_base() + [member("probe", data=probe_binary, mode=0o755)]))
    host.md("image", "import", "-c", 'CMD ["/probe"]', str(tar), "probe:latest")
    return host


def probe(host, *flags: str, calls: str = "nosys getpid vsock inet keyctl userns mntns") -> dict:
    r = host.md("run", "--rm", "--net", "none", *flags, "probe", "/probe", *calls.split())
    return dict(line.split("=") for line in r.stdout.split())


def inspect(host, ref: str) -> dict:
    return json.loads(host.md("inspect", ref).stdout)[0]


def test_default_profile_verdicts(probe_host):
    got = probe(probe_host)
    assert got == {"nosys": "EPERM", "getpid": "OK", "vsock": "EPERM", "inet": "OK",
                   "keyctl": "EPERM", "userns": "EPERM", "mntns": "EPERM"}
    # unconfined: the kernel answers (no such syscall: ENOSYS)
    assert probe(probe_host, "--security-opt", "seccomp=unconfined", calls="nosys") == \
        {"nosys": "ENOSYS"}


def test_sys_admin_opens_unshare(probe_host):
    """As Docker's profile says: with SYS_ADMIN, unshare and clone's namespace flags."""
    got = probe(probe_host, "--cap-add", "SYS_ADMIN", calls="mntns nosys keyctl")
    assert got == {"mntns": "OK", "nosys": "EPERM", "keyctl": "EPERM"}


def test_exec_gets_the_same_filter_and_caps(probe_host):
    host = probe_host
    cid = host.md("run", "-d", "--net", "none", "--cap-add", "NET_ADMIN", "probe",
                  "sleep", "100").stdout.strip()
    out = host.md("exec", cid, "/probe", "nosys", "mntns").stdout.split()
    assert out == ["nosys=EPERM", "mntns=EPERM"]
    caps = host.md("exec", cid, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    assert int(caps, 16) == 0xA80425FB | 1 << 12                # + CAP_NET_ADMIN


def test_custom_profile_file(probe_host, tmp_path):
    host = probe_host
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile, indent=2))
    got = probe(host, "--security-opt", f"seccomp={path}", calls="getpid nosys keyctl")
    assert got == {"getpid": "EACCES", "nosys": "ENOSYS", "keyctl": "OK"}
    cid = host.md("create", "--security-opt", f"seccomp={path}", "--security-opt",
                  "no-new-privileges", "probe").stdout.strip()
    opts = inspect(host, cid)["HostConfig"]["SecurityOpt"]
    assert [json.loads(opts[0].split("=", 1)[1]), opts[1]] == [profile, "no-new-privileges"]


def test_net_admin_lets_ip_addr_add_work(host):
    script = "ip addr add 10.99.0.1/32 dev lo && echo added; exec sleep 100"
    denied = host.md("run", "--rm", "--net", "none", "busybox", "sh", "-c",
                     "ip addr add 10.99.0.1/32 dev lo 2>/dev/null && echo added || echo denied")
    assert denied.stdout.strip() == "denied"
    cid = host.md("run", "-d", "--net", "none", "--cap-add", "net_admin", "busybox", "sh",
                  "-c", script).stdout.strip()
    pid = host.md("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
    host.sh(f"for i in $(seq 100); do nsenter --net=/proc/{pid}/ns/net ip -4 addr show lo "
            f"| grep -q 10.99.0.1 && exit 0; sleep 0.1; done; exit 1")
    hc = inspect(host, cid)["HostConfig"]
    assert (hc["CapAdd"], hc["CapDrop"]) == (["CAP_NET_ADMIN"], None)


def test_cap_drop_net_raw_stops_ping(host):
    ping = "ping -c 1 -W 2 127.0.0.1 >/dev/null 2>&1 && echo pong || echo nope"
    assert host.md("run", "--rm", "--net", "none", "busybox", "sh", "-c", ping).stdout.strip() == "pong"
    r = host.md("run", "--rm", "--net", "none", "--cap-drop", "NET_RAW", "busybox", "sh", "-c",
                ping + "; grep CapEff /proc/self/status")
    assert r.stdout.split()[0] == "nope"
    assert int(r.stdout.split()[-1], 16) == 0xA80425FB & ~(1 << 13)


def test_sysctls_inside_not_on_the_host(host):
    # minidock turns the host's ip_forward on when it first sets up networking (as
    # dockerd does at its start): after that, turn it off and see that it stays off
    host.md("run", "--rm", "--net", "none", "busybox", "true")
    host.sh("sysctl -qw net.ipv4.ip_forward=0")
    before = host.sh("sysctl -n net.ipv4.ip_forward kernel.shmmax").stdout.split()
    cid = host.md("run", "-d", "--net", "none", "--sysctl", "net.ipv4.ip_forward=1",
                  "--sysctl", "kernel.shmmax=123456789", "busybox", "sh", "-c",
                  "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; exec sleep 100"
                  ).stdout.strip()
    pid = host.md("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
    seen = host.sh(f"nsenter --net=/proc/{pid}/ns/net --ipc=/proc/{pid}/ns/ipc "
                   "sysctl -n net.ipv4.ip_forward kernel.shmmax").stdout.split()
    assert seen == ["1", "123456789"]
    assert host.sh("sysctl -n net.ipv4.ip_forward kernel.shmmax").stdout.split() == before
    assert before[0] == "0"
    assert inspect(host, cid)["HostConfig"]["Sysctls"] == {
        "net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}


def test_privileged(host):
    bounding = host.sh("grep CapBnd /proc/self/status").stdout.split()[1]
    script = ("grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; "
              "grep -c -E ' /proc/(keys|kcore|sys) ' /proc/mounts; "
              "touch /sys/kernel/x 2>&1 | grep -q Read-only && echo sys-ro || echo sys-rw; "
              "ls /dev")
    out = host.md("run", "--rm", "--net", "none", "--privileged", "busybox", "sh", "-c",
                  script).stdout.split()
    assert out[:7] == ["CapEff:", bounding, "CapBnd:", bounding, "Seccomp:", "0", "0"]
    assert out[7] == "sys-rw"
    host_devs = set(host.sh("ls /dev").stdout.split())
    assert {"null", "zero"} <= set(out[8:])
    assert (host_devs & {"kmsg", "loop-control", "fuse", "mem"}) <= set(out[8:])
    cid = host.md("create", "--privileged", "busybox").stdout.strip()
    hc = inspect(host, cid)["HostConfig"]
    assert (hc["Privileged"], hc["MaskedPaths"], hc["ReadonlyPaths"]) == (True, None, None)
    assert hc["SecurityOpt"] == ["label=disable"]
    cid = host.md("run", "-d", "--net", "none", "--privileged", "busybox", "sleep", "100"
                  ).stdout.strip()
    out = host.md("exec", cid, "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status").stdout
    assert out.split() == ["CapEff:", bounding, "Seccomp:", "0"]


def test_read_only_rootfs(host):
    script = ("for f in /x /etc/x /etc/hosts /dev/shm/x /dev/x; do "
              "  (echo hi >> $f) 2>/dev/null && echo W || echo ro; done")
    out = host.md("run", "--rm", "--net", "none", "--read-only", "busybox", "sh", "-c",
                  script).stdout.split()
    assert out == ["ro", "ro", "ro", "W", "W"]
    cid = host.md("create", "--read-only", "busybox").stdout.strip()
    hc = inspect(host, cid)["HostConfig"]
    assert (hc["ReadonlyRootfs"], hc["Privileged"], hc["CapAdd"]) == (True, False, None)
    assert "Sysctls" not in hc


def test_net_sysctl_refused_in_a_joined_host_netns(host):
    """container:X where X runs with --network host: the sysctl would change the host's
    namespace, so start refuses it (runc's message), and the container stays created."""
    donor = host.md("run", "-d", "--network", "host", "busybox", "sleep", "100").stdout.strip()
    r = host.md("run", "--rm", "--network", f"container:{donor}", "--sysctl",
                "net.ipv4.ip_forward=1", "busybox", "true", check=False)
    assert r.returncode == 125
    assert r.stderr.strip().endswith(
        'sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace')
    assert host.md("ps", "-aq").stdout.split() == [donor[:12]]
