"""Data-path benchmarks: container to container on the default bridge, and a published
port reached through the host's 127.0.0.1 (minidock's proxy vs docker-proxy).

The servers and clients are `bench.netload` run with the host's Python inside the
right network namespace (a container's: `nsenter --net=/proc/PID/ns/net`; the bench
host's for the published port), identical for both engines. "direct" (the bench host
to the container's address, no proxy) is shown for context: it is the ceiling.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from bench.engines import REPO, Engine
from bench.report import Figure, Target, median
from bench.session import Session

SINK, RR = 5001, 5002
P_SINK, P_RR = 15001, 15002


def _netload(enter: list[str], *args: str) -> list[str]:
    return [*enter, sys.executable, "-m", "bench.netload", *args]


@contextmanager
def _server(eng: Engine, pid: int, *args: str) -> Iterator[None]:
    """A netload server in the netns of container process `pid`, killed after."""
    cmd = _netload(["nsenter", f"--net=/proc/{pid}/ns/net"], *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO, env=eng.env,
                            start_new_session=True)
    try:
        if proc.stdout is None or proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"netload {args[0]} did not start in {eng.label}")
        yield
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)     # the server and its forked workers
        except ProcessLookupError:
            pass
        proc.wait()


def _client(eng: Engine, enter: list[str], *args: str) -> float:
    out = subprocess.run(_netload(enter, *args), capture_output=True,
                         text=True, cwd=REPO, env=eng.env, timeout=300, check=True)
    return float(out.stdout.strip())


def _sleeper(eng: Engine, *opts: str) -> tuple[str, int, str]:
    cid = eng.cli("run", "-d", *opts, "busybox", "sleep", "1000000").stdout.strip()
    return cid, eng.pid(cid), eng.ip(cid)


def _c2c(s: Session, eng: Engine, nbytes: int) -> float:
    _, rpid, rip = _sleeper(eng)
    _, spid, _ = _sleeper(eng)
    with _server(eng, rpid, "sink", str(SINK)):
        enter = ["nsenter", f"--net=/proc/{spid}/ns/net"]
        rates = [_client(eng, enter, "send", rip, str(SINK), str(nbytes))
                 for _ in range(s.n(5, 2))]
    eng.remove_all()
    return median(rates)


def _published(s: Session, eng: Engine, nbytes: int) -> dict[str, float]:
    """Gbit/s and conn/s through 127.0.0.1:published, and direct to the container."""
    _, pid, ip = _sleeper(eng, "-p", f"{P_SINK}:{SINK}", "-p", f"{P_RR}:{RR}")
    secs = str(s.n(5, 2))
    out: dict[str, float] = {}
    with _server(eng, pid, "sink", str(SINK)), _server(eng, pid, "rr", str(RR), "2"):
        reps = s.n(3, 1)
        out["gbps"] = median([_client(eng, eng.enter(), "send", "127.0.0.1", str(P_SINK),
                                      str(nbytes)) for _ in range(reps)])
        out["cps"] = median([_client(eng, eng.enter(), "conns", "127.0.0.1", str(P_RR),
                                     secs, "2") for _ in range(reps)])
        out["direct_gbps"] = _client(eng, eng.enter(), "send", ip, str(SINK), str(nbytes))
        out["direct_cps"] = _client(eng, eng.enter(), "conns", ip, str(RR), secs, "2")
    eng.remove_all()
    return out


def datapath(s: Session) -> list[Figure]:
    nbytes = s.n(2 << 30, 512 << 20)
    md_c2c = _c2c(s, s.minidock, nbytes)
    md = _published(s, s.minidock, nbytes)
    d_c2c: float | str = s.why("docker")
    d: dict[str, float] = {}
    if (docker := s.peer("docker")) is not None:
        d_c2c = _c2c(s, docker, nbytes)
        d = _published(s, docker, nbytes)

    def peers(key: str) -> dict[str, float | str]:
        return {"docker-proxy": d.get(key, s.why("docker")),
                "direct (md)": md[f"direct_{key}"],
                "direct (docker)": d.get(f"direct_{key}", s.why("docker"))}

    return [
        Figure("container to container, bridge", "Gbit/s", md_c2c, Target(">=", 0.95),
               {"docker": d_c2c}, base="docker"),
        Figure("published port via 127.0.0.1, throughput", "Gbit/s", md["gbps"],
               Target(">=", 1.3), peers("gbps"), base="docker-proxy"),
        Figure("published port via 127.0.0.1, connections", "conn/s", md["cps"],
               Target(">=", 1.3), peers("cps"), base="docker-proxy"),
    ]
