"""Firewall drift: notice cheaply that someone changed the ruleset (`iptables -F`,
`-X`, a reboot of the firewall service) and rebuild exactly the expected rules.

Detection costs one netlink round trip (~0.1 ms), not an `iptables-save` (~5-10 ms):
nftables keeps a per-netns *generation id* that every committed change increments
(NFT_MSG_GETGEN; iptables-nft batches are one commit each). The file
`<exec-root>/firewall` holds the generation at which minidock last knew the ruleset to
be right. Every batch minidock applies (net/firewall/iptables.py `restore`) reads the id
before and after: if the ruleset was known-good before and only that batch happened
(after == before + 1), the new id is recorded; anything else leaves the file stale,
and the next `drifted` check (each network initialisation: every `run` and network
command) asks for `repair`: one iptables-save, missing chains/rules re-added in their
places (the controller's idempotent init), per-endpoint and link rules ensured; with
`force` (`system prune`), per-container rules no record owns and duplicates are
removed too.

The expected rules are given by the caller (net/repair.py asks every driver's
`expected_rules` and adds the links' ACCEPT pairs). With the legacy iptables backend
there is no generation id: `drifted` is always False and only `system prune` repairs.
"""

from __future__ import annotations

import os
from minidock.hints import Any, Callable

from minidock.net.kernel.nfnetlink import generation, rule_counts

STATE = "firewall"

_bound: str | None = None          # the state file this process keeps up to date


def _path(exec_root: str) -> str:
    return os.path.join(exec_root, STATE)


def _load(path: str) -> dict[str, Any]:
    """The state file: {"gen": known-good generation, "want": {"table chain": n}}."""
    import json
    try:
        with open(path) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _read(path: str) -> int | None:
    gen = _load(path).get("gen")
    return gen if isinstance(gen, int) else None


def _write(path: str, gen: int, want: dict[str, int] | None = None) -> None:
    import json
    if want is None:
        want = _load(path).get("want") or {}
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"gen": gen, "want": want}, fh)
    os.replace(tmp, path)


def bind(exec_root: str) -> None:
    """Keep `<exec-root>/firewall` up to date for the batches this process applies."""
    global _bound
    _bound = _path(exec_root)


def before_change() -> int | None:
    """Called by the applier before a batch: the generation, if tracking."""
    return generation() if _bound else None


def commits(text: str) -> int:
    """How many nftables commits an iptables-restore batch makes: one per table block
    with content (measured with iptables v1.8.9 nf_tables). Pure."""
    count, body = 0, False
    for line in text.splitlines():
        if line.startswith("*"):
            body = False
        elif line.strip() and line.strip() != "COMMIT" and not body:
            body = True
            count += 1
    return count


def after_change(gen_before: int | None, batch_commits: int = 1) -> None:
    """Called after a successful batch: advance the known-good generation if the
    ruleset was known-good and only this batch happened since."""
    if gen_before is None or _bound is None:
        return
    if _read(_bound) != gen_before:
        return
    now = generation()
    if now == gen_before + batch_commits:
        _write(_bound, now)


def drifted(exec_root: str) -> bool:
    """Cheap drift check for the start of a command (see module doc): True when the
    ruleset changed and our rules are not all there any more (repair needed)."""
    bind(exec_root)
    gen = generation()
    if gen is None or _read(_bound) == gen:    # type: ignore[arg-type]
        return False
    if _counts_ok(exec_root):   # changed by someone else, ours intact (~0.5 ms)
        _write(_bound, gen)     # type: ignore[arg-type]
        return False
    return True


def _counts_ok(exec_root: str) -> bool:
    """Each chain holds at least as many rules as the driver and network rules put
    there when the ruleset was last verified (recorded in the state file, so this
    path imports nothing): a flush or a deleted chain shows; a changed rule is left
    to prune."""
    want = _load(_path(exec_root)).get("want")
    if not want:
        return False
    have: dict[str, dict[str, int] | None] = {}
    for key, n in want.items():
        table, _, chain = key.partition(" ")
        if table not in have:
            have[table] = rule_counts(table)
        counts = have[table]
        if counts is None or counts.get(chain, 0) < n:
            return False
    return True


