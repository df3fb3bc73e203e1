"""Bad input (issue 6): every refusal is one line naming the bad value, a non-zero exit,
no traceback, and no change at all.

One test host per worker holds some state (a running container with a published port, a
user network with a container at a fixed address, a host listener on a port); each case
snapshots containers, networks, images, iptables (without counters), nftables, links,
container dirs and the store's record counts before and after, and they must be equal.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TestHost

HOST_PORT = 39090   # held by a listener on the test host (not by minidock)

# (id, argv, needle in stderr); argv may contain {envfile_nul}, {envfile_big}, {junk}
CASES = [
    # -- run: ports ------------------------------------------------------------------
    ("p_word", ["run", "--rm", "-p", "abc", "busybox", "true"], "abc"),
    ("p_proto", ["run", "--rm", "-p", "80/xyz", "busybox", "true"], "xyz"),
    ("p_zero", ["run", "--rm", "-p", "0", "busybox", "true"], "0"),
    ("p_big", ["run", "--rm", "-p", "65536:80", "busybox", "true"], "65536"),
    ("p_cport_big", ["run", "--rm", "-p", "8081:70000", "busybox", "true"], "70000"),
    ("p_negative", ["run", "--rm", "-p=-1:80", "busybox", "true"], "-1"),
    ("p_reversed", ["run", "--rm", "-p", "8090-8080:80", "busybox", "true"], "8090-8080"),
    ("p_unequal", ["run", "--rm", "-p", "8000-8002:80-81", "busybox", "true"], "80-81"),
    ("p_bad_ip", ["run", "--rm", "-p", "300.1.1.1:8082:80", "busybox", "true"], "300.1.1.1"),
    ("p_too_many", ["run", "--rm", "-p", "1:2:3:4", "busybox", "true"], "1:2"),
    ("p_empty", ["run", "--rm", "-p", "", "busybox", "true"], "containerPort"),
    ("p_taken_minidock", ["run", "--rm", "-p", "8080:80", "busybox", "true"], "8080"),
    ("p_taken_host", ["run", "--rm", "-p", f"{HOST_PORT}:80", "busybox", "true"],
     str(HOST_PORT)),
    ("expose_word", ["run", "--rm", "--expose", "abc", "busybox", "true"], "abc"),
    # -- run: names, env, workdir, users, image ----------------------------------------
    ("name_space", ["run", "--rm", "--name", "bad name", "busybox", "true"], "bad name"),
    ("name_one_char", ["run", "--rm", "--name", "a", "busybox", "true"], "(a)"),
    ("name_slash", ["run", "--rm", "--name", "../x", "busybox", "true"], "../x"),
    ("name_taken", ["run", "--rm", "--name", "web", "busybox", "true"], "web"),
    ("env_empty_key", ["run", "--rm", "-e", "=v", "busybox", "true"], "=v"),
    ("env_file_missing", ["run", "--rm", "--env-file", "/nonexistent/env", "busybox", "true"],
     "/nonexistent/env"),
    ("env_nul", ["run", "--rm", "--env-file", "{envfile_nul}", "busybox", "true"], "NULVAR"),
    ("env_megabytes", ["run", "--rm", "--env-file", "{envfile_big}", "busybox", "true"],
     "BIGVAR"),
    ("workdir_fd", ["run", "--rm", "-w", "/proc/self/fd/5", "busybox", "true"],
     "/proc/self/fd/5"),
    ("workdir_relative", ["run", "--rm", "-w", "relative/dir", "busybox", "true"],
     "relative/dir"),
    ("user_unknown", ["run", "--rm", "-u", "nosuchuser", "busybox", "true"], "nosuchuser"),
    ("group_unknown", ["run", "--rm", "-u", "0:nosuchgroup", "busybox", "true"],
     "nosuchgroup"),
    ("image_missing", ["run", "--rm", "nosuchimage", "true"], "nosuchimage"),
    ("image_uppercase", ["run", "--rm", "BusyBox", "true"], "BusyBox"),
    ("cmd_missing", ["run", "--rm", "busybox", "/no/such/cmd"], "/no/such/cmd"),
    ("security_opt", ["run", "--rm", "--security-opt", "bogus", "busybox", "true"], "bogus"),
    # -- run: seccomp, capabilities, sysctls (issue 14) ------------------------------------
    ("seccomp_missing", ["run", "--rm", "--security-opt", "seccomp=/nonexistent/p.json",
                         "busybox", "true"], "/nonexistent/p.json"),
    ("seccomp_junk", ["run", "--rm", "--security-opt", "seccomp={junk}", "busybox", "true"],
     "Decoding seccomp profile failed"),
    ("seccomp_action", ["run", "--rm", "--security-opt", "seccomp={badprofile}", "busybox",
                        "true"], "SCMP_ACT_SOMETIMES"),
    ("seccomp_arch", ["run", "--rm", "--security-opt", "seccomp={badarch}", "busybox",
                      "true"], "SCMP_ARCH_VAX"),
    ("cap_add_unknown", ["run", "--rm", "--cap-add", "nope", "busybox", "true"], "CAP_NOPE"),
    ("cap_drop_unknown", ["run", "--rm", "--cap-drop", "CAP_X", "busybox", "true"], "CAP_X"),
    ("sysctl_not_allowed", ["run", "--rm", "--sysctl", "kernel.hostname=x", "busybox", "true"],
     "kernel.hostname=x"),
    ("sysctl_no_value", ["run", "--rm", "--sysctl", "net.ipv4.ip_forward", "busybox", "true"],
     "net.ipv4.ip_forward"),
    ("sysctl_path", ["run", "--rm", "--sysctl", "net./../kernel/core_pattern=|/x", "busybox",
                     "true"], "core_pattern"),
    ("sysctl_host_net", ["run", "--rm", "--network", "host", "--sysctl",
                         "net.ipv4.ip_forward=1", "busybox", "true"], "hosts network namespace"),
    ("sysctl_unknown_key", ["run", "--rm", "--sysctl", "net.ipv4.no_such_key=1", "busybox",
                            "true"], "net.ipv4.no_such_key"),
    # -- run: network flags --------------------------------------------------------------
    ("net_missing", ["run", "--rm", "--network", "nosuchnet", "busybox", "true"], "nosuchnet"),
    ("net_container_missing", ["run", "--rm", "--network", "container:nosuch", "busybox",
                               "true"], "nosuch"),
    ("ip_malformed", ["run", "--rm", "--network", "n1", "--ip", "10.50.0.300", "busybox",
                      "true"], "10.50.0.300"),
    ("ip_outside", ["run", "--rm", "--network", "n1", "--ip", "10.51.0.5", "busybox", "true"],
     "10.51.0.5"),
    ("ip_in_use", ["run", "--rm", "--network", "n1", "--ip", "10.50.0.10", "busybox", "true"],
     "10.50.0.10"),
    ("ip_gateway", ["run", "--rm", "--network", "n1", "--ip", "10.50.0.1", "busybox", "true"],
     "10.50.0.1"),
    ("ip_broadcast", ["run", "--rm", "--network", "n1", "--ip", "10.50.0.255", "busybox",
                      "true"], "10.50.0.255"),
    ("ip_on_bridge", ["run", "--rm", "--ip", "172.17.0.50", "busybox", "true"],
     "user specified IP address is supported on user defined networks only"),
    ("mac_bad", ["run", "--rm", "--mac-address", "zz:zz", "busybox", "true"], "zz:zz"),
    ("add_host_bad", ["run", "--rm", "--add-host", "nocolon", "busybox", "true"], "nocolon"),
    ("add_host_ip", ["run", "--rm", "--add-host", "a:999.1.1.1", "busybox", "true"],
     "999.1.1.1"),
    ("dns_bad", ["run", "--rm", "--dns", "notanip", "busybox", "true"], "notanip"),
    ("link_missing", ["run", "--rm", "--link", "nosuch:al", "busybox", "true"], "nosuch"),
    ("link_format", ["run", "--rm", "--link", "a:b:c", "busybox", "true"], "a:b:c"),
    ("alias_on_bridge", ["run", "--rm", "--network-alias", "x", "busybox", "true"],
     "network-scoped alias is supported only for containers in user defined networks"),
    # -- run: volumes and mounts (issue 15) ------------------------------------------------
    ("v_relative", ["run", "--rm", "-v", "/tmp:relative", "busybox", "true"], "relative"),
    ("v_bad_mode", ["run", "--rm", "-v", "/tmp:/x:bogus", "busybox", "true"], "bogus"),
    ("v_too_many", ["run", "--rm", "-v", "a:/b:ro:d", "busybox", "true"], "a:/b:ro:d"),
    ("v_bad_name", ["run", "--rm", "-v", "bad$name:/x", "busybox", "true"], "bad$name"),
    ("v_root", ["run", "--rm", "-v", "/tmp:/", "busybox", "true"], "destination can't be '/'"),
    ("v_mode_only", ["run", "--rm", "-v", "/x:ro", "busybox", "true"], "/x:ro"),
    ("v_empty", ["run", "--rm", "-v", "", "busybox", "true"], "empty volume spec"),
    ("v_duplicate", ["run", "--rm", "-v", "/tmp:/dup", "-v", "vol9:/dup", "busybox", "true"],
     "/dup"),
    ("mount_no_target", ["run", "--rm", "--mount", "type=bind,source=/tmp", "busybox", "true"],
     "target is required"),
    ("mount_bad_type", ["run", "--rm", "--mount", "type=nfs,target=/x", "busybox", "true"],
     "nfs"),
    ("mount_bad_key", ["run", "--rm", "--mount", "type=bind,foo=bar,target=/x", "busybox",
                       "true"], "foo"),
    ("mount_no_pair", ["run", "--rm", "--mount", "type=bind,target", "busybox", "true"],
     "target"),
    ("mount_missing_src", ["run", "--rm", "--mount", "type=volume,source=vol8,target=/a",
                           "--mount", "type=bind,source=/nonexistent/src,target=/x",
                           "busybox", "true"], "/nonexistent/src"),
    ("mount_tmpfs_src", ["run", "--rm", "--mount", "type=tmpfs,source=x1,target=/x",
                         "busybox", "true"], "Source"),
    ("mount_readonly_word", ["run", "--rm", "--mount", "type=tmpfs,target=/x,readonly=maybe",
                             "busybox", "true"], "maybe"),
    ("tmpfs_relative", ["run", "--rm", "--tmpfs", "rel/dir", "busybox", "true"], "rel/dir"),
    ("tmpfs_bad_opt", ["run", "--rm", "--tmpfs", "/t:bogus", "busybox", "true"], "bogus"),
    ("volumes_from_missing", ["run", "--rm", "--volumes-from", "nosuchctr", "busybox", "true"],
     "nosuchctr"),
    # -- run: restart policies, limits, init (issue 15) --------------------------------------
    ("restart_bad", ["run", "-d", "--restart", "sometimes", "busybox", "true"], "sometimes"),
    ("restart_count", ["run", "-d", "--restart", "always:3", "busybox", "true"], "always"),
    ("restart_count_word", ["run", "-d", "--restart", "on-failure:x", "busybox", "true"],
     '"x"'),
    ("restart_negative", ["run", "-d", "--restart", "on-failure:-1", "busybox", "true"],
     "negative"),
    ("restart_rm", ["run", "--rm", "--restart", "always", "busybox", "true"],
     "Conflicting options: --restart and --rm"),
    ("memory_word", ["run", "--rm", "-m", "lots", "busybox", "true"], "lots"),
    ("memory_small", ["run", "--rm", "-m", "1m", "busybox", "true"], "6MB"),
    ("memory_swap_less", ["run", "--rm", "-m", "64m", "--memory-swap", "32m", "busybox",
                          "true"], "memoryswap"),
    ("swap_without_memory", ["run", "--rm", "--memory-swap", "64m", "busybox", "true"],
     "Memory limit"),
    ("cpus_word", ["run", "--rm", "--cpus", "half", "busybox", "true"], "half"),
    ("cpus_too_many", ["run", "--rm", "--cpus", "99", "busybox", "true"], "Range of CPUs"),
    ("cpu_shares_word", ["run", "--rm", "--cpu-shares", "lots", "busybox", "true"], "lots"),
    ("pids_word", ["run", "--rm", "--pids-limit", "ten", "busybox", "true"], "ten"),
    ("cpuset_bad", ["run", "--rm", "--cpuset-cpus", "a-b", "busybox", "true"], "a-b"),
    ("cpuset_absent", ["run", "--rm", "--cpuset-cpus", "64", "busybox", "true"], "64"),
    # -- volumes, stats (issue 15) -----------------------------------------------------------
    ("volume_rm_missing", ["volume", "rm", "nosuchvol"], "nosuchvol"),
    ("volume_rm_in_use", ["volume", "rm", "wvol"], "volume is in use"),
    ("volume_create_bad", ["volume", "create", "bad/name"], "bad/name"),
    ("volume_create_driver", ["volume", "create", "-d", "nosuchdrv", "x1"], "nosuchdrv"),
    ("volume_inspect_missing", ["volume", "inspect", "nosuchvol"], "nosuchvol"),
    ("stats_missing", ["stats", "--no-stream", "nosuchctr"], "nosuchctr"),
    # -- network ---------------------------------------------------------------------------
    ("net_cidr_33", ["network", "create", "--subnet", "10.60.0.0/33", "x1"], "10.60.0.0/33"),
    ("net_cidr_word", ["network", "create", "--subnet", "notacidr", "x1"], "notacidr"),
    ("net_overlap", ["network", "create", "--subnet", "10.50.0.0/16", "x1"], "10.50.0.0/16"),
    ("net_overlap_default", ["network", "create", "--subnet", "172.17.5.0/24", "x1"],
     "172.17.5.0/24"),
    ("net_gw_outside", ["network", "create", "--subnet", "10.61.0.0/24", "--gateway",
                        "10.62.0.1", "x1"], "10.62.0.1"),
    ("net_range_outside", ["network", "create", "--subnet", "10.63.0.0/24", "--ip-range",
                           "10.64.0.0/25", "x1"], "10.64.0.0/25"),
    ("net_dup", ["network", "create", "n1"], "n1"),
    ("net_predefined", ["network", "create", "bridge"], "bridge"),
    ("net_driver", ["network", "create", "-d", "nosuchdriver", "x1"], "nosuchdriver"),
    ("net_rm_predefined", ["network", "rm", "bridge"], "bridge"),
    ("net_rm_missing", ["network", "rm", "nosuchnet"], "nosuchnet"),
    ("net_rm_in_use", ["network", "rm", "n1"], "n1"),
    ("net_connect_missing", ["network", "connect", "nosuchnet", "web"], "nosuchnet"),
    ("net_connect_ctr_missing", ["network", "connect", "n1", "nosuchctr"], "nosuchctr"),
    # -- images ----------------------------------------------------------------------------
    ("load_missing", ["image", "load", "-i", "/nonexistent/x.tar"], "/nonexistent/x.tar"),
    ("load_junk", ["image", "load", "-i", "{junk}"], "junk"),
    ("import_junk", ["image", "import", "{junk}", "junk:1"], "junk"),
    ("rmi_missing", ["rmi", "nosuchimage"], "nosuchimage"),
    ("rmi_in_use", ["rmi", "busybox"], "busybox"),
    # -- exec, inspect -----------------------------------------------------------------------
    ("exec_missing_ctr", ["exec", "nosuchctr", "true"], "nosuchctr"),
    ("exec_missing_cmd", ["exec", "web", "nosuchcmd"], "nosuchcmd"),
    ("exec_user", ["exec", "-u", "nosuchuser", "web", "true"], "nosuchuser"),
    ("exec_workdir", ["exec", "-w", "/nonexistent/dir", "web", "true"], "/nonexistent/dir"),
    ("inspect_missing", ["inspect", "nosuchthing"], "nosuchthing"),
    ("inspect_template", ["inspect", "-f", "{{.State.Bad", "web"], "unclosed action"),
]

# daemon.json variants: (id, text, needle), checked with `run --rm busybox true`
DAEMON_CASES = [
    ("json_syntax", "{not json", "daemon.json"),
    ("json_not_object", "[1, 2]", "JSON object"),
    ("bip_word", '{"bip": "notacidr"}', "notacidr"),
    ("bip_network", '{"bip": "10.70.0.0/16"}', "10.70.0.0/16"),
    ("fixed_cidr_outside", '{"bip": "10.70.0.1/16", "fixed-cidr": "10.80.0.0/24"}',
     "10.80.0.0/24"),
    ("icc_without_iptables", '{"icc": false, "iptables": false}', "icc"),
    ("mtu_negative", '{"mtu": -5}', "-5"),
    ("unknown_key", '{"nosuchkey": 1}', "nosuchkey"),
    ("bool_type", '{"iptables": "yes"}', "iptables"),
    ("dns_bad", '{"dns": ["notanip"]}', "notanip"),
]


def _listen(host: TestHost) -> subprocess.Popen:
    code = ("import socket,sys,time; s=socket.socket(); s.bind(('0.0.0.0', %d)); s.listen();"
            "print('ready', flush=True); time.sleep(3600)" % HOST_PORT)
    proc = subprocess.Popen(["nsenter", f"--net={host.netns}", sys.executable, "-c", code],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture(scope="module")
def world():
    """One host with state to protect, shared by every case of a worker."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root")
    h = TestHost()
    listener = None
    try:
        h.load_busybox()
        h.md("run", "-d", "--name", "web", "-p", "8080:80", "-v", "wvol:/data", "busybox",
             "sleep", "1000")
        h.md("network", "create", "--subnet", "10.50.0.0/24", "n1")
        h.md("run", "-d", "--name", "c1", "--network", "n1", "--ip", "10.50.0.10",
             "busybox", "sleep", "1000")
        listener = _listen(h)
        files = Path(h.dir, "inputs")
        files.mkdir()
        (files / "nul.env").write_bytes(b"NULVAR=a\0b\n")
        (files / "big.env").write_text("BIGVAR=" + "x" * (3 << 20) + "\n")
        (files / "junk").write_bytes(os.urandom(5000))
        (files / "bad.json").write_text('{"defaultAction": "SCMP_ACT_SOMETIMES"}')
        (files / "arch.json").write_text('{"defaultAction": "SCMP_ACT_ERRNO", '
                                         '"architectures": ["SCMP_ARCH_VAX"]}')
        h.inputs = {"envfile_nul": str(files / "nul.env"), "envfile_big": str(files / "big.env"),
                    "junk": str(files / "junk"), "badprofile": str(files / "bad.json"),
                    "badarch": str(files / "arch.json")}
        yield h
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        h.md("rm", "-f", "web", "c1", check=False)
        h.md("volume", "rm", "-f", "wvol", check=False)
        h.destroy()


