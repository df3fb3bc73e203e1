"""The container's root filesystem: overlayfs, the kernel filesystems, pivot_root.

Runs inside the container's init child, in its own mount namespace (so every mount
here vanishes with the container: nothing to unmount on the host). Order, as runc:

    / made MS_REC|MS_PRIVATE          nothing propagates back to the host
    overlay on <cdir>/merged          lowerdir = image layers, top first
    /proc /dev /dev/pts /dev/shm /dev/mqueue /sys, device nodes, /dev symlinks
    /etc/hostname /etc/hosts /etc/resolv.conf bind-mounted from the container's files
    pivot_root(".", ".") + lazy unmount of the old root   (no chroot)
    masked paths and read-only paths (Docker's lists)
    --read-only: / and the /etc files remounted read-only (/dev, /proc... stay as they are)
    --privileged: no masks, /sys writable, the host's devices in /dev (as runc's
                  HostDevices: every char/block node outside pts, shm, mqueue)

Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT), and mounts
target the resolved fd through /proc/self/fd/N: a symlink in the image (say
`/etc/hosts -> /../../host/etc/shadow`) can never lead a mount out of the rootfs.
"""

from __future__ import annotations

import os
import stat

from minidock.runtime import syscalls as sc

_NOSUID_NOEXEC_NODEV = sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV
O_PATH = getattr(os, "O_PATH", 0o10000000)

# (major, minor, name) of the device nodes every container gets, mode 0666
DEVICES = [(1, 3, "null"), (1, 5, "zero"), (1, 7, "full"), (1, 8, "random"),
           (1, 9, "urandom"), (5, 0, "tty")]
DEV_LINKS = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
             ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
             ("pts/ptmx", "ptmx"), ("/proc/kcore", "core")]
ETC_FILES = [("HostnamePath", "/etc/hostname"), ("HostsPath", "/etc/hosts"),
             ("ResolvConfPath", "/etc/resolv.conf")]


def overlay_options(layers: list[str], upper: str, work: str) -> str:
    """Mount data for overlayfs; `layers` come lowest first, lowerdir wants top first."""
    for path in [*layers, upper, work]:
        if any(c in path for c in ",:\\"):
            raise ValueError(f"layer path {path!r} has a character overlayfs cannot take")
    lower = ":".join(reversed(layers))
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def layout(cdir: str) -> dict[str, str]:
    """The per-container overlay dirs under ctx.container_dir(id)."""
    return {k: os.path.join(cdir, k) for k in ("upper", "work", "merged")}


def prepare(cdir: str) -> None:
    """Make the container dir and its overlay dirs (create; inverse: remove the dir)."""
    os.makedirs(cdir, mode=0o710, exist_ok=True)
    for path in layout(cdir).values():
        os.makedirs(path, mode=0o755, exist_ok=True)


# -- path resolution inside the rootfs -------------------------------------------------
def resolve(root_fd: int, path: str, flags: int = O_PATH) -> int:
    """An fd for `path` resolved inside the rootfs (symlinks cannot leave it)."""
    return sc.openat2(root_fd, path, flags, sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)


