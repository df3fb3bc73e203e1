"""A fleet of containers, each with one published port: start-time scaling, the helper
processes' memory per container, and the CLI's peak RSS.

One fleet serves three figures because they are about the same situation (many
containers, each with a published port) and building it is the slow part:
- scale: the last containers' `run -d -p` time against the first ten's;
- memory: the PSS of every helper process divided by the running containers, taken
  at 60 containers (Docker's reference point) and at the end. Helpers = every process
  in the engine's bench netns: the containers have netns of their own, so what is left
  is minidock's monitors, proxyd and resolverd, or Docker's dockerd, containerd,
  shims and docker-proxies;
- CLI peak RSS: `/usr/bin/time -f %M` of one `run -d` in the fleet and of `ps`.
"""

from __future__ import annotations

import subprocess
import time

from bench.engines import Engine
from bench.report import Figure, Target, median
from bench.session import Session

MEMORY_AT = 60


def _peak_rss_mib(eng: Engine, *args: str) -> float:
    proc = subprocess.run([*eng.enter(), "/usr/bin/time", "-f", "%M", *eng.argv(), *args],
                          capture_output=True, text=True, env=eng.env, check=True)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def _fleet(eng: Engine, count: int, port0: int) -> tuple[list[float], dict[int, tuple]]:
    """Start `count` containers; start times (ms) and PSS snapshots {n: (KiB, by name)}."""
    times, snaps = [], {}
    for i in range(count):
        t0 = time.perf_counter()
        eng.cli("run", "-d", "-p", f"{port0 + i}:80", "busybox", "sleep", "1000000")
        times.append((time.perf_counter() - t0) * 1000)
        if i + 1 in (MEMORY_AT, count):
            time.sleep(1.0)                 # let helpers settle (lazy starts, GC)
            snaps[i + 1] = eng.helper_pss_kib()
    return times, snaps


def _scale_ratio(times: list[float]) -> tuple[float, float, float]:
    first, last = median(times[:10]), median(times[-5:])
    return first, last, last / first


def fleet(s: Session) -> list[Figure]:
    count = s.n(100, 20)
    md_times, md_snaps = _fleet(s.minidock, count, 20000)
    md_run_rss = _peak_rss_mib(s.minidock, "run", "-d", "-p", f"{20000 + count}:80",
                               "busybox", "sleep", "1000000")
    md_ps_rss = _peak_rss_mib(s.minidock, "ps")
    s.minidock.remove_all()
    d_scale: float | str = s.why("docker")
    d_mem: dict[int, float] = {}
    d_rss: float | str = s.why("docker")
    if (docker := s.peer("docker")) is not None:
        d_times, d_snaps = _fleet(docker, count, 20000)
        d_first, d_last, d_ratio = _scale_ratio(d_times)
        d_scale = f"docker {d_last:.0f} ms vs {d_first:.0f} ms ({d_ratio:.2f}x)"
        d_mem = {n: kib / 1024 / n for n, (kib, _) in d_snaps.items()}
        d_rss = max(_peak_rss_mib(docker, "run", "-d", "-p", f"{20000 + count}:80",
                                  "busybox", "sleep", "1000000"), _peak_rss_mib(docker, "ps"))
        docker.remove_all()
    first, last, ratio = _scale_ratio(md_times)
    figures = [Figure(f"run -d -p: containers {count - 4}-{count} vs the first ten", "ms",
                      last, Target("<=", 1.2), {"": d_scale},
                      ratio_override=ratio, note=f"first ten {first:.0f} ms")]
    for n, (kib, by_name) in sorted(md_snaps.items()):
        per = kib / 1024 / n
        detail = ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(by_name.items()))
        figures.append(Figure(f"helper PSS per container at {n} containers", "MiB", per,
                              Target("<=", 0.7), {"docker": d_mem.get(n, s.why("docker"))},
                              base="docker", note=f"MiB: {detail}"))
        figures.append(Figure(f"helper PSS per container at {n} containers, budget", "MiB",
                              per, Target("<=", 4, absolute=True)))
    figures.append(Figure("CLI peak RSS (run -d, ps)", "MiB", max(md_run_rss, md_ps_rss),
                          Target("<=", 40, absolute=True), {"docker CLI": d_rss},
                          note=f"run {md_run_rss:.1f}, ps {md_ps_rss:.1f}"))
    return figures
