"""The one seam through which the runtime makes namespace and mount system calls.

Python 3.11 has no os.unshare / os.setns / mount / pivot_root, so they are called on
libc through ctypes here, and nowhere else: every caller goes through these thin
functions, which raise OSError with the errno and the call named (so a failure in the
container's init child can be reported precisely to the CLI). ctypes is loaded lazily
on first use so that commands that make no such calls (ps, inspect) pay nothing.
"""

from __future__ import annotations

import os

# clone / unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2

# openat2 resolve flags
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

_SYS_PIVOT_ROOT = 155
_SYS_CLOSE_RANGE = 436
_SYS_OPENAT2 = 437
CLOSE_RANGE_CLOEXEC = 1 << 2

from minidock.libc import lib as _lib


def check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    check(_lib().unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(_lib().setns(fd, nstype), "setns")


def setns_path(path: str, nstype: int = 0) -> None:
    """Join the namespace bound at `path` (a /proc/<pid>/ns/* file or a bind mount)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        check(_lib().setns(fd, nstype), "setns", path)
    finally:
        os.close(fd)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    ret = _lib().mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    check(ret, f"mount {fstype or source or ''} on {target}", target)


def umount2(target: str, flags: int = 0) -> None:
    check(_lib().umount2(_b(target), flags), f"umount {target}", target)


def pivot_root(new_root: str, put_old: str) -> None:
    ret = _lib().syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old))
    check(ret, "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    check(_lib().sethostname(raw, len(raw)), "sethostname")


def cloexec_from(first: int) -> None:
    """Mark every fd >= `first` close-on-exec (close_range with CLOSE_RANGE_CLOEXEC).

    Marking rather than closing keeps the error pipe usable until the exec itself.
    """
    import ctypes
    ret = _lib().syscall(_SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF),
                         ctypes.c_uint(CLOSE_RANGE_CLOEXEC))
    if ret < 0:  # old kernel: mark them one by one
        import resource
        for fd in range(first, resource.getrlimit(resource.RLIMIT_NOFILE)[0]):
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open `path` relative to `dirfd` with RESOLVE_* restrictions."""
    import ctypes

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                    ("resolve", ctypes.c_uint64)]

    how = OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    ret = _lib().syscall(_SYS_OPENAT2, dirfd, _b(path), ctypes.byref(how),
                         ctypes.sizeof(how))
    return check(ret, "openat2", path)


def prctl(option: int, arg2: int = 0) -> None:
    check(_lib().prctl(option, arg2, 0, 0, 0), f"prctl {option}")


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's three capability sets (64-bit masks) at once."""
    import ctypes
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF,
                                 inheritable & 0xFFFFFFFF, effective >> 32,
                                 permitted >> 32, inheritable >> 32)
    check(_lib().capset(header, data), "capset")


_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def seccomp_filter(code: bytes) -> None:
    """Install a classic BPF program (struct sock_filter bytes) as this thread's
    seccomp filter; needs no_new_privs or CAP_SYS_ADMIN."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(code) // 8, ctypes.addressof(buf))
    check(_lib().prctl(ctypes.c_ulong(_PR_SET_SECCOMP), ctypes.c_ulong(_SECCOMP_MODE_FILTER),
                        ctypes.c_void_p(ctypes.addressof(prog)), ctypes.c_ulong(0),
                        ctypes.c_ulong(0)), "seccomp")
