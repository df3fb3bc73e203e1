"""The `minidock` command file of the venv, written without the `site` module.

pip's console script starts `python3` with `site`, which scans site-packages and runs
every `.pth` file there (setuptools' distutils hack, the editable install's path): about
3 ms of every command, on the start path of every container. `make setup` replaces that
script with this one: `python3 -S`, and the two directories `site` would have added
(the venv's site-packages, then the checkout) put on sys.path directly, in the order
`site` uses. Everything else is as pip's script: the same interpreter, environment
variables honoured, `minidock.cli:main`.

    python -m minidock.launcher PATH    (write the launcher at PATH, e.g. .venv/bin/minidock)
"""

from __future__ import annotations

import os
import sys


def script(python: str, paths: list[str]) -> str:
    """The launcher's text (pure)."""
    return (f"#!{python} -S\n"
            "# minidock's command, written by `make setup` (minidock/launcher.py): like\n"
            "# pip's console script, without `site` (~3 ms per command).\n"
            "import sys\n"
            f"sys.path.extend({paths!r})\n"
            "from minidock.cli import main\n"
            "sys.exit(main())\n")


def site_paths() -> list[str]:
    """What `site` adds to sys.path in this interpreter, in its order (run with site;
    sys.path[0], the script's or current directory, is not `site`'s)."""
    stdlib = _stdlib_paths()
    out: list[str] = []
    for p in sys.path[1:]:
        if p and os.path.isdir(p) and p not in stdlib and p not in out:
            out.append(p)
    return out


def _stdlib_paths() -> set[str]:
    import subprocess
    out = subprocess.run([sys.executable, "-S", "-c", "import sys; print('\\n'.join(sys.path))"],
                         capture_output=True, text=True, check=True).stdout
    return {p for p in out.splitlines() if p}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m minidock.launcher PATH", file=sys.stderr)
        return 2
    target = argv[0]
    tmp = target + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(script(sys.executable, site_paths()))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
