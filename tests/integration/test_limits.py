"""Resource limits and --init (issue 15), on the machine's cgroups: an OOM kill shows
as Docker shows it, --pids-limit refuses the 11th process, --cpus 0.5 gets about half
a CPU (measured from the cgroup's own accounting), --init reaps zombies, and every
container's cgroup is gone after it (the host fixture's leak check)."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.integration.conftest import TestHost


def _doc(h: TestHost, name: str) -> dict:
    return json.loads(h.md("inspect", name).stdout)[0]


def _cgroup_dir(pid: int, controller: str) -> str:
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return f"/sys/fs/cgroup/{controller}{path}"
    return "/sys/fs/cgroup" + path         # v2


def test_memory_limit_oom_killed(host: TestHost) -> None:
    proc = host.md("run", "--name", "hog", "--memory", "16m", "--memory-swap", "16m",
                   "busybox", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)",
                   check=False)
    assert proc.returncode == 137, proc
    doc = _doc(host, "hog")
    assert doc["State"]["OOMKilled"] is True and doc["State"]["ExitCode"] == 137
    assert doc["HostConfig"]["Memory"] == 16 << 20
    host.md("rm", "hog")


def test_limits_written_to_the_cgroup(host: TestHost) -> None:
    host.md("run", "-d", "--name", "lim", "--memory", "32m", "--cpus", "0.5",
            "--cpu-shares", "512", "--pids-limit", "10", "--cpuset-cpus", "0",
            "busybox", "sleep", "100")
    pid = _doc(host, "lim")["State"]["Pid"]
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        d = _cgroup_dir(pid, "")
        assert open(f"{d}/memory.max").read().strip() == str(32 << 20)
        assert open(f"{d}/cpu.max").read().split() == ["50000", "100000"]
    else:
        mem = _cgroup_dir(pid, "memory")
        assert open(f"{mem}/memory.limit_in_bytes").read().strip() == str(32 << 20)
        cpu = _cgroup_dir(pid, "cpu")
        assert open(f"{cpu}/cpu.cfs_quota_us").read().strip() == "50000"
        assert open(f"{cpu}/cpu.shares").read().strip() == "512"
        assert open(f"{_cgroup_dir(pid, 'pids')}/pids.max").read().strip() == "10"
        assert open(f"{_cgroup_dir(pid, 'cpuset')}/cpuset.cpus").read().strip() == "0"
    out = host.md("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}",
                  "lim").stdout.split()
    assert out[0] == "lim" and out[3] == "32MiB" and out[4] == "1", out
    cid = _doc(host, "lim")["Id"]
    cg = host.md("exec", "lim", "cat", "/proc/self/cgroup").stdout     # exec joins it
    assert any(ln.endswith("/" + cid) for ln in cg.splitlines()), cg
    host.md("rm", "-f", "lim")


def test_pids_limit_refuses_the_eleventh_process(host: TestHost) -> None:
    proc = host.md("run", "--name", "pl", "--pids-limit", "10", "busybox", "sh", "-c",
                   "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & echo $i; done",
                   check=False, timeout=90)
    started = proc.stdout.split()
    assert started == [str(i) for i in range(1, 10)], proc       # sh + 9 sleeps = 10
    assert "can't fork" in proc.stderr, proc.stderr
    host.md("rm", "-f", "pl")


def test_cpus_half_a_cpu(host: TestHost) -> None:
    host.md("run", "-d", "--name", "spin", "--cpus", "0.5", "busybox", "sh", "-c",
            "while :; do :; done")
    pid = _doc(host, "spin")["State"]["Pid"]
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        def usage() -> float:
            stat = open(f"{_cgroup_dir(pid, '')}/cpu.stat").read().split()
            return int(stat[stat.index("usage_usec") + 1]) / 1e6
    else:
        def usage() -> float:
            return int(open(f"{_cgroup_dir(pid, 'cpuacct')}/cpuacct.usage").read()) / 1e9
    t0, u0 = time.monotonic(), usage()
    time.sleep(4)
    ratio = (usage() - u0) / (time.monotonic() - t0)
    assert 0.1 < ratio < 0.65, ratio          # bounded generously: a loaded machine
    cpu = host.md("stats", "--no-stream", "--format", "{{.CPUPerc}}", "spin").stdout
    assert float(cpu.strip().rstrip("%")) < 70, cpu
    host.md("rm", "-f", "spin")


@pytest.mark.parametrize("init_path", ["", "none"], ids=["tini", "builtin"])
def test_init_reaps_zombies(host: TestHost, init_path: str) -> None:
    env = {"MINIDOCK_INIT_PATH": init_path} if init_path else None
    # the shell execs into sleep, whose orphaned children nobody waits for
    script = "(sleep 0.2 &) ; (sleep 0.2 &) ; (sleep 0.2 &) ; exec sleep 100"
    host.md("run", "-d", "--name", "noinit", "busybox", "sh", "-c", script)
    host.md("run", "-d", "--name", "withinit", "--init", "busybox", "sh", "-c", script, env=env)
    time.sleep(2)

    def zombies(name: str) -> int:
        out = host.md("exec", name, "ps", "-o", "stat").stdout.split()
        return sum(1 for s in out if s.startswith("Z"))
    assert zombies("noinit") == 3
    assert zombies("withinit") == 0
    doc = _doc(host, "withinit")
    assert doc["HostConfig"]["Init"] is True and doc["Path"] == "sh"
    if not init_path:
        comm = open(f"/proc/{doc['State']['Pid']}/comm").read().strip()
        assert comm.startswith("tini") or comm.startswith("minidock-init"), comm
    t0 = time.monotonic()
    host.md("stop", "-t", "30", "withinit")          # SIGTERM reaches sleep through init
    assert time.monotonic() - t0 < 20
    assert _doc(host, "withinit")["State"]["ExitCode"] == 143
    code = host.md("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7", env=env,
                   check=False).returncode
    assert code == 7
    host.md("rm", "-f", "noinit", "withinit")


def test_prune_removes_orphan_cgroups(host: TestHost) -> None:
    host.md("run", "-d", "--name", "live", "busybox", "sleep", "100")
    orphans = [os.path.join(p, "f" * 64) for p in host.cgroup_parents()]
    for path in orphans:
        os.makedirs(path)
    out = host.md("system", "prune", "-f").stdout
    assert not any(os.path.exists(p) for p in orphans), out
    pid = _doc(host, "live")["State"]["Pid"]
    assert _doc(host, "live")["Id"] in open(f"/proc/{pid}/cgroup").read()
    host.md("rm", "-f", "live")
