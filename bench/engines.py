"""The engines under test, one bench host each: minidock and its peers Docker and Podman.

Each engine offers the same few verbs so that every benchmark is written once:
`cli(*args)` runs the engine's CLI inside the host's netns, `timed(*args)` does the
same and returns wall milliseconds, `pid(cid)` / `ip(cid)` read a container's state,
`helpers()` lists the engine's long-lived processes (what the memory figure sums), and
`destroy()` removes everything the engine made.

Docker is dockerd 20.10 started by hand inside the bench netns with its own data root,
exec root, socket, pidfile and cgroup parent (it then starts its own containerd).
Podman runs with its own --root/--runroot/--tmpdir/--network-config-dir, cgroupfs and
the file events backend. If a peer is missing or cannot start, `unavailable` says why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.hosts import LIVE, BenchHost, child_env, comm, kill_pids, pss_kib

REPO = Path(__file__).resolve().parents[1]
BUSYBOX_TAR = REPO / "build" / "busybox.tar"
MINIDOCK = str(REPO / ".venv" / "bin" / "minidock")
CGROUP_ROOT = "/sys/fs/cgroup"
# Debian's docker.io CLI (20.10), not a newer `docker` earlier on PATH
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


class Engine(BenchHost):
    label = "engine"
    unavailable: str = ""

    def __init__(self) -> None:
        super().__init__(self.label)
        self.env = child_env()

    def argv(self) -> list[str]:
        raise NotImplementedError

    def cli(self, *args: str, check: bool = True, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.enter(), *self.argv(), *args], capture_output=True,
                              text=True, timeout=timeout, env={**self.env, **(env or {})})
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.label} {' '.join(args)}: exit {proc.returncode}: "
                               f"{proc.stderr.strip()[-400:]}")
        return proc

    def timed(self, *args: str) -> float:
        t0 = time.perf_counter()
        self.cli(*args)
        return (time.perf_counter() - t0) * 1000

    def pid(self, cid: str) -> int:
        return int(self.cli("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip())

    def ip(self, cid: str) -> str:
        return self.cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()

    def load_image(self) -> None:
        self.cli("load", "-i", str(BUSYBOX_TAR))

    def remove_all(self) -> None:
        ids = self.cli("ps", "-aq", check=False).stdout.split()
        if ids:
            self.cli("rm", "-f", *ids, check=False, timeout=3600)

    def helpers(self) -> dict[int, str]:
        """pid -> name of the engine's helper processes: those in the bench netns."""
        return {pid: comm(pid) for pid in self.pids()}

    def helper_pss_kib(self) -> tuple[int, dict[str, int]]:
        by_name: dict[str, int] = {}
        for pid, name in self.helpers().items():
            by_name[name] = by_name.get(name, 0) + pss_kib(pid)
        return sum(by_name.values()), by_name

    def destroy(self) -> None:
        try:
            self.remove_all()
        except Exception:
            pass
        super().destroy()

    def destroy_host(self) -> None:
        """BenchHost.destroy alone: no engine command first."""
        super().destroy()


class Minidock(Engine):
    label = "minidock"

    def __init__(self) -> None:
        super().__init__()
        self.env.update(MINIDOCK_ROOT=os.path.join(self.dir, "root"),
                        MINIDOCK_EXEC_ROOT=os.path.join(self.dir, "run"))

    def argv(self) -> list[str]:
        return [MINIDOCK]

    def load_image(self) -> None:
        self.cli("image", "load", "-i", str(BUSYBOX_TAR))

    def discard(self) -> None:
        """Destroy the host without `rm -f` of each container: its processes killed,
        mounts, netns (and with it every rule and interface) and directory removed, then
        the containers' cgroups. For a fleet of thousands, whose one-by-one removal
        (each through iptables-restore over every other container's rules) would take
        longer than the fleet's measurements; `remove_all` is what a user runs."""
        from minidock.runtime import cgroups
        parents = {os.path.dirname(p) for p in
                   cgroups.plan(os.path.join(self.dir, "root"), "x").values()}
        self.destroy_host()
        for parent in parents:
            for sub in os.listdir(parent) if os.path.isdir(parent) else []:
                if os.path.isdir(os.path.join(parent, sub)):
                    _rmdir(os.path.join(parent, sub))
            _rmdir(parent)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _new_paths(paths: list[str]) -> list[str]:
    return [p for p in paths if not os.path.exists(p)]