def _want(base: list[Any]) -> dict[str, int]:
    want: dict[str, int] = {}
    for r in _unique(base):
        key = f"{r.table} {r.chain}"
        want[key] = want.get(key, 0) + 1
    return want


def repair(exec_root: str, base: list[Any], per: list[Any], subnets: list[Any],
           reinit: Callable[[], None], force: bool = False) -> list[str]:
    """Re-add what is missing of `base` (driver and network rules: by `reinit`, the
    idempotent network initialisation, so they land in their places) and of `per`
    (endpoint and link rules); with `force`, also drop per-container rules that are
    not in `per` and duplicates (`subnets`: the networks', for hairpin MASQUERADEs).
    Records the resulting generation as known-good."""
    from minidock.net.firewall import iptables
    from minidock.net.firewall.rules import CHAINS, parse_save
    bind(exec_root)
    out: list[str] = []
    saved = iptables.save()
    have = iptables.existing_chains(saved)
    missing_chain = any((t, c) not in have for t, cs in CHAINS.items() for c in cs)
    if missing_chain or len(iptables.present(base, saved)) < len(set(base)):
        reinit()
        out.append("firewall: chains and network rules restored")
        saved = iptables.save()
    added = iptables.ensure(_unique(per), saved)
    if added:
        out.append(f"firewall: {len(added)} container rules restored")
        saved = iptables.save()
    if force:
        extra = _unowned(parse_save(saved), base + per, subnets)
        if extra:
            iptables.remove(extra)
            out.append(f"firewall: {len(extra)} unowned or duplicate rules removed")
    gen = generation()
    if gen is not None:
        _write(_path(exec_root), gen, _want(base))
    return out


def _unique(rules: list[Any]) -> list[Any]:
    seen, out = set(), []
    for r in rules:
        key = (r.table, r.chain, r.args)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


# Per-container rules live here; anything else is left to its owner (users, Docker,
# other minidock features).
_PER_CONTAINER = {("filter", "MINIDOCK"), ("nat", "MINIDOCK"), ("nat", "POSTROUTING")}


def _masq_of(spec: str, subnets: list[Any]) -> bool:
    """A hairpin MASQUERADE ("-s IP/32 -d IP/32 ... -j MASQUERADE") in our subnets."""
    from ipaddress import IPv4Address
    parts = spec.split()
    if "MASQUERADE" not in parts or "-s" not in parts:
        return False
    src = parts[parts.index("-s") + 1]
    if not src.endswith("/32"):
        return False
    try:
        ip = IPv4Address(src[:-3])
    except ValueError:
        return False
    return any(ip in net for net in subnets)


def _unowned(state: dict[tuple[str, str], list[str]], wanted: list[Any],
             subnets: list[Any]) -> list[Any]:
    """Rules in the per-container chains that no record owns, and extra copies of
    owned ones (pure: parsed iptables-save in, Rule values to delete out)."""
    from minidock.net.firewall.rules import Rule
    budget: dict[tuple[str, str, str], int] = {}
    for r in wanted:
        key = (r.table, r.chain, r.spec())
        budget[key] = 1
    out = []
    for (table, chain), specs in state.items():
        if (table, chain) not in _PER_CONTAINER:
            continue
        for spec in specs:
            if chain == "POSTROUTING" and not _masq_of(spec, subnets):
                continue           # only the hairpin MASQUERADE of a port is per-container
            key = (table, chain, spec)
            if budget.get(key, 0) > 0:
                budget[key] -= 1
            else:
                out.append(Rule(table, chain, tuple(_split(spec))))
    return out


def _split(spec: str) -> list[str]:
    import shlex
    return shlex.split(spec)