def snapshot(h: TestHost) -> dict[str, object]:
    iptables = [re.sub(r"\[\d+:\d+\]", "", ln) for ln in h.sh("iptables-save").stdout.splitlines()
                if not ln.startswith("#")]
    db = sqlite3.connect(f"file:{h.root}/minidock.db?mode=ro", uri=True)
    try:
        counts = (db.execute("SELECT kind, count(*) FROM objects GROUP BY kind").fetchall(),
                  db.execute("SELECT space, count(*) FROM claims GROUP BY space").fetchall())
    finally:
        db.close()
    cdir = Path(h.root, "containers")
    ps = re.sub(r"(Less than |About )?(an?|\d+) (second|minute|hour)s?", "T",
                h.md("ps", "-a", "--no-trunc").stdout)
    ps = re.sub(r"[ \t]+", " ", ps)
    links = re.sub(r" link-netns(id)? \S+", "", h.sh("ip -o link").stdout)
    return {
        "ps": ps,
        "networks": h.md("network", "ls", "--no-trunc").stdout,
        "images": h.md("images").stdout,
        "iptables": iptables,
        "nft": h.sh("nft list ruleset").stdout,
        "links": re.sub(r"\s+", " ", links),
        "container_dirs": sorted(os.listdir(cdir)) if cdir.exists() else [],
        "store": counts,
        "layers": sorted(os.listdir(Path(h.root, "images", "layers"))),
        "volumes": (h.md("volume", "ls").stdout,
                    sorted(os.listdir(vdir)) if (vdir := Path(h.root, "volumes")).exists() else []),
        "cgroups": sorted(d for p in h.cgroup_parents() if os.path.isdir(p) for d in os.listdir(p)),
    }