class Docker(Engine):
    """dockerd (+ its own containerd) inside the bench netns, talked to on its socket."""

    label = "docker"
    # paths dockerd 20.10 may create outside its data/exec roots: removed if we made them
    OUTSIDE = ["/etc/docker", "/run/docker", "/var/lib/docker", "/run/containerd"]

    def __init__(self) -> None:
        super().__init__()
        self.sock = os.path.join(self.dir, "docker.sock")
        self.cgroup_parent = f"/{self.name}"
        self.created_outside: list[str] = []
        self.daemon_pid = 0
        if not (shutil.which("dockerd") and shutil.which(DOCKER_CLI)):
            self.unavailable = "not installed"

    def argv(self) -> list[str]:
        return [DOCKER_CLI, "-H", f"unix://{self.sock}"]

    def start(self) -> None:
        """Start dockerd and wait for its socket to answer (polling is fine in a bench)."""
        self.created_outside = _new_paths(self.OUTSIDE)
        Path(self.dir, "daemon.json").write_text("{}\n")
        log = open(os.path.join(self.dir, "dockerd.log"), "w")
        cmd = [*self.enter(), "dockerd", "--data-root", os.path.join(self.dir, "data"),
               "--exec-root", os.path.join(self.dir, "exec"), "-H", f"unix://{self.sock}",
               "--pidfile", os.path.join(self.dir, "docker.pid"),
               "--config-file", os.path.join(self.dir, "daemon.json"),
               "--cgroup-parent", self.cgroup_parent, "--log-level", "warn"]
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                env=self.env, start_new_session=True)
        self.daemon_pid = proc.pid          # nsenter execs dockerd: same pid
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                self.unavailable = f"dockerd exited {proc.returncode} (see its log)"
                return
            if self.cli("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        self.unavailable = "dockerd did not answer in 60 s"

    def destroy(self) -> None:
        if self not in LIVE:
            return
        if self.daemon_pid and not self.unavailable:
            try:
                self.remove_all()
            except Exception:
                pass
        if self.daemon_pid:
            try:
                os.kill(self.daemon_pid, signal.SIGTERM)
                for _ in range(100):        # dockerd stops containerd, then exits
                    os.kill(self.daemon_pid, 0)
                    if _zombie_or_gone(self.daemon_pid):
                        break
                    time.sleep(0.1)
                else:
                    kill_pids([self.daemon_pid])
            except ProcessLookupError:
                pass
        self.unavailable = self.unavailable or "stopped"
        super(Engine, self).destroy()
        _remove_cgroup(self.cgroup_parent)
        for path in self.created_outside:
            shutil.rmtree(path, ignore_errors=True)


class Podman(Engine):
    label = "podman"
    OUTSIDE = ["/run/containers", "/var/lib/containers", "/run/libpod"]

    def __init__(self) -> None:
        super().__init__()
        self.cgroup_parent = f"/{self.name}"
        self.created_outside = _new_paths(self.OUTSIDE)
        self.made_libpod_parent = not os.path.exists(f"{CGROUP_ROOT}/memory/libpod_parent")
        if not shutil.which("podman"):
            self.unavailable = "not installed"

    def argv(self) -> list[str]:
        d = self.dir
        return ["podman", "--root", f"{d}/root", "--runroot", f"{d}/runroot",
                "--tmpdir", f"{d}/tmp", "--network-config-dir", f"{d}/net",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--storage-driver", "overlay"]

    def start(self) -> None:
        try:
            self.load_image()
            self.cli("run", "--rm", "--net", "none", *self.run_args(), "busybox", "true")
        except Exception as err:
            self.unavailable = f"cannot run here: {str(err)[-200:]}"

    def run_args(self) -> list[str]:
        # root here lacks CAP_SYS_RESOURCE: runc cannot set podman's default (high) rlimits
        return ["--cgroup-parent", self.cgroup_parent,
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    def remove_all(self) -> None:
        self.cli("rm", "-af", "-t", "0", check=False, timeout=3600)

    def destroy(self) -> None:
        if self not in LIVE:
            return
        super().destroy()
        _remove_cgroup(self.cgroup_parent)
        if self.made_libpod_parent:
            _remove_cgroup("/libpod_parent")
        for path in self.created_outside:
            shutil.rmtree(path, ignore_errors=True)


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _remove_cgroup(rel: str) -> None:
    """rmdir a cgroup and its children in every v1 controller (v2: the one tree)."""
    for ctrl in os.listdir(CGROUP_ROOT):
        top = os.path.join(CGROUP_ROOT, ctrl, rel.lstrip("/"))
        if not os.path.isdir(top) or os.path.islink(os.path.join(CGROUP_ROOT, ctrl)):
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
