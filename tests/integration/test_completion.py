"""`minidock completion bash` driven by bash itself: the script is sourced, `complete -p`
shows it registered, and COMP_WORDS / COMP_CWORD give what TAB would offer."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def _bash_complete(h, line: str) -> list[str]:
    words = line.split(" ")
    script = ("source <(minidock completion bash) && complete -p minidock >&2 && "
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}) && "
              f"COMP_CWORD={len(words) - 1} && _minidock && "
              'for c in "${COMPREPLY[@]}"; do echo "$c"; done')
    env = dict(h.env, PATH=f"{REPO}/.venv/bin:{os.environ['PATH']}")
    p = subprocess.run(["nsenter", f"--net={h.netns}", "bash", "-c", script], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "complete -o default -F _minidock minidock" in p.stderr
    return p.stdout.splitlines()


def test_bash_completes_names_commands_and_flags(host) -> None:
    h = host
    h.md("network", "create", "backend")
    h.md("run", "-d", "--name", "web", "busybox", "sleep", "1000")
    h.md("run", "-d", "--name", "worker", "busybox", "sleep", "1000")
    h.md("create", "--name", "idle", "busybox", "true")
    assert _bash_complete(h, "minidock rm w") == ["web", "worker"]
    assert _bash_complete(h, "minidock stop ") == ["idle", "web", "worker"]
    assert _bash_complete(h, "minidock r") == ["run", "restart", "rm", "rmi"]
    assert _bash_complete(h, "minidock network connect b") == ["backend", "bridge"]
    assert _bash_complete(h, "minidock network connect backend wo") == ["worker"]
    assert {"connect", "create", "ls", "rm"} <= set(_bash_complete(h, "minidock network "))
    assert _bash_complete(h, "minidock run --net b") == ["backend", "bridge"]
    assert _bash_complete(h, "minidock run -d --name x -p 80 b") == ["busybox:latest"]
    assert _bash_complete(h, "minidock run --link w") == ["web", "worker"]
    assert {"--publish", "--network", "--rm", "--link"} <= set(_bash_complete(h, "minidock run --"))
    assert _bash_complete(h, "minidock ps --f") == ["--filter", "--format"]
    assert _bash_complete(h, "minidock image r") == ["remove", "rm"]
    assert _bash_complete(h, "minidock rmi b") == ["busybox:latest"]
    assert _bash_complete(h, "minidock completion ") == ["bash", "zsh", "fish"]
    assert _bash_complete(h, "minidock --tr") == ["--trace"]


def test_names_follow_the_typed_root(host, tmp_path) -> None:
    h = host
    h.md("run", "-d", "--name", "web", "busybox", "sleep", "1000")
    other = str(tmp_path / "empty-root")
    assert _bash_complete(h, f"minidock --root {other} rm ") == []
    assert not os.path.exists(other)          # completing never creates a root
    assert _bash_complete(h, f"minidock --root {h.root} rm ") == ["web"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_scripts(bare_host, shell: str) -> None:
    out = bare_host.md("completion", shell).stdout
    assert "minidock __complete" in out
    if shutil.which(shell):
        check = ["zsh", "-n"] if shell == "zsh" else ["fish", "--no-execute"]
        p = subprocess.run(check, input=out, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
