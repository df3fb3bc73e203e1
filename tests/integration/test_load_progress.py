"""`load` and `import` draw Docker's progress lines on a terminal only."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.conftest import BUSYBOX_TAR, MINIDOCK

pytestmark = pytest.mark.integration


def _on_tty(h, *args: str) -> str:
    """Run minidock under a pseudo-terminal (util-linux `script`); its output."""
    cmd = " ".join(["nsenter", f"--net={h.netns}", MINIDOCK, *args])
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=h.env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_load_shows_layer_progress_on_a_terminal_only(bare_host, tmp_path) -> None:
    h = bare_host
    out = _on_tty(h, "load", "-i", str(BUSYBOX_TAR))
    last = out.replace("\r\n", "\n").split("\r")[-2:]
    assert "Loading layer [" in out and "=>]" in out, out
    assert "MB/" in out or "kB/" in out
    assert out.rstrip().endswith("Loaded image: busybox:latest"), last
    h.md("rmi", "busybox")
    piped = h.md("load", "-i", str(BUSYBOX_TAR)).stdout
    assert piped == "Loaded image: busybox:latest\n"


def test_import_shows_progress_on_a_terminal_only(bare_host, tmp_path) -> None:
    h = bare_host
    tarball = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", "/usr/share/doc", "."], check=True)
    out = _on_tty(h, "import", str(tarball), "docs:1")
    assert "rootfs: Importing [" in out and "=>]" in out, out
    assert out.rstrip().splitlines()[-1].startswith("sha256:")
    piped = h.md("import", str(tarball), "docs:2").stdout
    assert piped.startswith("sha256:") and len(piped.splitlines()) == 1
    assert os.path.getsize(tarball) > 0
