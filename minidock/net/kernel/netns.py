"""Network namespaces: enter one safely, pin one on a key, unpin it.

A netns lives as long as a process is in it or something holds it: an open fd or a
bind mount of `/proc/<pid>/ns/net`. minidock pins each sandbox's netns on a *key*, a
bind mount under `<exec-root>/netns/<sandbox id[:12]>` (Docker's SandboxKey); the netns
then outlives the container's processes until the key is unmounted, and unmounting it is
how a sandbox is destroyed: the kernel deletes the netns and every interface in it in
~0.14 ms, where deleting a veth alone costs ~26 ms.

`setns(2)` changes the namespace of the *calling thread*. The only way in is
`in_netns()`, a context manager that always switches back, also when the body raises;
it must run on the thread that owns the work (minidock's CLI is single-threaded). If
switching back fails, the thread is in the wrong namespace and nothing after it can be
trusted: we abort the process rather than carry on. Python 3.11 has no os.setns, hence
ctypes (loaded lazily: a `run --net none` never pays for it).
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from minidock.hints import Any, Iterator

CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

def _lib() -> Any:
    """libc through ctypes, loaded once per process (shared with the runtime's seam)."""
    from minidock.libc import lib
    return lib()


def _check(ret: int, what: str) -> None:
    if ret != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int) -> None:
    _check(_lib().setns(fd, CLONE_NEWNET), "setns")


def restore_pid_ns_for_children() -> None:
    """Make this process's children be born in its own pid namespace again.

    A container's monitor unshares CLONE_NEWPID so that the init it forks is pid 1 of a
    new pid namespace; once that init has exited, every later fork of the monitor fails
    (ENOMEM: the namespace is dead), so the monitor could not run `iptables-restore` to
    release its container's rules. setns to our own pid namespace undoes the unshare
    for future children only. A no-op when nothing was unshared.
    """
    try:
        if os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid"):
            return
    except OSError:
        return
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_lib().setns(fd, CLONE_NEWPID), "setns pid")
    finally:
        os.close(fd)


def current_netns_path() -> str:
    """The calling *thread's* netns (setns is per thread)."""
    return "/proc/thread-self/ns/net"


@contextmanager
def in_netns_fd(fd: int) -> Iterator[None]:
    """Run the body with this thread in the netns of `fd`; always switch back."""
    orig = os.open(current_netns_path(), os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd)
        try:
            yield
        finally:
            try:
                setns(orig)
            except OSError:  # we are stranded in the wrong netns: never continue
                os.write(2, b"minidock: cannot return to the original network namespace\n")
                os._exit(125)
    finally:
        os.close(orig)


@contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the body inside the netns at `path` (a key, /proc/<pid>/ns/net, /run/netns/x)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with in_netns_fd(fd):
            yield
    finally:
        os.close(fd)


def open_netns(path: str) -> int:
    """An fd on the netns at `path` (for IFLA_NET_NS_FD); the caller closes it."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def bind_key(pid: int, key: str) -> None:
    """Pin the netns of process `pid` on `key` (a bind mount); idempotent."""
    os.makedirs(os.path.dirname(key), exist_ok=True)
    if is_key(key):
        return
    fd = os.open(key, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)
    src = f"/proc/{pid}/ns/net".encode()
    _check(_lib().mount(src, key.encode(), None, MS_BIND, None), f"bind mount netns of {pid} on {key}")
    from minidock import pipeline
    if pipeline.TRACING:
        pipeline.note("+", "mount", f"/proc/{pid}/ns/net on {key}")


def is_key(path: str) -> bool:
    """True when `path` is a mounted netns (its st_dev is nsfs, not the directory's)."""
    try:
        st = os.stat(path)
        parent = os.stat(os.path.dirname(path))
    except OSError:
        return False
    return st.st_dev != parent.st_dev


def unbind_key(key: str) -> None:
    """Unmount and unlink a key; a missing or unmounted key counts as done."""
    ret = _lib().umount2(key.encode(), MNT_DETACH | UMOUNT_NOFOLLOW)
    if ret != 0:
        import ctypes
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"unmount {key}: {os.strerror(err)}")
    else:
        from minidock import pipeline
        if pipeline.TRACING:
            pipeline.note("-", "mount", key)
    try:
        os.unlink(key)
    except FileNotFoundError:
        pass


def link_name(name: str, key: str, run_netns: str = "/run/netns") -> None:
    """Make the sandbox visible to `ip netns`: /run/netns/<name> -> key (replaces)."""
    os.makedirs(run_netns, exist_ok=True)
    path = os.path.join(run_netns, name)
    try:
        os.symlink(key, path)
    except FileExistsError:
        os.unlink(path)
        os.symlink(key, path)
    from minidock import pipeline
    if pipeline.TRACING:
        pipeline.note("+", "netns", f"{path} -> {key}")


def unlink_name(name: str, key: str, run_netns: str = "/run/netns") -> None:
    """Remove /run/netns/<name> if it still points at `key` (idempotent)."""
    path = os.path.join(run_netns, name)
    try:
        if os.readlink(path) == key:
            os.unlink(path)
            from minidock import pipeline
            if pipeline.TRACING:
                pipeline.note("-", "netns", path)
    except OSError:
        pass
