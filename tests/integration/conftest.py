"""Integration fixtures: a throwaway "test host" per test.

A test host is a fresh network namespace (`ip netns add`) entered with
`nsenter --net=` (not `ip netns exec`: that also unshares the mount namespace, and the
sandbox keys minidock bind-mounts would vanish with the command). Each host has its
own --root and --exec-root under a temporary directory, ip_forward 0 (a fresh
machine), and is checked for leaks and removed after the test: no veth, per-container
rule, mount under its directories or process may remain.

Tests use `host.md(...)` to run minidock inside the host and `host.sh(...)` for
root-shell checks (`ip`, `iptables-save`, `nsenter`) with tools other than minidock.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MINIDOCK = str(REPO / ".venv" / "bin" / "minidock")
BUSYBOX_TAR = REPO / "build" / "busybox.tar"

pytestmark = pytest.mark.integration


def _mounts_under(prefix: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4]
            if mp.startswith(prefix):
                out.append(mp)
    return out


class TestHost:
    """One throwaway host: its netns, its minidock root and exec-root."""

    __test__ = False   # a helper, not a test class (its name starts with "Test")

    def __init__(self) -> None:
        self.name = "mdt-" + uuid.uuid4().hex[:10]
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir="/tmp")
        self.root = os.path.join(self.dir, "root")
        self.exec_root = os.path.join(self.dir, "run")
        self.netns = f"/run/netns/{self.name}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.sh("ip link set lo up; sysctl -qw net.ipv4.ip_forward=0")
        self.env = dict(os.environ, MINIDOCK_ROOT=self.root, MINIDOCK_EXEC_ROOT=self.exec_root)
        self.env.pop("MINIDOCK_CONFIG", None)

    # -- running things inside the host -----------------------------------------------
    def md(self, *args: str, check: bool = True, input: str | None = None,
           timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run `minidock ARGS` inside the host; `check` asserts exit status 0."""
        cmd = ["nsenter", f"--net={self.netns}", MINIDOCK, *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, env={**self.env, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(
                f"minidock {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a root-shell script inside the host's netns (same mount namespace)."""
        proc = subprocess.run(["nsenter", f"--net={self.netns}", "sh", "-c", script],
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script!r} exited {proc.returncode}: {proc.stderr}")
        return proc

    def load_busybox(self) -> None:
        self.md("image", "load", "-i", str(BUSYBOX_TAR))

    def write_daemon_json(self, text: str) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        Path(self.root, "daemon.json").write_text(text)

    # -- leak check and removal -----------------------------------------------------
    def pids(self) -> list[str]:
        """Processes in the host's netns (asked from outside: `sh` and `ip` run inside
        it would list themselves)."""
        return subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                              text=True).stdout.split()

    def leaks(self) -> list[str]:
        """What minidock left behind after every container was removed."""
        found = []
        veth = self.sh("ip -o link show type veth", check=False).stdout.strip()
        if veth:
            found.append(f"veth: {veth}")
        rules = [ln for ln in self.sh("iptables-save", check=False).stdout.splitlines()
                 if "MINIDOCK" in ln and ("DNAT" in ln or "/32" in ln)]
        if rules:
            found.append(f"rules: {rules}")
        rules6 = [ln for ln in self.sh("ip6tables-save", check=False).stdout.splitlines()
                  if "MINIDOCK" in ln and ("DNAT" in ln or "/128" in ln.replace("::1/128", ""))]
        if rules6:
            found.append(f"ip6tables rules: {rules6}")
        mounts = _mounts_under(self.dir)
        if mounts:
            found.append(f"mounts: {mounts}")
        pids = self.pids()
        if pids:
            found.append(f"processes in netns: {[f'{p} {_cmdline(p)}' for p in pids]}")
        groups = [d for parent in self.cgroup_parents() if os.path.isdir(parent)
                  for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))]
        if groups:
            found.append(f"cgroups: {groups}")
        return found

    def stop_template(self) -> bool:
        """Stop the monitor template (minidock-montpl) once its last monitor has
        left, as `system prune` does; True when it is gone. It would otherwise stay
        for MINIDOCK_MONTPL_IDLE seconds, ready for the next detached start."""
        from minidock.context import Context
        from minidock.runtime import montemplate
        return montemplate.stop(Context(root=self.root, exec_root=self.exec_root), wait=10)

    def cgroup_parents(self) -> list[str]:
        """This host's cgroup parent in every hierarchy (its name hashes the root)."""
        from minidock.runtime import cgroups
        return sorted({os.path.dirname(p) for p in cgroups.plan(self.root, "x").values()})

    def destroy(self) -> None:
        """Remove everything the host made, even after a failed test (by PID only)."""
        if os.path.exists(MINIDOCK) and os.path.isdir(self.root):
            ids = self.md("ps", "-aq", check=False).stdout.split()
            if ids:
                self.md("rm", "-f", *ids, check=False)
        for pid in self.pids():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        for mp in sorted(_mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        for entry in _sandbox_links(self.exec_root):
            try:
                os.unlink(entry)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        for parent in self.cgroup_parents():
            if os.path.isdir(parent):
                for child in os.listdir(parent):
                    if os.path.isdir(os.path.join(parent, child)):
                        _rmdir_quietly(os.path.join(parent, child))
                _rmdir_quietly(parent)
        shutil.rmtree(self.dir, ignore_errors=True)


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "(gone)"


def _sandbox_links(exec_root: str) -> list[str]:
    """Entries in /run/netns that point into this host's exec-root (ip netns view)."""
    out = []
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            path = os.path.join("/run/netns", name)
            try:
                target = os.readlink(path)
            except OSError:         # not a link, or another test's link just went
                continue
            if target.startswith(exec_root):
                out.append(path)
    return out


@pytest.fixture
def host():
    """A test host with busybox:latest loaded; leak-checked after the test."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root")
    h = TestHost()
    try:
        if BUSYBOX_TAR.exists():
            h.load_busybox()
        yield h
        ids = h.md("ps", "-aq", check=False).stdout.split()
        if ids:
            h.md("rm", "-f", *ids, check=False)
        h.md("network", "prune", "-f", check=False)
        h.stop_template()
        leaks = h.leaks()
        assert not leaks, f"leaked: {leaks}"
    finally:
        h.destroy()


@pytest.fixture
def bare_host():
    """A test host with nothing loaded (image tests)."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root")
    h = TestHost()
    try:
        yield h
    finally:
        h.destroy()
