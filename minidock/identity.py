"""Process identity and liveness: a pid plus its start time names one process for
good (a recycled pid has another start time).

minidock has no daemon, so no single process owns the truth: a pipeline that creates
things marks its records with its *starter* (`starter_mark()`, this CLI); a record
whose starter is alive is in flight and never touched; a dead starter means the
pipeline failed and its leftovers are repaired. A container is live while its monitor
or its init runs. Everything here reads /proc only: a leaf module that every layer
(runtime, net, reconcile) may import.
"""

from __future__ import annotations

import os
from minidock.hints import Any

Container = dict[str, Any]

_mark: dict[str, int | None] = {}


def proc_start(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot, None if it does not run."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):   # a zombie has exited already
        return None
    return int(fields[19])  # field 22 overall; fields[0] is field 3 (state)


def alive(pid: int, start: int | None) -> bool:
    return bool(pid) and start is not None and proc_start(pid) == start


def starter_mark() -> dict[str, int | None]:
    """This process as the starter of a pipeline: pid + start time (cached)."""
    pid = os.getpid()
    if _mark.get("Pid") != pid:
        _mark.update(Pid=pid, Start=proc_start(pid))
    return dict(_mark)


def mark_alive(mark: dict[str, Any] | None) -> bool:
    """True while the process that wrote `mark` still runs (a recycled pid is not it)."""
    if not mark:
        return False
    return alive(mark.get("Pid", 0), mark.get("Start"))


def monitor_alive(ctr: Container) -> bool:
    mon = ctr.get("_Monitor") or {}
    return alive(mon.get("Pid", 0), mon.get("Start"))


def process_alive(ctr: Container) -> bool:
    return alive(ctr["State"].get("Pid", 0), ctr.get("_PidStart"))


def container_live(ctr: Container) -> bool:
    """Running, and its monitor or its init still runs."""
    return bool(ctr["State"].get("Running")) and (monitor_alive(ctr) or process_alive(ctr))
