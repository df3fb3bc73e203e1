"""The results table: figures, ratios against a peer, targets, met or not.

Pure logic (values in, text out) so that the one thing every benchmark shares -- how
a measurement becomes a verdict -- is unit-tested without root. A `Figure` is one line
of the table: what minidock measured, what the peers measured in the same run, the
ratio that the target is about and the target itself. A target compares the ratio
(`<=` for times and memory, `>=` for throughput) or, for absolute budgets, the value.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """`ratio <= limit` (op "<=") or `ratio >= limit` (op ">="); `absolute` compares the
    minidock value itself (a budget in the figure's unit) instead of the ratio."""

    op: str
    limit: float
    absolute: bool = False

    def text(self, unit: str) -> str:
        return f"{self.op} {self.limit:g} {unit}" if self.absolute else f"{self.op} {self.limit:g}x"

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit


@dataclass
class Figure:
    """One line of the table. `peers` maps a peer name to its value (or to a string
    saying why there is none); `base` names the peer the ratio divides by."""

    name: str
    unit: str
    minidock: float | None
    target: Target | None = None
    peers: dict[str, float | str] = field(default_factory=dict)
    base: str | None = None
    ratio_override: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ratio_override is not None:
            return self.ratio_override
        peer = self.peers.get(self.base) if self.base else None
        if self.minidock is None or not isinstance(peer, (int, float)) or peer == 0:
            return None
        return self.minidock / peer

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        value = self.minidock if self.target.absolute else self.ratio
        if value is None:
            return "n/a"
        return "met" if self.target.met(value) else "NOT met"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float | str | None, unit: str = "") -> str:
    """A value for the table: strings pass through, numbers get 3 significant-ish digits."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    """The markdown table: figure | minidock | peers | ratio | target | result."""
    lines = ["| figure | minidock | peers (same run) | ratio | target | result |",
             "|---|---|---|---|---|---|"]
    for f in figures:
        peers = "; ".join(f"{name} {fmt(v, f.unit)}".strip() for name, v in f.peers.items()) or "-"
        ratio = f"{f.ratio:.3f}x" if f.ratio is not None else "-"
        target = f.target.text(f.unit) if f.target else "-"
        name = f"{f.name} ({f.note})" if f.note else f.name
        lines.append(f"| {name} | {fmt(f.minidock, f.unit)} | {peers} | {ratio} | {target} "
                     f"| {f.verdict} |")
    return "\n".join(lines)


def results_markdown(figures: list[Figure], machine: str, when: str, mode: str,
                     extra: str = "") -> str:
    """bench/RESULTS.md: date, machine, the table, then any extra sections."""
    met = sum(1 for f in figures if f.verdict == "met")
    judged = sum(1 for f in figures if f.verdict in ("met", "NOT met"))
    head = (f"# minidock benchmark results\n\n{when}; {machine}; {mode}.\n"
            f"Medians; every peer was measured in the same run, in its own throwaway netns.\n"
            f"Targets met: {met} of {judged}.\n\n")
    return head + table(figures) + "\n" + (f"\n{extra.rstrip()}\n" if extra else "")
