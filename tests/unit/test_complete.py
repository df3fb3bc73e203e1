"""What `__complete` offers (names faked; commands, subcommands, flags are the CLI's own)."""

from __future__ import annotations

import pytest

from minidock.cli import complete
from minidock.context import Context

NAMES = {"container": ["db", "web", "worker"], "network": ["appnet", "bridge"],
         "image": ["busybox:latest"]}


@pytest.fixture
def offer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(complete, "names", lambda ctx, kind: NAMES.get(kind, []))
    ctx = Context("/nonexistent/root", "/nonexistent/run")

    def run(line: str) -> list[str]:
        words = line.split(" ")[1:]
        return [c for c in complete.candidates(ctx, words) if c.startswith(words[-1])]
    return run


def test_commands_and_global_flags(offer) -> None:
    assert offer("minidock r") == ["run", "restart", "rm", "rmi"]
    assert "__complete" not in offer("minidock ")
    assert offer("minidock --tr") == ["--trace"]
    assert offer("minidock --root ") == []          # a path: the shell's own completion
    assert offer("minidock --root /x rm w") == ["web", "worker"]


def test_positionals_by_command(offer) -> None:
    assert offer("minidock rm ") == NAMES["container"]
    assert offer("minidock exec w") == ["web", "worker"]
    assert offer("minidock exec web ") == []
    assert offer("minidock rmi ") == ["busybox:latest"]
    assert offer("minidock network connect ") == NAMES["network"]
    assert offer("minidock network connect appnet ") == NAMES["container"]
    assert offer("minidock network diagram a") == ["appnet"]
    assert offer("minidock run -d --name x -p 80:80 ") == ["busybox:latest"]
    assert offer("minidock run busybox ") == []


def test_flag_values_and_flags(offer) -> None:
    assert offer("minidock run --network ") == NAMES["network"]
    assert offer("minidock run --link d") == ["db"]
    assert offer("minidock run --name ") == []
    assert {"--publish", "--rm", "--network"} <= set(offer("minidock run --"))
    assert offer("minidock network ls --f") == ["--filter", "--format"]
    assert "diagram" in offer("minidock network ")
    assert offer("minidock system ") == ["info", "prune"]
    assert offer("minidock completion ") == ["bash", "zsh", "fish"]
