"""The one applier of firewall rules: a list of `rules.Rule` in, one
`iptables-restore --noflush -w` batch out.

Rules are data (net/firewall/rules.py builds them, pure); this module is the thin side-effect
seam. One batch per change because one `iptables-restore` of 100 rules is ~37x faster
than 100 `iptables` calls, and a batch is atomic: either every rule of it lands or none.
The same list that added rules removes them (`remove`).

Chains: on the nft backend, a `:CHAIN - [0:0]` line in an `--noflush` batch *flushes
that chain if it exists* (verified on this machine, iptables v1.8.9 nf_tables), so
chains are declared only when `iptables-save` shows them missing (`ensure_chains`);
`MINIDOCK-USER` is therefore never flushed, and rules users put in it survive.
Built-in chain lines (`:FORWARD DROP [0:0]`) only set the policy; they flush nothing.

A `-D` of a rule that is not there fails the whole batch; removal is idempotent by
retrying with only the rules `iptables-save` still shows (`remove`).

Every function takes `family` (4 or 6): family 6 runs `ip6tables-restore` /
`ip6tables-save` with the same batches (rules.py builds IPv6 rule lists). The
firewall generation check (fwcheck.py) tracks the IPv4 ruleset only.
"""

from __future__ import annotations

import subprocess
from minidock.hints import TYPE_CHECKING, Iterable

from minidock import pipeline as _pl   # trace notes (built only when tracing)
from minidock.errors import Internal

if TYPE_CHECKING:
    from minidock.net.firewall.rules import Rule


_TOOL = {4: "iptables", 6: "ip6tables"}


def restore(text: str, family: int = 4) -> None:
    """Feed one batch to `iptables-restore --noflush -w`; Internal on failure."""
    if not text.strip():
        return
    tool = _TOOL[family] + "-restore"
    gen = None
    if family == 4:
        from minidock.net.firewall import fwcheck
        gen = fwcheck.before_change()       # drift tracking (fwcheck.py): ~0.1 ms
    try:
        proc = subprocess.run([tool, "--noflush", "-w"], input=text,
                              capture_output=True, text=True)
    except FileNotFoundError as err:
        raise Internal(f"{tool} not found: install iptables") from err
    if proc.returncode != 0:
        msg = " ".join(proc.stderr.split())
        raise Internal(f"{tool} failed: {msg}")
    if family == 4:
        fwcheck.after_change(gen, fwcheck.commits(text))


def save(family: int = 4) -> str:
    """The current ruleset as `iptables-save` prints it ("" when no table exists)."""
    tool = _TOOL[family] + "-save"
    try:
        proc = subprocess.run([tool], capture_output=True, text=True)
    except FileNotFoundError as err:
        raise Internal(f"{tool} not found: install iptables") from err
    if proc.returncode != 0:
        raise Internal(f"{tool} failed: {proc.stderr.strip()}")
    return proc.stdout


def existing_chains(saved: str) -> set[tuple[str, str]]:
    """(table, chain) for every chain declared in an iptables-save text."""
    out: set[tuple[str, str]] = set()
    table = ""
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":"):
            out.add((table, line[1:].split()[0]))
    return out


def chains_batch(wanted: dict[str, list[str]], saved: str,
                 policies: dict[tuple[str, str], str] | None = None) -> str:
    """The restore text declaring the chains of `wanted` that `saved` lacks, plus
    built-in chain policies (pure)."""
    have = existing_chains(saved)
    out = []
    tables = list(wanted) + [t for (t, _c) in (policies or {}) if t not in wanted]
    for table in tables:
        lines = [f":{c} {p} [0:0]" for (t, c), p in (policies or {}).items() if t == table]
        lines += [f":{c} - [0:0]" for c in wanted.get(table, []) if (table, c) not in have]
        if lines:
            out.append(f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n")
    return "".join(out)


def ensure_chains(wanted: dict[str, list[str]], saved: str | None = None,
                  policies: dict[tuple[str, str], str] | None = None, family: int = 4) -> None:
    """Create the missing chains of `wanted` (never flushes one); idempotent."""
    restore(chains_batch(wanted, save(family) if saved is None else saved, policies), family)


def present(rules: Iterable["Rule"], saved: str) -> list["Rule"]:
    """The rules of `rules` that `saved` (an iptables-save text) already holds."""
    from minidock.net.firewall.rules import parse_save
    table = parse_save(saved)
    return [r for r in rules if r.spec() in table.get((r.table, r.chain), [])]


def apply(rules: list["Rule"], family: int = 4) -> None:
    """Add `rules` in one batch (inserts at their positions, appends the rest)."""
    if rules:
        from minidock.net.firewall.rules import render
        restore(render(rules), family)
        if _pl.TRACING:
            for r in rules:
                op = f"-I {r.chain} {r.position}" if r.position else f"-A {r.chain}"
                _pl.note("+", "iptables", f"-t {r.table} {op} {r.spec()}")


def ensure(rules: list["Rule"], saved: str | None = None, family: int = 4) -> list["Rule"]:
    """Add only the rules of `rules` not already present; returns those added."""
    if not rules:
        return []
    have = set(present(rules, save(family) if saved is None else saved))
    missing = [r for r in rules if r not in have]
    apply(missing, family)
    return missing


def remove(rules: list["Rule"], family: int = 4) -> None:
    """Delete `rules` in one batch; rules already gone are skipped (idempotent)."""
    if not rules:
        return
    from minidock.net.firewall.rules import render
    try:
        restore(render(rules, delete=True), family)
    except Internal:
        still = present(rules, save(family))
        if still:
            restore(render(still, delete=True), family)
        rules = still
    if _pl.TRACING:
        for r in rules:
            _pl.note("-", "iptables", f"-t {r.table} -D {r.chain} {r.spec()}")


def to_data(rules: list["Rule"]) -> list[list[object]]:
    """Rules as JSON-able lists, for records that must remove them later."""
    return [[r.table, r.chain, list(r.args), r.position] for r in rules]


def from_data(data: Iterable[Iterable[object]]) -> list["Rule"]:
    from minidock.net.firewall.rules import Rule
    out = []
    for table, chain, args, position in data:  # type: ignore[misc]
        out.append(Rule(str(table), str(chain), tuple(args), position))  # type: ignore[arg-type]
    return out
