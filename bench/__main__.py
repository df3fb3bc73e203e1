"""`python -m bench` (`make bench`): minidock against Docker and Podman, one table.

    python -m bench [--quick] [--only NAME[,NAME]] [--peers docker,podman] [--out FILE]
                    [--fleet N] [--peer-fleet N]

NAME: startup, rm, netls, dns, datapath, overlay, fleet (scale, memory, ps, CLI RSS),
profile. Each engine runs in its own throwaway netns with its own roots
(bench/hosts.py); everything is removed at the end, also after a failure, Ctrl-C or
SIGTERM. A full run writes bench/RESULTS.md (quoted by the README); --quick or --only
write build/bench-results.md unless --out says otherwise. The table is rewritten after
each benchmark, so an interrupted run leaves the rows it finished.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import traceback
from typing import Callable

from bench import datapath, dns, fleet, latency, profile
from bench.engines import BUSYBOX_TAR, REPO
from bench.hosts import destroy_all
from bench.report import Figure, results_markdown, table
from bench.session import Session

BENCHES: dict[str, Callable[[Session], list[Figure]]] = {
    "startup": latency.startup,
    "rm": latency.rm_running,
    "netls": latency.network_ls,
    "dns": dns.dns,
    "datapath": datapath.datapath,
    "overlay": lambda s: _overlay(s),
    "fleet": fleet.fleet,
}


def _overlay(s: Session) -> list[Figure]:
    """The overlay rows come from bench/overlay.py (the overlay driver's own bench)."""
    try:
        from bench import overlay  # type: ignore[attr-defined]
    except ImportError:
        why = "not measured: no overlay bench module (bench/overlay.py) on this branch"
        return [Figure("overlay: run --rm on an overlay network", "ms", None, note=why),
                Figure("overlay: container to container across two hosts", "Gbit/s",
                       None, note=why)]
    return overlay.figures(s)


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    versions = []
    for cmd in (["dockerd", "--version"], ["podman", "--version"]):
        try:
            versions.append(subprocess.run(cmd, capture_output=True, text=True).stdout.strip())
        except OSError:
            pass
    return (f"{os.cpu_count()} CPUs ({cpu}), kernel {platform.release()}, load average "
            f"{load:.2f} at start; installed peers: {'; '.join(versions) or 'none'}")


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _prepare() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root")
    if not BUSYBOX_TAR.exists():
        raise SystemExit(f"bench: {BUSYBOX_TAR} is missing: run `make image`")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "minidock"),
                    str(REPO / "bench")], check=True, env={k: v for k, v in os.environ.items()
                                                         if k != "PYTHONDONTWRITEBYTECODE"})
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def run(names: list[str], session: Session,
        save: Callable[[list[Figure], str], None]) -> tuple[list[Figure], str]:
    """Run the benchmarks in order; `save` gets the table so far after each one."""
    figures: list[Figure] = []
    extra = ""
    try:
        for name in names:
            print(f"bench: {name} ...", flush=True)
            try:
                if name == "profile":
                    extra = profile.profile(session)
                else:
                    figures += BENCHES[name](session)
            except KeyboardInterrupt:
                raise
            except Exception as err:
                traceback.print_exc()
                figures.append(Figure(name, "", None, note=f"failed: {str(err)[:160]}"))
            save(figures, extra)
    finally:
        destroy_all()
    return figures, extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations, smaller fleet")
    ap.add_argument("--only", default="", help="comma-separated: " + ", ".join(
        [*BENCHES, "profile"]))
    ap.add_argument("--peers", default="docker,podman", help="peers to run ('' for none)")
    ap.add_argument("--out", default="", help="where to write the results markdown")
    ap.add_argument("--fleet", type=int, default=0,
                    help="minidock containers in the fleet (default 3000, --quick 30)")
    ap.add_argument("--peer-fleet", type=int, default=0,
                    help="Docker containers in its fleet (default 300, --quick 30)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or [*BENCHES, "profile"]
    unknown = [n for n in names if n not in BENCHES and n != "profile"]
    if unknown:
        ap.error(f"unknown benchmark: {', '.join(unknown)}")
    _prepare()
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mach = machine()
    session = Session(quick=args.quick, peers=tuple(p for p in args.peers.split(",") if p),
                      fleet=args.fleet, peer_fleet=args.peer_fleet)
    partial = args.quick or bool(args.only)
    mode = ("quick run" if args.quick else "full run") + (f", only {args.only}" if args.only else "")
    out = args.out or str(REPO / ("build/bench-results.md" if partial else "bench/RESULTS.md"))
    os.makedirs(os.path.dirname(out), exist_ok=True)

    def save(figs: list[Figure], extra: str) -> None:
        done = len({f.name for f in figs})
        now = datetime.datetime.now().strftime("%H:%M")
        text = results_markdown(figs, mach, when, f"{mode}; load average "
                                f"{os.getloadavg()[0]:.2f} at {now} (last benchmark's end)",
                                extra)
        with open(out + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(out + ".tmp", out)
        print(f"bench: {done} rows so far written to {out}", flush=True)

    figures, extra = run(names, session, save)
    print("\n" + table(figures) + ("\n\n" + extra if extra else ""))
    print(f"\nbench: written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