def ensure_dir(root_fd: int, path: str) -> int:
    """O_PATH fd of directory `path` in the rootfs, creating missing components."""
    try:
        return resolve(root_fd, path, O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        parent, name = os.path.split(path.rstrip("/"))
        pfd = ensure_dir(root_fd, parent or "/")
        try:
            os.mkdir(name, 0o755, dir_fd=pfd)  # an O_PATH fd serves as dir_fd
        except FileExistsError:
            pass
        finally:
            os.close(pfd)
        return resolve(root_fd, path, O_PATH | os.O_DIRECTORY)


def ensure_file(root_fd: int, path: str) -> int:
    """O_PATH fd of a regular file at `path`, replacing a symlink or dir found there.

    The replacement happens in the container's upper layer, never through the link.
    """
    parent, name = os.path.split(path)
    pfd = ensure_dir(root_fd, parent)
    try:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                import shutil
                shutil.rmtree(name, dir_fd=pfd)
            else:
                os.unlink(name, dir_fd=pfd)
            st = None
        if st is None:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY,
                             0o644, dir_fd=pfd))
        return os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    finally:
        os.close(pfd)


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _mount_at(root_fd: int, path: str, source: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
    fd = ensure_dir(root_fd, path)
    try:
        sc.mount(source, _fdpath(fd), fstype, flags, data)
    finally:
        os.close(fd)


# -- the sequence ------------------------------------------------------------------------
def setup(ctr: dict, cdir: str) -> None:
    """Everything from rprivate to pivot_root; the process ends up inside the rootfs."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    dirs = layout(cdir)
    sc.mount("overlay", dirs["merged"], "overlay", 0,
             overlay_options(ctr["_Layers"], dirs["upper"], dirs["work"]))
    hc = ctr["HostConfig"]
    readonly = bool(hc.get("ReadonlyRootfs"))
    root_fd = os.open(dirs["merged"], O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _mount_kernel_fs(root_fd, bool(hc.get("Privileged")))
        for key, target in ETC_FILES:
            if ctr.get(key):
                fd = ensure_file(root_fd, target)
                try:
                    sc.mount(ctr[key], _fdpath(fd), None, sc.MS_BIND)
                finally:
                    os.close(fd)
                if readonly:
                    _remount_ro(root_fd, target)
        os.fchdir(root_fd)
        if ctr.get("_Mounts"):           # the user's mounts, after (over) the /etc files
            from minidock.runtime import usermounts
            usermounts.apply(root_fd, ctr["_Mounts"])
    finally:
        os.close(root_fd)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    mask_paths(hc.get("MaskedPaths") or [], hc.get("ReadonlyPaths") or [])
    if readonly:
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)


def _remount_ro(root_fd: int, path: str) -> None:
    """Make the bind mount at `path` read-only (reopened: an fd taken before the bind
    names the file under it, not the mount)."""
    fd = resolve(root_fd, path)
    try:
        sc.mount(None, _fdpath(fd), None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
    finally:
        os.close(fd)


def _mount_kernel_fs(root_fd: int, privileged: bool = False) -> None:
    _mount_at(root_fd, "/proc", "proc", "proc", _NOSUID_NOEXEC_NODEV)
    _mount_at(root_fd, "/dev", "tmpfs", "tmpfs", sc.MS_NOSUID, "mode=755,size=65536k")
    dev_fd = resolve(root_fd, "/dev", O_PATH | os.O_DIRECTORY)
    try:
        for major, minor, name in DEVICES:
            os.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dev_fd)
            os.chmod(name, 0o666, dir_fd=dev_fd)  # the umask took some bits away
        for target, name in DEV_LINKS:
            os.symlink(target, name, dir_fd=dev_fd)
        for name in ("pts", "shm", "mqueue"):
            os.mkdir(name, 0o755, dir_fd=dev_fd)
        if privileged:
            _host_devices(dev_fd)
    finally:
        os.close(dev_fd)
    _mount_at(root_fd, "/dev/pts", "devpts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5")
    _mount_at(root_fd, "/dev/shm", "shm", "tmpfs", _NOSUID_NOEXEC_NODEV,
              "mode=1777,size=65536k")
    _mount_at(root_fd, "/dev/mqueue", "mqueue", "mqueue", _NOSUID_NOEXEC_NODEV)
    # a new sysfs shows the netns of the mounter: the container's own, or in host
    # mode the host's (a bind of the CLI's /sys could show another netns's devices)
    _mount_at(root_fd, "/sys", "sysfs", "sysfs",
              _NOSUID_NOEXEC_NODEV | (0 if privileged else sc.MS_RDONLY))


_SKIP_DEV = {"pts", "shm", "mqueue", "fd", "console", "ptmx", ".lxc", ".lxd-mounts",
             *(name for _, _, name in DEVICES)}


def _host_devices(dev_fd: int, top: str = "/dev", rel: str = "") -> None:
    """Copy the host's device nodes (mode, owner, numbers) into the container's /dev:
    what a privileged container sees. Runs before pivot_root (the host's /dev)."""
    try:
        entries = list(os.scandir(os.path.join(top, rel)))
    except OSError:
        return
    for entry in entries:
        name = os.path.join(rel, entry.name)
        if not rel and entry.name in _SKIP_DEV:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            _host_devices(dev_fd, top, name)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            parent = os.path.dirname(name)
            if parent:
                os.makedirs(os.path.join(f"/proc/self/fd/{dev_fd}", parent), 0o755,
                            exist_ok=True)
            try:
                os.mknod(name, stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode),
                         st.st_rdev, dir_fd=dev_fd)
                os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dev_fd)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dev_fd, follow_symlinks=False)
            except FileExistsError:
                pass


def mask_paths(masked: list[str], readonly: list[str]) -> None:
    """Docker's masks, after pivot_root: /dev/null over files, empty ro tmpfs over dirs;
    read-only paths are bind-mounted onto themselves and remounted read-only."""
    for path in masked:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0k")
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    for path in readonly:
        if not os.path.exists(path):
            continue
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(path, path, None,
                 sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _NOSUID_NOEXEC_NODEV)
