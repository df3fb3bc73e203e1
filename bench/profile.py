"""Where minidock's `run --rm` time goes, per network mode: the pipeline trace
(MINIDOCK_TRACE=1 prints each step's duration) and the CLI's imports (-X importtime).

Not a target figure: a markdown section for RESULTS.md that says which steps and
imports dominate. The parsers are pure and unit-tested.
"""

from __future__ import annotations

import re
import time

from bench.report import median
from bench.session import Session

IMPORT_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def parse_trace(stderr: str) -> dict[str, float]:
    """"pipeline.step" -> ms for the top-level steps of each pipeline in a
    MINIDOCK_TRACE tree (nested steps are inside their parent's time; a step seen
    twice is summed)."""
    from minidock import trace
    out: dict[str, float] = {}
    for root in trace.parse(stderr):
        for step in root.children:
            key = f"{root.name}.{step.name}"
            out[key] = out.get(key, 0.0) + step.ms
    return out


def parse_importtime(stderr: str) -> tuple[float, list[tuple[str, float]]]:
    """(total self ms, top-level imports [(name, cumulative ms)], largest first)."""
    total, top = 0.0, []
    for line in stderr.splitlines():
        if m := IMPORT_RE.match(line):
            total += int(m.group(1)) / 1000
            if not m.group(3):
                top.append((m.group(4), int(m.group(2)) / 1000))
    return total, sorted(top, key=lambda t: -t[1])


def _mode_section(s: Session, mode: str, reps: int) -> list[str]:
    md = s.minidock
    steps: dict[str, list[float]] = {}
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        err = md.cli("run", "--rm", "--net", mode, "busybox", "true",
                     env={"MINIDOCK_TRACE": "1"}).stderr
        walls.append((time.perf_counter() - t0) * 1000)
        for step, ms in parse_trace(err).items():
            steps.setdefault(step, []).append(ms)
    wall = median(walls)
    traced = sum(median(v) for v in steps.values())
    lines = [f"**--net {mode}**: wall {wall:.0f} ms (traced steps {traced:.0f} ms; "
             f"the rest is interpreter start, imports, argument parsing, exit)", ""]
    ranked = sorted(steps.items(), key=lambda kv: -median(kv[1]))
    lines += [f"- {step}: {median(v):.1f} ms" for step, v in ranked if median(v) >= 0.5]
    return lines + [""]


def _rm_section(s: Session, reps: int) -> list[str]:
    """`rm -f` of a running bridged container, traced (the run before it is not)."""
    md = s.minidock
    steps: dict[str, list[float]] = {}
    walls = []
    for _ in range(reps):
        cid = md.cli("run", "-d", "busybox", "sleep", "1000000").stdout.strip()
        t0 = time.perf_counter()
        err = md.cli("rm", "-f", cid, env={"MINIDOCK_TRACE": "1"}).stderr
        walls.append((time.perf_counter() - t0) * 1000)
        for step, ms in parse_trace(err).items():
            steps.setdefault(step, []).append(ms)
    traced = sum(median(v) for v in steps.values())
    lines = [f"**rm -f** of a running bridged container: wall {median(walls):.0f} ms "
             f"(traced steps {traced:.0f} ms; the rest is interpreter start, imports, "
             "the kill and the wait for the init to die)", ""]
    ranked = sorted(steps.items(), key=lambda kv: -median(kv[1]))
    lines += [f"- {step}: {median(v):.1f} ms" for step, v in ranked if median(v) >= 0.5]
    return lines + [""]


def _imports_section(s: Session) -> list[str]:
    md = s.minidock
    err = md.cli("run", "--rm", "--net", "bridge", "busybox", "true",
                 env={"PYTHONPROFILEIMPORTTIME": "1"}).stderr
    total, top = parse_importtime(err)
    lines = [f"**imports of `run --rm --net bridge`** (the CLI, and the container's init child it forks, which inherits the flag and writes to the same stderr; the monitor "
             f"imports its own): {total:.0f} ms in all; largest top-level:", ""]
    lines += [f"- {name}: {ms:.1f} ms" for name, ms in top[:10]]
    return lines + [""]


def profile(s: Session) -> str:
    reps = s.n(10, 3)
    s.minidock.cli("run", "--rm", "--net", "bridge", "busybox", "true")   # warm-up
    lines = ["## Where minidock's `run --rm` time goes", "",
             f"Medians of {reps} runs with MINIDOCK_TRACE=1 (steps of 0.5 ms or more), "
             "largest first.", ""]
    for mode in ("bridge", "none", "host"):
        lines += _mode_section(s, mode, reps)
    lines += _rm_section(s, reps)
    lines += _imports_section(s)
    return "\n".join(lines)
