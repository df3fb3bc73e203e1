"""The venv's `minidock` command: python -S with the paths `site` would have added."""

from __future__ import annotations

import os
import subprocess
import sys

from minidock import launcher


def test_script_runs_without_site(tmp_path) -> None:
    path = tmp_path / "minidock"
    path.write_text(launcher.script(sys.executable, launcher.site_paths()))
    path.chmod(0o755)
    assert path.read_text().startswith(f"#!{sys.executable} -S\n")
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("minidock version ")
    probe = subprocess.run([sys.executable, "-S", str(path), "--version"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout == out.stdout


def test_site_paths_are_site_packages_then_the_checkout() -> None:
    paths = launcher.site_paths()
    assert any(p.endswith("site-packages") for p in paths)
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(launcher.__file__)))
    assert checkout in paths or any(checkout.startswith(p) for p in paths)
    assert not set(paths) & launcher._stdlib_paths()
