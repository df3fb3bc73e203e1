"""Firewall rules as data: the `Rule` value, minidock's chains, rendering a list for
`iptables-restore`, and parsing and simulating rulesets.

Everything here is pure; the builders live with their owners (the bridge driver's in
net/drivers/bridge/rules.py, a link's ACCEPT pair below); `net/firewall/iptables.py`
turns a list into one `iptables-restore --noflush` batch, and the same list (rendered
with `delete=True`) removes it. Rule arguments are spelled exactly as `iptables-save`
prints them, so a list can be compared with a saved ruleset rule for rule.
`simulate` applies a list to a dict of chains with the same -A / -I N / -D semantics,
so tests can check the resulting ruleset without a kernel.
"""

from __future__ import annotations

from minidock.hints import Iterable, NamedTuple

CHAIN = "MINIDOCK"
ISOLATION_1 = "MINIDOCK-ISOLATION-STAGE-1"
ISOLATION_2 = "MINIDOCK-ISOLATION-STAGE-2"
USER = "MINIDOCK-USER"

CHAINS: dict[str, list[str]] = {
    "filter": [CHAIN, ISOLATION_1, ISOLATION_2, USER],
    "nat": [CHAIN],
}
CHAINS6: dict[str, list[str]] = {    # ip6tables: Docker 20.10 has no DOCKER-USER there
    "filter": [CHAIN, ISOLATION_1, ISOLATION_2],
    "nat": [CHAIN],
}
TABLES = ("filter", "nat")
BUILTIN_CHAINS: dict[str, list[str]] = {
    "filter": ["INPUT", "FORWARD", "OUTPUT"],
    "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
}

class Rule(NamedTuple):
    """One iptables rule: table, chain, args as iptables-save prints them after -A CHAIN."""

    table: str  # "filter" | "nat"
    chain: str  # "FORWARD", "MINIDOCK", ...
    args: tuple[str, ...]
    position: int | None = None  # None = append (-A); N = insert at N (-I CHAIN N)

    def spec(self) -> str:
        """The rule's match/target text: "-s 172.17.0.2/32 -d ... -j ACCEPT"."""
        return " ".join(_quote(a) for a in self.args)


def _quote(arg: str) -> str:
    if arg and not any(c in arg for c in " \t\"'\\"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rule(table: str, chain: str, args: str, position: int | None = None) -> Rule:
    """One rule from its iptables-save spelling (`args` split on blanks)."""
    return Rule(table, chain, tuple(args.split()), position)


# -- rule builders ---------------------------------------------------------------------


def accept_pair(bridge: str, src_ip: str, dst_ip: str, proto: str, port: int) -> list[Rule]:
    """A link's two filter MINIDOCK ACCEPT rules: src->dst:port and the replies."""
    ifaces = f"-i {bridge} -o {bridge} -p {proto} -m {proto}"
    return [
        rule("filter", CHAIN, f"-s {src_ip}/32 -d {dst_ip}/32 {ifaces} --dport {port} -j ACCEPT"),
        rule("filter", CHAIN, f"-s {dst_ip}/32 -d {src_ip}/32 {ifaces} --sport {port} -j ACCEPT"),
    ]


# -- rendering -------------------------------------------------------------------------


def render(rules: list[Rule], delete: bool = False) -> str:
    """iptables-restore --noflush input adding the rules in order, or deleting them.

    Deletion walks the list backwards with -D and the rule spec, so positions do not
    matter and what one list added the same list removes.
    """
    by_table: dict[str, list[str]] = {}
    ordered = reversed(rules) if delete else rules
    for rule in ordered:
        if delete:
            line = f"-D {rule.chain} {rule.spec()}"
        elif rule.position is None:
            line = f"-A {rule.chain} {rule.spec()}"
        else:
            line = f"-I {rule.chain} {rule.position} {rule.spec()}"
        by_table.setdefault(rule.table, []).append(line)
    return "".join(
        f"*{table}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
        for table, lines in _table_order(by_table)
    )


def _table_order(by_table: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    known = [(t, by_table[t]) for t in TABLES if t in by_table]
    return known + [(t, v) for t, v in by_table.items() if t not in TABLES]


# -- reading and simulating rulesets ---------------------------------------------------

State = dict[tuple[str, str], list[str]]


def parse_save(text: str) -> State:
    """iptables-save output -> {(table, chain): [args strings]} in order.

    Declared chains appear even when empty; counters ("[0:0]" prefixes) and comments
    are ignored.
    """
    state: State = {}
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and "] " in line:
            line = line.split("] ", 1)[1]
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            state.setdefault((table, line[1:].split()[0]), [])
        elif line.startswith("-A "):
            chain, _, args = line[3:].partition(" ")
            state.setdefault((table, chain), []).append(args.strip())
    return state


def simulate(rules: Iterable[Rule], state: State | None = None, delete: bool = False) -> State:
    """Apply rules to `state` like iptables would (-A, -I N, or -D); returns the state.

    Raises ValueError where iptables would fail (insert beyond the end + 1, delete a
    rule that is not there).
    """
    state = {} if state is None else state
    for rule in (reversed(list(rules)) if delete else rules):
        chain = state.setdefault((rule.table, rule.chain), [])
        spec = " ".join(rule.args)
        if delete:
            if spec not in chain:
                raise ValueError(f"rule not found in {rule.table} {rule.chain}: {spec}")
            chain.remove(spec)
        elif rule.position is None:
            chain.append(spec)
        else:
            if not 1 <= rule.position <= len(chain) + 1:
                raise ValueError(f"index of insertion too big: {rule.chain} {rule.position}")
            chain.insert(rule.position - 1, spec)
    return state


def dump(state: State) -> str:
    """A state printed like iptables-save without chain declarations (for tests):
    "*filter", its -A lines in iptables-save's chain order, "COMMIT", then nat."""
    out = []
    for table in TABLES:
        names = [c for t, c in state if t == table]
        builtin = [c for c in BUILTIN_CHAINS[table] if c in names]
        out.append(f"*{table}")
        for chain in builtin + sorted(c for c in names if c not in builtin):
            out += [f"-A {chain} {args}" for args in state[(table, chain)]]
        out.append("COMMIT")
    return "\n".join(out) + "\n"