def check_refusal(h: TestHost, argv: list[str], needle: str) -> None:
    before = snapshot(h)
    argv = [re.sub(r"\{(\w+)\}", lambda m: h.inputs.get(m.group(1), m.group(0)), a)
            for a in argv]
    proc = h.md(*argv, check=False, timeout=30)
    err = proc.stderr.strip()
    assert proc.returncode != 0, (argv, proc.stdout, err)
    assert "Traceback" not in proc.stderr, err
    assert len(err.splitlines()) == 1, err
    assert needle in err, (needle, err)
    assert snapshot(h) == before


@pytest.mark.parametrize("argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_refused_and_changes_nothing(world, argv, needle):
    check_refusal(world, argv, needle)


@pytest.mark.parametrize("text, needle", [c[1:] for c in DAEMON_CASES],
                         ids=[c[0] for c in DAEMON_CASES])
def test_bad_daemon_json_refused_and_changes_nothing(world, text, needle):
    before = snapshot(world)
    path = Path(world.root, "daemon.json")
    path.write_text(text)
    try:
        proc = world.md("run", "--rm", "busybox", "true", check=False, timeout=30)
    finally:
        path.unlink()
    err = proc.stderr.strip()
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and needle in err, (needle, err)
    assert snapshot(world) == before


def test_count():
    assert len(CASES) + len(DAEMON_CASES) >= 40
