"""Embedded DNS from inside a container: queries/s and p99 latency for a container name.

Each engine gets a user network with two containers, `dnsa` and `dnsb`; Debian's
`dnsperf` runs in dnsa's network namespace (`nsenter --net=/proc/PID/ns/net`, the
host's binary: busybox has none) against 127.0.0.11, asking for `dnsb A`, the name
of a container on the same network. minidock answers from resolverd's socket bound in
that netns; Docker answers from dockerd's embedded DNS (127.0.0.11 DNATed to
dockerd's listener in the container's netns).

Two runs per engine, engines interleaved:
- throughput: as many queries as the server answers (`-c 4 -q 64`, 100 outstanding
  at most), queries/s completed;
- latency: a fixed, moderate rate (`-Q 1000`) with every answer's latency printed
  (`-v`); p99 of those. A saturating run would measure queueing (Little's law), not
  the server's answer time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from bench.engines import Engine
from bench.report import Figure, Target, median
from bench.session import Session

QPS_RE = re.compile(r"Queries per second:\s+([0-9.]+)")
LOST_RE = re.compile(r"Queries lost:\s+(\d+)")
LATENCY_RE = re.compile(r"^> NOERROR \S+ A ([0-9.]+)$", re.M)
RATE = 1000


def parse_qps(out: str) -> float:
    m = QPS_RE.search(out)
    if not m:
        raise RuntimeError(f"dnsperf: no 'Queries per second' in: {out[-300:]}")
    return float(m.group(1))


def parse_p99_ms(out: str) -> float:
    """p99 of the per-answer latencies that `dnsperf -v` prints (NOERROR only)."""
    lat = sorted(float(x) for x in LATENCY_RE.findall(out))
    if not lat:
        raise RuntimeError(f"dnsperf -v: no answers in: {out[-300:]}")
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


def _setup(eng: Engine) -> int:
    """The network and two containers; returns dnsa's pid."""
    eng.cli("network", "create", "--subnet", "10.210.0.0/24", "dnsbench")
    for name in ("dnsa", "dnsb"):
        eng.cli("run", "-d", "--net", "dnsbench", "--name", name, "busybox",
                "sleep", "1000000")
    return eng.pid("dnsa")


def _dnsperf(pid: int, qfile: str, *args: str) -> str:
    cmd = ["nsenter", f"--net=/proc/{pid}/ns/net", "dnsperf", "-s", "127.0.0.11",
           "-d", qfile, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          check=True).stdout


def _teardown(eng: Engine) -> None:
    eng.remove_all()
    eng.cli("network", "rm", "dnsbench", check=False)


def dns(s: Session) -> list[Figure]:
    if not shutil.which("dnsperf"):
        why = "dnsperf is not installed (apt-get install dnsperf)"
        return [Figure("embedded DNS, queries/s", "q/s", None, note=why),
                Figure("embedded DNS, p99 latency", "ms", None, note=why)]
    engines = {"minidock": s.minidock}
    if (docker := s.peer("docker")) is not None:
        engines["docker"] = docker
    qdir = tempfile.mkdtemp(prefix="mdb-dns-")
    qfile = os.path.join(qdir, "queries")
    with open(qfile, "w") as fh:
        fh.write("dnsb A\n")
    qps: dict[str, list[float]] = {}
    p99: dict[str, list[float]] = {}
    secs = str(s.n(5, 2))
    try:
        pids = {name: _setup(eng) for name, eng in engines.items()}
        for name, pid in pids.items():          # warm-up: caches, lazy starts
            _dnsperf(pid, qfile, "-l", "1", "-Q", "200")
        for _ in range(s.n(3, 1)):
            for name, pid in pids.items():
                out = _dnsperf(pid, qfile, "-l", secs, "-c", "4", "-q", "64")
                qps.setdefault(name, []).append(parse_qps(out))
                out = _dnsperf(pid, qfile, "-v", "-l", secs, "-Q", str(RATE), "-q", "20")
                p99.setdefault(name, []).append(parse_p99_ms(out))
    finally:
        for eng in engines.values():
            _teardown(eng)
        shutil.rmtree(qdir, ignore_errors=True)
    why = s.why("docker")
    d_qps = median(qps["docker"]) if "docker" in qps else why
    d_p99 = median(p99["docker"]) if "docker" in p99 else why
    return [
        Figure("embedded DNS, container name from inside a container: queries/s",
               "q/s", median(qps["minidock"]), Target(">=", 1.0), {"docker": d_qps},
               base="docker", note="dnsperf -c 4 -q 64"),
        Figure("embedded DNS, container name: p99 latency", "ms", median(p99["minidock"]),
               Target("<=", 1.0), {"docker": d_p99}, base="docker",
               note=f"dnsperf -Q {RATE}"),
    ]
