"""Firewall rules as data: what Docker's bridge driver programs, as `Rule` values.

Every function here returns a list of `Rule`s and touches nothing; `net/firewall/iptables.py`
turns a list into one `iptables-restore --noflush` batch, and the same list (rendered
with `delete=True`) removes it. Rule arguments are spelled exactly as `iptables-save`
prints them, so a list can be compared with a saved ruleset rule for rule.

Placement follows Docker 20.10 (docker-facts section 3): driver-wide jumps sit at the
top of FORWARD (MINIDOCK-USER first, then ISOLATION-STAGE-1); per-network rules are
inserted above older networks' (newest bridge on top, FORWARD rules right below the
two jumps, i.e. from position 3); per-port and per-link rules are appended.
`simulate` applies a list to a dict of chains with the same -A / -I N / -D semantics,
so tests can check the resulting ruleset without a kernel.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Iterable, NamedTuple

CHAIN = "MINIDOCK"
ISOLATION_1 = "MINIDOCK-ISOLATION-STAGE-1"
ISOLATION_2 = "MINIDOCK-ISOLATION-STAGE-2"
USER = "MINIDOCK-USER"

CHAINS: dict[str, list[str]] = {
    "filter": [CHAIN, ISOLATION_1, ISOLATION_2, USER],
    "nat": [CHAIN],
}
TABLES = ("filter", "nat")
BUILTIN_CHAINS: dict[str, list[str]] = {
    "filter": ["INPUT", "FORWARD", "OUTPUT"],
    "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
}

# Per-network FORWARD rules go below MINIDOCK-USER and ISOLATION-STAGE-1 jumps.
_FORWARD_TOP = 3


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


def _r(table: str, chain: str, args: str, position: int | None = None) -> Rule:
    return Rule(table, chain, tuple(args.split()), position)


# -- rule builders ---------------------------------------------------------------------


def driver_rules(userland_proxy: bool) -> list[Rule]:
    """Rules made once at driver init (chains must exist first: see chain_decls)."""
    output = "-m addrtype --dst-type LOCAL -j " + CHAIN
    if userland_proxy:
        output = "! -d 127.0.0.0/8 " + output
    return [
        _r("filter", "FORWARD", f"-j {USER}", 1),
        _r("filter", "FORWARD", f"-j {ISOLATION_1}", 2),
        _r("filter", ISOLATION_1, "-j RETURN"),
        _r("filter", ISOLATION_2, "-j RETURN"),
        _r("filter", USER, "-j RETURN"),
        _r("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {CHAIN}"),
        _r("nat", "OUTPUT", output),
    ]


def network_rules(bridge: str, subnet: IPv4Network, *, icc: bool, masquerade: bool,
                  internal: bool, userland_proxy: bool, iptables: bool = True) -> list[Rule]:
    """Per-bridge FORWARD and NAT rules (isolation rules: see isolation_rules)."""
    if not iptables:
        return []
    br = bridge
    icc_rule = _icc_rule(br, icc, _FORWARD_TOP)
    if internal:
        return [icc_rule]
    rules = [
        _r("filter", "FORWARD", f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
           _FORWARD_TOP),
        _r("filter", "FORWARD", f"-o {br} -j {CHAIN}", _FORWARD_TOP + 1),
        _r("filter", "FORWARD", f"-i {br} ! -o {br} -j ACCEPT", _FORWARD_TOP + 2),
        _icc_rule(br, icc, _FORWARD_TOP + 3),
    ]
    if masquerade:
        rules.append(_r("nat", "POSTROUTING", f"-s {subnet} ! -o {br} -j MASQUERADE", 1))
    if userland_proxy:
        rules.append(_r("nat", CHAIN, f"-i {br} -j RETURN", 1))
    else:
        rules.append(_r("nat", "POSTROUTING", f"-o {br} -m addrtype --src-type LOCAL -j MASQUERADE", 1))
    return rules


def _icc_rule(br: str, icc: bool, position: int) -> Rule:
    if icc:
        return _r("filter", "FORWARD", f"-i {br} -o {br} -j ACCEPT", position)
    return _r("filter", "FORWARD", f"-i {br} -o {br} -j DROP")  # Docker appends the DROP


def isolation_rules(bridge: str, subnet: IPv4Network, internal: bool) -> list[Rule]:
    """Keep this bridge's traffic off other bridges (and, internal, off everything else)."""
    rules = []
    if internal:
        rules += [
            _r("filter", ISOLATION_1, f"! -d {subnet} -i {bridge} -j DROP", 1),
            _r("filter", ISOLATION_1, f"! -s {subnet} -o {bridge} -j DROP", 1),
        ]
    rules += [
        _r("filter", ISOLATION_1, f"-i {bridge} ! -o {bridge} -j {ISOLATION_2}", 1),
        _r("filter", ISOLATION_2, f"-o {bridge} -j DROP", 1),
    ]
    return rules


def port_rules(bridge: str, container_ip: IPv4Address, proto: str, host_ip: str,
               host_port: int, container_port: int, userland_proxy: bool) -> list[Rule]:
    """Rules publishing container_ip:container_port on host_ip:host_port (appended)."""
    ip, br, p = container_ip, bridge, proto
    dnat = f"-p {p} -m {p} --dport {host_port} -j DNAT --to-destination {ip}:{container_port}"
    if userland_proxy:
        dnat = f"! -i {br} {dnat}"
    if host_ip and host_ip not in ("0.0.0.0", "::"):
        dnat = f"-d {host_ip}/32 {dnat}"
    match = f"-p {p} -m {p} --dport {container_port}"
    return [
        _r("filter", CHAIN, f"-d {ip}/32 ! -i {br} -o {br} {match} -j ACCEPT"),
        _r("nat", "POSTROUTING", f"-s {ip}/32 -d {ip}/32 {match} -j MASQUERADE"),
        _r("nat", CHAIN, dnat),
    ]


def accept_pair(bridge: str, src_ip: str, dst_ip: str, proto: str, port: int) -> list[Rule]:
    """A link's two filter MINIDOCK ACCEPT rules: src->dst:port and the replies."""
    ifaces = f"-i {bridge} -o {bridge} -p {proto} -m {proto}"
    return [
        _r("filter", CHAIN, f"-s {src_ip}/32 -d {dst_ip}/32 {ifaces} --dport {port} -j ACCEPT"),
        _r("filter", CHAIN, f"-s {dst_ip}/32 -d {src_ip}/32 {ifaces} --sport {port} -j ACCEPT"),
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


def chain_decls(tables: Iterable[str] = TABLES, chains: dict[str, list[str]] | None = None) -> str:
    """An iptables-restore fragment declaring minidock's chains, one *table block each.

    Careful: with --noflush, declaring a chain that exists FLUSHES it; callers declare
    only missing chains (pass `chains` to choose them) and never MINIDOCK-USER if present.
    """
    chains = CHAINS if chains is None else chains
    out = []
    for table in tables:
        names = chains.get(table, [])
        if names:
            out.append(f"*{table}\n" + "".join(f":{c} - [0:0]\n" for c in names) + "COMMIT\n")
    return "".join(out)


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
