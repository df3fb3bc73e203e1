"""Pure parts of reliability: the fault hook's firing points, firewall drift parsing,
and which rules the sweep calls unowned."""

from __future__ import annotations

import struct

import pytest

from minidock import pipeline
from minidock.errors import FaultInjected
from minidock.net.firewall import fwcheck
from minidock.net.kernel import nfnetlink
from minidock.net.firewall.rules import Rule


@pytest.fixture
def fault(monkeypatch):
    def set_fault(spec: str) -> None:
        monkeypatch.setattr(pipeline, "_FAULT", spec)
    return set_fault


def test_fault_after_a_step_with_undo_runs_its_undo(fault) -> None:
    fault("b")
    undone = []
    with pytest.raises(FaultInjected, match="after step b"):
        with pipeline.Pipeline("t") as p:
            p.step("a", lambda: None)
            p.undo("a", undone.append, "a")
            p.step("b", lambda: None)
            p.undo("b", undone.append, "b")
            p.step("c", lambda: None)
    assert undone == ["b", "a"]


def test_fault_after_a_step_without_undo_fires_before_the_next(fault) -> None:
    fault("a")
    ran = []
    with pytest.raises(FaultInjected):
        with pipeline.Pipeline("t") as p:
            p.step("a", ran.append, "a")
            p.step("b", ran.append, "b")
    assert ran == ["a"]


def test_fault_on_the_last_step_fires_at_commit(fault) -> None:
    fault("z")
    with pytest.raises(FaultInjected):
        with pipeline.Pipeline("t") as p:
            p.step("z", lambda: None)
            p.commit()


def test_teardown_faults_propagate(fault) -> None:
    fault("two")
    ran = []
    with pytest.raises(FaultInjected):
        pipeline.best_effort([("one", lambda: ran.append(1)), ("two", lambda: ran.append(2)),
                              ("three", lambda: ran.append(3))])
    assert ran == [1, 2]


def test_no_fault_no_effect(fault) -> None:
    fault("")
    with pipeline.Pipeline("t") as p:
        assert p.step("a", lambda: 7) == 7
        p.commit()


def _nlmsg(mtype: int, attrs: bytes) -> bytes:
    body = struct.pack("=BBH", 0, 0, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 1, 0) + body


def _attr(kind: int, data: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * (-len(data) % 4)


def test_parse_gen() -> None:
    msg = _nlmsg((10 << 8) | 15, _attr(1, struct.pack(">I", 42)) + _attr(2, b"\0\0\0\1"))
    assert nfnetlink.parse_gen(msg) == 42
    assert nfnetlink.parse_gen(_nlmsg(2, b"\0" * 16)) is None
    assert nfnetlink.parse_gen(b"") is None


def test_parse_rule_dump_counts_per_chain() -> None:
    rule = lambda chain: _nlmsg((10 << 8) | 6, _attr(1, b"filter\0") + _attr(2, chain + b"\0"))
    counts: dict[str, int] = {}
    data = rule(b"FORWARD") + rule(b"FORWARD") + rule(b"MINIDOCK-USER")
    assert not nfnetlink.parse_rule_dump(data, counts)
    assert nfnetlink.parse_rule_dump(_nlmsg(3, b""), counts)
    assert counts == {"FORWARD": 2, "MINIDOCK-USER": 1}


def test_commits_counts_table_blocks_with_content() -> None:
    assert fwcheck.commits("*filter\n-A X -j RETURN\nCOMMIT\n*nat\n-A Y -j RETURN\nCOMMIT\n") == 2
    assert fwcheck.commits("*filter\n-A X -j RETURN\nCOMMIT\n*nat\nCOMMIT\n") == 1
    assert fwcheck.commits("") == 0


def test_unowned_keeps_owned_and_foreign_drops_extra_and_duplicates() -> None:
    from ipaddress import IPv4Network
    dnat = "! -i minidock0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
    masq = "-s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE"
    state = {
        ("nat", "MINIDOCK"): ["-i minidock0 -j RETURN", dnat, dnat,
                              dnat.replace("8080", "9999")],
        ("nat", "POSTROUTING"): ["-s 172.17.0.0/16 ! -o minidock0 -j MASQUERADE", masq,
                                 masq.replace("172.17", "10.1")],
        ("filter", "FORWARD"): ["-j SOMEONE-ELSE"],
    }
    wanted = [Rule("nat", "MINIDOCK", tuple("-i minidock0 -j RETURN".split())),
              Rule("nat", "MINIDOCK", tuple(dnat.split())),
              Rule("nat", "POSTROUTING", tuple(masq.split()))]
    extra = fwcheck._unowned(state, wanted, [IPv4Network("172.17.0.0/16")])
    assert [(r.chain, r.spec()) for r in extra] == [
        ("MINIDOCK", dnat), ("MINIDOCK", dnat.replace("8080", "9999"))]
