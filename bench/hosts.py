"""A bench host: one throwaway network namespace and one scratch directory per engine.

Every engine (minidock, Docker, Podman) runs in its own fresh netns (`ip netns add`,
entered with `nsenter --net=`, never `ip netns exec`: that would make a private mount
namespace and the engines' bind mounts would vanish with each command). Separate
namespaces keep the engines' bridges, default subnets and firewall chains from
meeting, and keep the machine's own network namespace untouched.

`destroy()` removes everything the host made, even after a failure or Ctrl-C: the
processes in the netns and their descendants (by PID), mounts under the scratch
directory, the netns, the directory. Process helpers (descendants, PSS, netns PIDs)
live here too because destroy and the memory benchmark both need them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

LIVE: list["BenchHost"] = []          # destroyed by the runner's finally, in reverse


def child_env(**extra: str) -> dict[str, str]:
    """The environment of everything the bench starts: bytecode caches allowed (the
    calling shell may set PYTHONDONTWRITEBYTECODE, which would recompile every run)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "MINIDOCK_CONFIG", "MINIDOCK_TRACE")}
    env.update(extra)
    return env


def ppid_map() -> dict[int, int]:
    """pid -> parent pid of every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    out[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def descendants(roots: list[int]) -> list[int]:
    """Every process below `roots` (not the roots themselves)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def pss_kib(pid: int) -> int:
    """Proportional set size of one process, KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def mounts_under(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [ln.split()[4] for ln in fh if ln.split()[4].startswith(prefix)]


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class BenchHost:
    """One netns + one scratch directory; `sh()` runs a shell script inside it."""

    def __init__(self, label: str) -> None:
        self.name = f"mdbench-{label}-{uuid.uuid4().hex[:6]}"
        self.dir = tempfile.mkdtemp(prefix=f"mdb-{label}-", dir="/tmp")
        self.netns = f"/run/netns/{self.name}"
        LIVE.append(self)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        # lo up; a fresh host does not forward; TIME_WAIT reuse for connection loops
        self.sh("ip link set lo up; sysctl -qw net.ipv4.ip_forward=0 "
                "net.ipv4.tcp_tw_reuse=1")

    def enter(self) -> list[str]:
        return ["nsenter", f"--net={self.netns}"]

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.enter(), "sh", "-c", script], capture_output=True,
                              text=True, check=check)

    def pids(self) -> list[int]:
        """Processes whose netns is this host's (asked from outside the netns)."""
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                             text=True).stdout.split()
        return [int(p) for p in out if p.isdigit()]

    def destroy(self) -> None:
        """Idempotent, best effort: processes, mounts, netns, directory."""
        if self not in LIVE:
            return
        LIVE.remove(self)
        for _ in range(3):
            pids = self.pids()
            everything = pids + descendants(pids)
            if not everything:
                break
            kill_pids(everything)
            time.sleep(0.2)
        for mp in sorted(mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        if os.path.isdir("/run/netns"):
            for entry in os.listdir("/run/netns"):
                path = os.path.join("/run/netns", entry)
                if os.path.islink(path) and os.readlink(path).startswith(self.dir):
                    os.unlink(path)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def destroy_all() -> None:
    for host in reversed(list(LIVE)):
        try:
            host.destroy()
        except Exception as err:  # keep removing the others
            print(f"bench: cleanup of {host.name}: {err}")
