"""The user's mounts (binds, volumes, tmpfs, the --init binary), made in the init.

Runs in the container's init child, in its own mount namespace, after the overlay and
the kernel filesystems and before pivot_root (rootfs.setup), so the host paths of the
sources are still in view. Each target is resolved inside the rootfs with
openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) (rootfs.resolve): an image symlink
cannot send a mount out of the rootfs, and /proc/self/fd/N magic links are refused.
The mount goes onto /proc/self/fd/<that fd>; remounting it read-only and making it
rprivate go through a fresh resolution of the same target (which now reaches the new
mount, not the directory it covers).
"""

from __future__ import annotations

import os
import stat
from minidock.hints import Any

from minidock.runtime import rootfs
from minidock.runtime import syscalls as sc

_TMPFS_FLAGS = {"noexec": sc.MS_NOEXEC, "nosuid": sc.MS_NOSUID, "nodev": sc.MS_NODEV}
INIT_PATH = "/sbin/minidock-init"


def apply(root_fd: int, mounts: list[dict[str, Any]]) -> None:
    """Mount everything in `mounts` (parents first) into the rootfs at `root_fd`."""
    from minidock.runtime.mounts import mount_order
    for m in mount_order(mounts):
        target = m["Destination"]
        if m["Type"] == "tmpfs":
            _tmpfs(root_fd, m)
            continue
        source = m["Source"]
        if m["Type"] == "bind" and not os.path.exists(source):
            os.makedirs(source, mode=0o755, exist_ok=True)      # Docker's -v behaviour
        is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        fd = rootfs.ensure_dir(root_fd, target) if is_dir else rootfs.ensure_file(root_fd, target)
        try:
            if m["Type"] == "volume" and not m.get("_NoCopy"):
                from minidock.runtime.volumes import seed
                seed(fd, source)
            sc.mount(source, f"/proc/self/fd/{fd}", None, sc.MS_BIND | sc.MS_REC)
        finally:
            os.close(fd)
        _finish(root_fd, target, not m.get("RW", True))


def _tmpfs(root_fd: int, m: dict[str, Any]) -> None:
    """A tmpfs, nosuid/nodev/noexec unless its options say exec, suid or dev (Docker)."""
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    for opt in m.get("_Flags") or []:
        if opt in _TMPFS_FLAGS:
            flags |= _TMPFS_FLAGS[opt]
        elif "no" + opt in _TMPFS_FLAGS:
            flags &= ~_TMPFS_FLAGS["no" + opt]
    if not m.get("RW", True):
        flags |= sc.MS_RDONLY
    fd = rootfs.ensure_dir(root_fd, m["Destination"])
    try:
        sc.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", flags, m.get("_Data") or None)
    finally:
        os.close(fd)


def _finish(root_fd: int, target: str, readonly: bool) -> None:
    """Read-only (a bind takes it only by remounting) and rprivate propagation."""
    fd = rootfs.resolve(root_fd, target)
    try:
        path = f"/proc/self/fd/{fd}"
        if readonly:
            sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
        sc.mount(None, path, None, sc.MS_REC | sc.MS_PRIVATE)
    finally:
        os.close(fd)


def init_mount(binary: str) -> dict[str, Any]:
    """The --init binary, bound read-only at INIT_PATH (not listed in Mounts)."""
    return {"Type": "bind", "Source": binary, "Destination": INIT_PATH, "Mode": "ro",
            "RW": False, "Propagation": "rprivate", "_Origin": "init"}


def find_init() -> str | None:
    """The init binary: MINIDOCK_INIT_PATH (dockerd's init-path; "none" = the
    built-in reaper), else Debian's static tini (a container may have no libc)."""
    wanted = os.environ.get("MINIDOCK_INIT_PATH")
    if wanted is not None:
        return None if wanted in ("", "none") else wanted
    for path in ("/usr/bin/tini-static", "/usr/bin/docker-init"):
        if os.access(path, os.X_OK):
            return path
    return None
