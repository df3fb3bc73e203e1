"""A `profile.Filter` -> classic BPF bytes, compiled by libseccomp (through pyseccomp).

libseccomp is what runc (and so Docker) compiles profiles with: it maps each syscall
name to its number on every architecture of the filter, checks the audit arch, splits
64-bit argument comparisons into 32-bit halves and lays the program out as a tree.
Compiling takes a few ms, so it runs only when the cache in the exec-root misses
(`seccomp.program`); the container's init never imports this module, it loads the
bytes `seccomp_export_bpf` wrote.

As in runc: names libseccomp does not know (a newer syscall than the library) are
skipped, and no_new_privs is left to minidock (the init sets it itself).
"""

from __future__ import annotations

import os

from minidock.errors import InvalidArgument
from minidock.runtime.seccomp.profile import Filter

_NR_SCMP_ERROR = -1


def _action(sc: object, name: str, errno: int) -> int:
    return {
        "SCMP_ACT_KILL": sc.KILL_THREAD, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_TRAP": sc.TRAP,
        "SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_LOG": sc.LOG,
        "SCMP_ACT_ERRNO": sc.ERRNO(errno), "SCMP_ACT_TRACE": sc.TRACE(errno),
    }[name]


def _arch(sc: object, name: str) -> int:
    value = getattr(sc.Arch, name.removeprefix("SCMP_ARCH_"), None)
    if value is None:
        raise InvalidArgument(f"seccomp profile: unknown architecture {name!r}")
    return value


def to_bpf(flt: Filter) -> bytes:
    """The program for `flt`, for its architectures (the first is the native one of
    the machine it runs on; cross-compiling for another one serves the tests)."""
    try:
        import pyseccomp as sc  # heavy (ctypes + find_library): on a cache miss only
    except (ImportError, RuntimeError, OSError) as err:
        from minidock.errors import Internal
        raise Internal(f"seccomp: libseccomp is not available ({err}); "
                       "install libseccomp2 and pyseccomp (make setup)") from None

    f = sc.SyscallFilter(_action(sc, flt.default, flt.default_errno))
    f.set_attr(sc.Attr.CTL_NNP, 0)
    native = sc.system_arch()
    wanted = [_arch(sc, a) for a in flt.arches]
    for arch in wanted:
        if not f.exist_arch(arch):
            f.add_arch(arch)
    if native not in wanted:
        f.remove_arch(native)
    ops = {"SCMP_CMP_NE": sc.NE, "SCMP_CMP_LT": sc.LT, "SCMP_CMP_LE": sc.LE,
           "SCMP_CMP_EQ": sc.EQ, "SCMP_CMP_GE": sc.GE, "SCMP_CMP_GT": sc.GT,
           "SCMP_CMP_MASKED_EQ": sc.MASKED_EQ}
    for rule in flt.rules:
        nr = sc.resolve_syscall(sc.Arch.NATIVE, rule.name)
        if nr == _NR_SCMP_ERROR:
            continue
        args = [sc.Arg(c.index, ops[c.op], c.value, c.two) for c in rule.conds]
        try:
            f.add_rule(_action(sc, rule.action, rule.errno), nr, *args)
        except OSError as err:
            raise InvalidArgument(f"seccomp profile: cannot add the rule for {rule.name}: "
                                  f"{os.strerror(err.errno or 0).lower()}") from None
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            f.export_bpf(out)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
