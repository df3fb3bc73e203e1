"""One cgroup per container: create with its limits, join, read (OOM, stats), remove.

Which version is in charge is decided as runc does: /sys/fs/cgroup is a cgroup2 mount
(it has cgroup.controllers) -> v2, one directory; otherwise v1, one directory per
controller hierarchy, found in /proc/self/mountinfo (a v2 mount beside them, "hybrid",
holds no controllers: v1 is in charge).

Where: a parent per minidock root (`minidock` for the default root, `minidock-<8 hex
of a hash of the root's path>` for others, so test hosts and other roots never share one), a
directory per container below it (its full id). On v1 the parent sits below the CLI's
own cgroup in each hierarchy (runc's reading of a relative cgroupsPath: limits the
caller lives under still apply); on v2 below the root (a v2 cgroup with processes
cannot hand controllers down). The paths are recorded in the container (`_Cgroup`)
at start, so every later reader and the removal use exactly those.

    create (before the init exists)   mkdir parent + container dir, write the limits
    join   (the init, after "R")      "0" (the writer itself) -> cgroup.procs
    oom_killed, stats                 read
    remove (exit, rm, sweep)          rmdir the container dir (idempotent), parent
                                      when empty
"""

from __future__ import annotations

import errno
import os
import time
from minidock.hints import Any

from minidock.errors import Internal

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "cpuset", "blkio")
DEFAULT_ROOT = "/var/lib/minidock"


def parent_name(root: str) -> str:
    """`minidock` for the default root, `minidock-<hash>` for any other."""
    if os.path.abspath(root) == DEFAULT_ROOT:
        return "minidock"
    digest = 0x811C9DC5                     # FNV-1a: hashlib costs ~4 ms to import
    for byte in os.path.abspath(root).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"minidock-{digest:08x}"


def is_v2() -> bool:
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def v1_mounts(mountinfo: str) -> dict[str, str]:
    """{controller: mount point} of the v1 hierarchies (pure: mountinfo text in)."""
    out: dict[str, str] = {}
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(tail) < 3 or tail[0] != "cgroup":
            continue
        for opt in tail[2].split(","):
            if opt in V1_CONTROLLERS:
                out.setdefault(opt, fields[4])
    return out


def own_paths(proc_cgroup: str) -> dict[str, str]:
    """{controller or "": path} of a process (pure: /proc/<pid>/cgroup text in)."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def plan(root: str, cid: str) -> dict[str, str]:
    """{controller: directory} for a new container (v2: {"": directory})."""
    parent = parent_name(root)
    if is_v2():
        return {"": os.path.join(CGROUP_ROOT, parent, cid)}
    with open("/proc/self/mountinfo") as fh:
        mounts = v1_mounts(fh.read())
    with open("/proc/self/cgroup") as fh:
        own = own_paths(fh.read())
    return {c: os.path.join(mp, own.get(c, "/").lstrip("/"), parent, cid)
            for c, mp in mounts.items()}


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as err:
        raise Internal(f"cgroup: write {value!r} to {path}: "
                       f"{(err.strerror or str(err)).lower()}") from None


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _mkdir_cpuset(path: str) -> None:
    """A v1 cpuset dir takes no task until cpus and mems are set: copy the parent's
    (the hierarchy's root always has them)."""
    parent = os.path.dirname(path)
    if not os.path.exists(os.path.join(parent, "cpuset.cpus")):
        _mkdir_cpuset(parent)
    os.makedirs(path, exist_ok=True)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(os.path.join(path, name)).strip():
            _write(os.path.join(path, name), _read(os.path.join(parent, name)).strip())


def create(paths: dict[str, str], hc: dict[str, Any]) -> None:
    """Make the container's cgroup and write its limits (inverse: remove)."""
    try:
        _create(paths, hc)
    except BaseException:
        remove(paths, wait=0)
        raise


def _create(paths: dict[str, str], hc: dict[str, Any]) -> None:
    from minidock.runtime import limits
    try:
        if "" in paths:
            _create_v2(paths[""], limits.v2_files(hc))
            return
        memsw = os.path.exists(os.path.join(os.path.dirname(paths.get("memory", "/x")),
                                            "memory.memsw.limit_in_bytes"))
        files = limits.v1_files(hc, memsw)
        for ctrl, path in paths.items():
            if ctrl == "cpuset":
                _mkdir_cpuset(path)
            else:
                os.makedirs(path, exist_ok=True)
            for name, value in files.get(ctrl, {}).items():
                _write(os.path.join(path, name), value)
    except OSError as err:
        raise Internal(f"cgroup: {err.strerror or err}: {err.filename or ''}") from None


def _create_v2(path: str, files: dict[str, str]) -> None:
    parent = os.path.dirname(path)
    os.makedirs(path, exist_ok=True)
    wanted = {"memory", "cpu", "pids", "cpuset", "io"}
    avail = set(_read(os.path.join(CGROUP_ROOT, "cgroup.controllers")).split())
    enable = " ".join("+" + c for c in sorted(wanted & avail))
    for d in (CGROUP_ROOT, parent):
        if enable:
            _write(os.path.join(d, "cgroup.subtree_control"), enable)
    for name, value in files.items():
        _write(os.path.join(path, name), value)


def join(paths: dict[str, str], pid: int) -> None:
    """Move `pid` into the cgroup; 0 is the calling process (the container's init
    before it execs, an exec helper before it forks)."""
    for path in paths.values():
        _write(os.path.join(path, "cgroup.procs"), str(pid))


def remove(paths: dict[str, str] | None, wait: float = 2.0) -> None:
    """Remove the container's directories (idempotent), then the parent when empty.

    A process of the container that is still exiting keeps a directory busy for a
    moment (EBUSY): retried for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    for path in (paths or {}).values():
        while True:
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                if err.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
            break
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass                       # other containers use the parent


def oom_killed(paths: dict[str, str] | None) -> bool:
    """True when the kernel's OOM killer killed a process of this cgroup."""
    paths = paths or {}
    try:
        if "" in paths:
            text = _read(os.path.join(paths[""], "memory.events"))
        elif "memory" in paths:
            text = _read(os.path.join(paths["memory"], "memory.oom_control"))
        else:
            return False
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip() not in ("", "0"):
            return True
    return False
