"""A test host with the example plugins (examples/vethnet.py, examples/simpleipam.py)
running inside it, on sockets in /run/docker/plugins of a private mount namespace
(a tmpfs mounted there by a holder process made with `unshare -m`), or in a directory
named by MINIDOCK_PLUGIN_PATH. Every minidock and shell command of the host then runs
in that mount namespace too (`nsenter --mount=/proc/<holder>/ns/mnt --net=...`).

Each plugin records the calls it receives (`calls()`), dumps what it keeps in memory
(`state()`), fails the methods listed by `fail()`, and can be killed and restarted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import MINIDOCK, REPO

EXAMPLES = REPO / "examples"
PLUGINS = {"vethnet": "vethnet.py", "simpleipam": "simpleipam.py", "macipam": "simpleipam.py"}


class PluginHost:
    """Wraps a TestHost: same md()/sh() API, run in the plugins' mount namespace."""

    def __init__(self, host: Any, where: str) -> None:
        self.host = host
        self.where = where                 # "run" (/run/docker/plugins) or "path"
        self.dir = Path(host.dir) / "plugins"
        self.dir.mkdir()
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                        "sleep", "infinity"], start_new_session=True)
        self.mnt = f"/proc/{self.holder.pid}/ns/mnt"
        self._wait_for_ns()
        if where == "run":
            self.sockdir = "/run/docker/plugins"
            os.makedirs(self.sockdir, exist_ok=True)
            self.sh_root(f"mount -t tmpfs tmpfs {self.sockdir}")
            self.env = {"MINIDOCK_PLUGIN_RETRY": "0"}
        else:
            self.sockdir = str(self.dir / "socks")
            os.makedirs(self.sockdir)
            self.env = {"MINIDOCK_PLUGIN_RETRY": "0", "MINIDOCK_PLUGIN_PATH": f"/nonexistent:{self.sockdir}"}
        self.procs: dict[str, subprocess.Popen] = {}

    def _wait_for_ns(self) -> None:
        own = os.readlink("/proc/self/ns/mnt")
        for _ in range(200):
            try:
                if os.readlink(self.mnt) != own:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("unshare -m did not start")

    def enter(self) -> list[str]:
        return ["nsenter", f"--mount={self.mnt}", f"--net={self.host.netns}"]

    # -- commands ---------------------------------------------------------------------
    def md(self, *args: str, check: bool = True, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.enter(), MINIDOCK, *args], capture_output=True, text=True,
                              timeout=timeout, env={**self.host.env, **self.env, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"minidock {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.enter(), "sh", "-c", script], capture_output=True,
                              text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script!r} exited {proc.returncode}: {proc.stderr}")
        return proc

    def sh_root(self, script: str) -> None:
        subprocess.run(["nsenter", f"--mount={self.mnt}", "sh", "-c", script], check=True)

    # -- plugins ----------------------------------------------------------------------
    def sock(self, name: str) -> str:
        if name == "macipam":           # one level down, as Docker also looks
            return f"{self.sockdir}/macipam/macipam.sock"
        return f"{self.sockdir}/{name}.sock"

    def start(self, name: str, *extra: str) -> None:
        script = EXAMPLES / PLUGINS[name]
        args = ["--sock", self.sock(name), "--record", str(self.dir / "calls.jsonl"),
                "--control", str(self.dir / f"{name}.fail"), "--state", str(self.dir / f"{name}.state")]
        if name == "macipam":
            args.append("--requires-mac")
        self.procs[name] = subprocess.Popen([*self.enter(), "python3", str(script), *args, *extra],
                                            start_new_session=True)
        for _ in range(500):
            if self.sh(f"test -S {self.sock(name)}", check=False).returncode == 0:
                return
            time.sleep(0.01)
        raise RuntimeError(f"plugin {name} did not start")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)      # nsenter exec'd python: same pid
        proc.wait()

    def restart(self, name: str) -> None:
        self.kill(name)
        self.sh(f"rm -f {self.sock(name)}")
        self.start(name)

    def fail(self, name: str, *methods: str) -> None:
        """Make these methods of plugin `name` fail ("Method die": exit unanswered)."""
        (self.dir / f"{name}.fail").write_text("".join(m + "\n" for m in methods))

    def calls(self, name: str = "") -> list[dict[str, Any]]:
        """Every call received (by all plugins, in order), or those of plugin `name`."""
        path = self.dir / "calls.jsonl"
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in entries if not name or e.get("plugin") == name]

    def methods(self, name: str = "") -> list[str]:
        return [c["method"] for c in self.calls(name)]

    def mark(self) -> int:
        """A position in the call log (see since)."""
        return len(self.calls())

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.calls()[mark:]

    def state(self, name: str) -> Any:
        path = self.dir / f"{name}.state"
        return json.loads(path.read_text()) if path.exists() else None

    # -- teardown ---------------------------------------------------------------------
    def destroy(self) -> None:
        """Remove containers and networks while the plugins live, then stop them."""
        ids = self.md("ps", "-aq", check=False).stdout.split()
        if ids:
            self.md("rm", "-f", *ids, check=False)
        self.md("network", "prune", "-f", check=False)
        for name in list(self.procs):
            self.kill(name)
        if self.where == "run":
            subprocess.run(["nsenter", f"--mount={self.mnt}", "umount", "-l", self.sockdir],
                           capture_output=True)
        os.kill(self.holder.pid, signal.SIGKILL)
        self.holder.wait()
