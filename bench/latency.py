"""Latency benchmarks: `run --rm true` per network mode, `rm -f` of a running bridged
container, `network ls` with 3 and with 100 networks.

Engines are interleaved inside each iteration (minidock, Docker, Podman, then again)
so that the machine's background load falls on all of them alike; each figure is the
median of the iterations after one warm-up per engine and mode (the first run of an
engine also initialises its networking, which is not what the figure is about).
"""

from __future__ import annotations

from bench.engines import Engine
from bench.report import Figure, Target, median
from bench.session import Session

MODES = {"bridge": 0.3, "none": 0.3, "host": 0.5}   # mode -> target ratio vs Docker


def _run_args(eng: Engine, mode: str) -> list[str]:
    extra = eng.run_args() if hasattr(eng, "run_args") else []
    return ["run", "--rm", "--net", mode, *extra, "busybox", "true"]


def startup(s: Session) -> list[Figure]:
    engines = {"minidock": s.minidock}
    for name in s.peers:
        if (eng := s.peer(name)) is not None:
            engines[name] = eng
    times: dict[tuple[str, str], list[float]] = {}
    for name, eng in engines.items():
        for mode in MODES:
            eng.cli(*_run_args(eng, mode))                    # warm-up
    for _ in range(s.n(15, 3)):
        for mode in MODES:
            for name, eng in engines.items():
                times.setdefault((name, mode), []).append(eng.timed(*_run_args(eng, mode)))
    figures = []
    for mode, limit in MODES.items():
        peers = {name: (median(times[(name, mode)]) if (name, mode) in times else s.why(name))
                 for name in s.peers}
        figures.append(Figure(f"run --rm --net {mode} busybox true", "ms",
                              median(times[("minidock", mode)]), Target("<=", limit),
                              peers, base="docker"))
    return figures


def rm_running(s: Session) -> list[Figure]:
    """`rm -f` of a running container on the default bridge."""
    engines = {"minidock": s.minidock}
    if (docker := s.peer("docker")) is not None:
        engines["docker"] = docker
    times: dict[str, list[float]] = {}
    for _ in range(s.n(10, 3)):
        for name, eng in engines.items():
            cid = eng.cli("run", "-d", "--net", "bridge", "busybox", "sleep", "1000000").stdout.strip()
            times.setdefault(name, []).append(eng.timed("rm", "-f", cid))
    docker_ms = median(times["docker"]) if "docker" in times else s.why("docker")
    return [Figure("rm -f of a running bridged container", "ms", median(times["minidock"]),
                   Target("<=", 0.5), {"docker": docker_ms}, base="docker")]


def _create_networks(eng: Engine, have: int, want: int) -> None:
    for i in range(have, want):
        eng.cli("network", "create", "--subnet", f"10.{100 + i // 250}.{i % 250}.0/24", f"bn{i}")


def _networks_ls_ms(eng: Engine, have: int, want: int, reps: int) -> float:
    _create_networks(eng, have, want)
    return median([eng.timed("network", "ls") for _ in range(reps)])


def network_ls(s: Session) -> list[Figure]:
    """`network ls` with 3 user networks vs with 100: two minidock hosts, one with
    each, timed alternately (a drift of the machine's load falls on both alike);
    Docker (one daemon) timed before and after its 97 more networks, for context."""
    from bench.engines import Minidock
    reps, many = s.n(21, 5), 100
    few_host = s.minidock
    many_host = Minidock()
    try:
        _create_networks(few_host, 0, 3)
        _create_networks(many_host, 0, many)
        few_host.timed("network", "ls")
        many_host.timed("network", "ls")
        times: dict[str, list[float]] = {"few": [], "many": []}
        for _ in range(reps):
            times["few"].append(few_host.timed("network", "ls"))
            times["many"].append(many_host.timed("network", "ls"))
        md3, md100 = median(times["few"]), median(times["many"])
        _remove_networks(few_host, 3)
        _remove_networks(many_host, many)
    finally:
        many_host.destroy()
    peers: dict[str, float | str] = {}
    if not s.quick and (docker := s.peer("docker")) is not None:
        d3 = _networks_ls_ms(docker, 0, 3, reps)
        d100 = _networks_ls_ms(docker, 3, many, reps)
        peers = {"docker@3": d3, "docker@100": d100}
        _remove_networks(docker, many)
    return [Figure("network ls, 100 networks vs 3", "ms", md100, Target("<=", 1.2), peers,
                   ratio_override=md100 / md3,
                   note=f"minidock@3 {md3:.0f} ms, two hosts timed alternately")]


def _remove_networks(eng: Engine, count: int) -> None:
    eng.cli("network", "rm", *[f"bn{i}" for i in range(count)], check=False, timeout=600)
