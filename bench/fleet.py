"""A fleet of containers on three user networks, each with one published port: start
time scaling, the helper processes' memory per container, listing with the fleet
running, and the CLI's peak RSS.

One fleet serves all these figures because they are about the same situation (many
containers, each with a published port) and building it is the slow part:
- scale: the median `run -d -p` time of the last 5% of the fleet against the first 5%;
- memory: the PSS of every helper process divided by the running containers, taken
  at 60 containers (Docker's reference point) and at the end. Helpers = every process
  in the engine's bench netns: the containers have netns of their own, so what is left
  is minidock's monitors, proxyd and resolverd, or Docker's dockerd, containerd,
  shims and docker-proxies;
- listing: `ps -q` and `ps` with the whole fleet running;
- CLI peak RSS: `/usr/bin/time -f %M` of one `run -d` in the fleet and of `ps`.

Three networks, because one Linux bridge takes at most 1,024 ports. The fleet sizes
are options (`--fleet`, `--peer-fleet`): 3,000 minidock containers take ~10 minutes
and ~9 GiB; Docker's fleet is smaller by default (its containers cost ~3x the
memory and the time), which its figures say. Everything is removed at the end.
"""

from __future__ import annotations

import subprocess
import time

from bench.engines import Engine, Minidock
from bench.report import Figure, Target, median
from bench.session import Session

MEMORY_AT = 60
NETWORKS = 3
PORT0 = 20000


def _peak_rss_mib(eng: Engine, *args: str) -> float:
    proc = subprocess.run([*eng.enter(), "/usr/bin/time", "-f", "%M", *eng.argv(), *args],
                          capture_output=True, text=True, env=eng.env, check=True)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def fleet_networks(count: int) -> list[tuple[str, str]]:
    """(name, subnet) of the fleet's networks: /20s, room for 4,000 addresses each."""
    return [(f"fleet{i}", f"10.{200 + i}.0.0/20") for i in range(count)]


def edge_ratio(times: list[float], share: float = 0.05) -> tuple[float, float, float]:
    """(median of the first `share`, of the last `share`, last / first)."""
    k = max(1, int(len(times) * share))
    first, last = median(times[:k]), median(times[-k:])
    return first, last, last / first


def _fleet(eng: Engine, count: int) -> tuple[list[float], dict[int, tuple]]:
    """Start `count` containers; start times (ms) and PSS snapshots {n: (KiB, by name)}."""
    nets = fleet_networks(NETWORKS)
    for name, subnet in nets:
        eng.cli("network", "create", "--subnet", subnet, name)
    times, snaps = [], {}
    progress = max(1, count // 10)
    for i in range(count):
        net = nets[i % NETWORKS][0]
        t0 = time.perf_counter()
        eng.cli("run", "-d", "--net", net, "-p", f"{PORT0 + i}:80", "busybox",
                "sleep", "1000000")
        times.append((time.perf_counter() - t0) * 1000)
        if i + 1 in (MEMORY_AT, count):
            time.sleep(1.0)                 # let helpers settle (lazy starts, GC)
            snaps[i + 1] = eng.helper_pss_kib()
        if (i + 1) % progress == 0:
            print(f"bench: fleet {eng.label}: {i + 1}/{count}, last start "
                  f"{times[-1]:.0f} ms", flush=True)
    return times, snaps


def _listing_ms(eng: Engine, reps: int, count: int) -> tuple[float, float]:
    """Median wall ms of `ps -q` and `ps`, checking that they list the whole fleet."""
    out = eng.cli("ps", "-q").stdout.split()
    if len(out) < count:
        raise RuntimeError(f"{eng.label} ps -q lists {len(out)} of {count} containers")
    quiet = median([eng.timed("ps", "-q") for _ in range(reps)])
    full = median([eng.timed("ps") for _ in range(reps)])
    return quiet, full


def _teardown(eng: Engine) -> None:
    eng.remove_all()
    eng.cli("network", "rm", *[n for n, _ in fleet_networks(NETWORKS)], check=False,
            timeout=600)


def _minidock_fleet(count: int, reps: int) -> dict:
    """minidock's fleet on a host of its own, discarded at the end (Minidock.discard:
    removing 3,000 containers one by one is the slow part noted in the README)."""
    eng = Minidock()
    try:
        eng.load_image()
        return _run(eng, count, reps, teardown=False)
    finally:
        eng.discard()


def _run(eng: Engine, count: int, reps: int, teardown: bool = True) -> dict:
    """The fleet of one engine: every measurement, then everything removed."""
    try:
        times, snaps = _fleet(eng, count)
        ps_q, ps_full = _listing_ms(eng, reps, count)
        run_rss = _peak_rss_mib(eng, "run", "-d", "--net", fleet_networks(1)[0][0],
                                "-p", f"{PORT0 + count}:80", "busybox", "sleep", "1000000")
        ps_rss = _peak_rss_mib(eng, "ps")
    finally:
        if teardown:
            _teardown(eng)
    return {"count": count, "times": times, "snaps": snaps, "ps_q": ps_q,
            "ps": ps_full, "run_rss": run_rss, "ps_rss": ps_rss}


def fleet(s: Session) -> list[Figure]:
    count = s.fleet or s.n(3000, 30)
    reps = s.n(9, 3)
    md = _minidock_fleet(count, reps)
    d: dict | None = None
    if (docker := s.peer("docker")) is not None:
        d = _run(docker, s.peer_fleet or min(count, s.n(300, 30)), reps)
    return _figures(s, md, d)


def _figures(s: Session, md: dict, d: dict | None) -> list[Figure]:
    count, why = md["count"], s.why("docker")
    first, last, ratio = edge_ratio(md["times"])
    k = max(1, int(count * 0.05))
    d_scale: float | str = why
    if d is not None:
        d_first, d_last, d_ratio = edge_ratio(d["times"])
        d_scale = f"{d_last:.0f} ms vs {d_first:.0f} ms ({d_ratio:.2f}x) at {d['count']}"
    figures = [Figure(f"run -d -p, {count} containers on {NETWORKS} networks: last "
                      f"{k} vs first {k}", "ms", last, Target("<=", 1.2),
                      {"docker": d_scale}, ratio_override=ratio,
                      note=f"first {first:.0f} ms")]
    d_mem = {n: kib / 1024 / n for n, (kib, _) in (d["snaps"].items() if d else [])}
    for n, (kib, by_name) in sorted(md["snaps"].items()):
        per = kib / 1024 / n
        detail = ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(by_name.items()))
        peers: dict[str, float | str] = {"docker": why}
        if d is not None and n in d_mem:
            peers = {"docker": d_mem[n]}
        elif d is not None:
            peers = {f"docker@{d['count']}": d_mem.get(d["count"], "-")}
        figures.append(Figure(f"helper PSS per container at {n} containers", "MiB", per,
                              Target("<=", 2, absolute=True), peers,
                              note=f"MiB: {detail}"))
    for key, label in (("ps_q", "ps -q"), ("ps", "ps")):
        peer: float | str = d[key] if d else why
        figures.append(Figure(f"{label} with {count} running", "ms", md[key],
                              Target("<=", 150, absolute=True),
                              {f"docker@{d['count']}" if d else "docker": peer}))
    d_rss: float | str = max(d["run_rss"], d["ps_rss"]) if d else why
    figures.append(Figure("CLI peak RSS (run -d, ps)", "MiB",
                          max(md["run_rss"], md["ps_rss"]), Target("<=", 40, absolute=True),
                          {"docker CLI": d_rss},
                          note=f"run {md['run_rss']:.1f}, ps {md['ps_rss']:.1f}"))
    return figures
