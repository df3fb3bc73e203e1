"""The trace tree: spans nest by call, notes stay with their step, text parses back."""

from __future__ import annotations

import pytest

from minidock import trace


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    out: list[str] = []
    monkeypatch.setattr(trace, "emit", out.append)
    monkeypatch.setattr(trace, "_stack", [])
    return out


def _run_tree() -> None:
    root = trace.begin("start", pipeline=True)
    grp = trace.begin("initializeNetworking")
    step = trace.begin("connectToNetwork", "bridge")
    trace.note("+", "veth", "veth1234567 ⇄ eth0")
    trace.note("+", "iptables", "-t nat -A MINIDOCK -p tcp --dport 8080 -j DNAT")
    trace.end(step)
    trace.end(grp)
    bad = trace.begin("populateNetworkResources")
    trace.end(bad, OSError("setns: Invalid argument\nsecond line"))
    trace.end(root)


def test_tree_is_emitted_when_the_root_closes(emitted: list[str]) -> None:
    root = trace.begin("start", pipeline=True)
    trace.end(trace.begin("a"))
    assert emitted == []
    trace.end(root)
    assert len(emitted) == 1 and emitted[0].startswith("start (pipeline)")


def test_render_draws_nesting_notes_and_failures(emitted: list[str]) -> None:
    _run_tree()
    lines = emitted[0].splitlines()
    assert lines[0].startswith("start (pipeline) ")
    assert lines[1].startswith("├─ initializeNetworking ")
    assert lines[2].startswith("│  └─ connectToNetwork bridge ")
    assert lines[3] == "│        + veth veth1234567 ⇄ eth0"
    assert lines[5].startswith("└─ populateNetworkResources ")
    assert lines[5].endswith(" ms  FAILED: setns: Invalid argument")


def test_parse_reads_the_rendered_tree_back(emitted: list[str]) -> None:
    _run_tree()
    (root,) = trace.parse("noise before\n" + emitted[0])
    assert root.name == "start" and root.pipeline and root.depth == 0
    init, pop = root.children
    assert (init.name, pop.name, pop.error) == (
        "initializeNetworking", "populateNetworkResources", "setns: Invalid argument")
    (conn,) = init.children
    assert (conn.name, conn.detail, conn.depth, conn.pipeline) == (
        "connectToNetwork", "bridge", 2, False)
    assert conn.notes == ["+ veth veth1234567 ⇄ eth0",
                          "+ iptables -t nat -A MINIDOCK -p tcp --dport 8080 -j DNAT"]
    paths = [p for p, _n in trace.walk([root])]
    assert paths[2] == ("start", "initializeNetworking", "connectToNetwork")


def test_an_exception_closes_children_left_open(emitted: list[str]) -> None:
    root = trace.begin("rm", "web", pipeline=True)
    trace.begin("left_open")
    trace.end(root, RuntimeError("boom"))
    (node,) = trace.parse(emitted[0])
    assert node.detail == "web" and node.error == "boom"
    assert [c.name for c in node.children] == ["left_open"]
    assert trace._stack == []
