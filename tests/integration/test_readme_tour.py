"""The README's tour runs as written: every ```sh block after a `<!-- tour -->` marker,
in order, in one throwaway test host (its netns, root and exec-root), from the
repository's directory with .venv/bin on PATH, each block under `bash -e`."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

MARKER = "<!-- tour -->"


def tour_blocks(text: str) -> list[str]:
    """The shell blocks that follow a tour marker (the README decides what runs)."""
    return [m.group(1) for m in re.finditer(
        re.escape(MARKER) + r"\s*\n```sh\n(.*?)\n```", text, re.S)]


def test_tour_blocks_are_found() -> None:
    blocks = tour_blocks((REPO / "README.md").read_text())
    assert len(blocks) >= 6, "the tour has a runnable block per section"


def test_readme_tour_runs_as_written(bare_host) -> None:
    h = bare_host
    env = dict(h.env, PATH=f"{REPO}/.venv/bin:{os.environ['PATH']}")
    for block in tour_blocks((REPO / "README.md").read_text()):
        p = subprocess.run(["nsenter", f"--net={h.netns}", "bash", "-e", "-o", "pipefail",
                            "-x", "-c", block], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, f"tour block failed:\n{block}\n--- output\n{p.stdout}\n{p.stderr}"
        assert "Traceback" not in p.stderr, p.stderr
    h.md("rm", "-f", *h.md("ps", "-aq").stdout.split(), check=False)
    h.md("network", "prune", "-f")
    h.stop_template()
    assert h.leaks() == []
