"""The container's default seccomp filter: Docker's refusals, as a small classic BPF program.

Docker's default profile is an allow-list of ~350 syscalls compiled by libseccomp; what
it refuses to a container without extra capabilities is a short list. minidock
installs that short list as a deny-list, hand-assembled here (no libseccomp binding, no
JSON: the program is ~80 instructions, assembled once per process in ~50 µs and
installed with one prctl right before execve):

    arch != native                       -> ERRNO(EPERM)   (no i386 int 0x80 detour)
    x86_64: nr has the x32 bit           -> ERRNO(EPERM)
    clone(flags & CLONE_NEW*)            -> ERRNO(EPERM)   (runc/Docker: same check)
    clone3                               -> ERRNO(ENOSYS)  (libc falls back to clone,
                                                            whose flags can be checked)
    personality(x) for x not in Docker's list            -> ERRNO(EPERM)
    unshare, setns, mount & the new mount API, pivot_root, modules, kexec, reboot,
    swap, acct, bpf, perf_event_open, keys, handles, userfaultfd, clock setting,
    syslog, iopl/ioperm, quotactl, NUMA policy, io_uring, kcmp, pidfd_getfd, obsolete
    calls                                -> ERRNO(EPERM)
    anything else                        -> ALLOW

Most of these already fail for lack of a capability; the filter matters for those that
need none (unshare(CLONE_NEWUSER) above all, the door to every namespace-gated kernel
bug) and is defence in depth for the rest. It is inherited by every child and kept
across execve; `--security-opt seccomp=unconfined` turns it off.
"""

from __future__ import annotations

import os
import struct

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
EPERM, ENOSYS = 1, 38

CLONE_NS_FLAGS = 0x7E020000   # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
PERSONALITY_OK = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)   # Docker's default profile
X32_SYSCALL_BIT = 0x40000000

# the denied syscalls, by name; numbers per architecture below
DENIED = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "acct", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "open_by_handle_at", "name_to_handle_at", "userfaultfd", "settimeofday",
    "clock_settime", "clock_adjtime", "syslog", "iopl", "ioperm", "quotactl",
    "quotactl_fd", "lookup_dcookie", "move_pages", "mbind", "set_mempolicy",
    "get_mempolicy", "migrate_pages", "set_mempolicy_home_node", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "kcmp", "pidfd_getfd", "vhangup",
    "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "create_module",
    "get_kernel_syms", "query_module",
)

_X86_64 = {
    "clone": 56, "clone3": 435, "personality": 135,
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320, "reboot": 169,
    "swapon": 167, "swapoff": 168, "acct": 163, "bpf": 321, "perf_event_open": 298,
    "keyctl": 250, "add_key": 248, "request_key": 249, "open_by_handle_at": 304,
    "name_to_handle_at": 303, "userfaultfd": 323, "settimeofday": 164,
    "clock_settime": 227, "clock_adjtime": 305, "syslog": 103, "iopl": 172, "ioperm": 173,
    "quotactl": 179, "quotactl_fd": 443, "lookup_dcookie": 212, "move_pages": 279,
    "mbind": 237, "set_mempolicy": 238, "get_mempolicy": 239, "migrate_pages": 256,
    "set_mempolicy_home_node": 450, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "kcmp": 312, "pidfd_getfd": 438, "vhangup": 153,
    "nfsservctl": 180, "uselib": 134, "ustat": 136, "sysfs": 139, "_sysctl": 156,
    "create_module": 174, "get_kernel_syms": 177, "query_module": 178,
}

# aarch64 uses the generic table (asm-generic/unistd.h): no iopl/ioperm and no
# obsolete calls
_AARCH64 = {
    "clone": 220, "clone3": 435, "personality": 92,
    "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "init_module": 105, "finit_module": 273,
    "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294, "reboot": 142,
    "swapon": 224, "swapoff": 225, "acct": 89, "bpf": 280, "perf_event_open": 241,
    "keyctl": 219, "add_key": 217, "request_key": 218, "open_by_handle_at": 265,
    "name_to_handle_at": 264, "userfaultfd": 282, "settimeofday": 170,
    "clock_settime": 112, "clock_adjtime": 266, "syslog": 116, "quotactl": 60,
    "quotactl_fd": 443, "lookup_dcookie": 18, "move_pages": 239, "mbind": 235,
    "set_mempolicy": 237, "get_mempolicy": 236, "migrate_pages": 238,
    "set_mempolicy_home_node": 450, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "kcmp": 272, "pidfd_getfd": 438, "vhangup": 58,
    "nfsservctl": 42,
}

# machine -> (AUDIT_ARCH_*, syscall table, has the x32 ABI)
ARCHES = {"x86_64": (0xC000003E, _X86_64, True), "aarch64": (0xC00000B7, _AARCH64, False)}

# classic BPF opcodes
_LD_ABS = 0x20    # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15       # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35       # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45      # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06       # BPF_RET | BPF_K
# struct seccomp_data offsets (little-endian: the low word of an argument comes first)
_NR, _ARCH, _ARG0_LO, _ARG0_HI = 0, 4, 16, 20


def _assemble(prog: list[tuple]) -> bytes:
    """(op, k, jt_label, jf_label) or ("label", name) -> struct sock_filter bytes."""
    labels, pc = {}, 0
    for ins in prog:
        if ins[0] == "label":
            labels[ins[1]] = pc
        else:
            pc += 1
    out, pc = [], 0
    for ins in prog:
        if ins[0] == "label":
            continue
        op, k, jt, jf = (*ins, None, None)[:4]
        offs = [labels[t] - pc - 1 if t is not None else 0 for t in (jt, jf)]
        if not all(0 <= o < 256 for o in offs):
            raise ValueError(f"seccomp jump out of range at {pc}")
        out.append(struct.pack("=HBBI", op, offs[0], offs[1], k))
        pc += 1
    return b"".join(out)


def build_filter(machine: str) -> bytes:
    """The filter for `machine` (os.uname().machine) as struct sock_filter bytes."""
    audit_arch, table, x32 = ARCHES[machine]
    prog: list[tuple] = [
        (_LD_ABS, _ARCH), (_JEQ, audit_arch, None, "deny"),
        (_LD_ABS, _NR),
    ]
    if x32:
        prog.append((_JGE, X32_SYSCALL_BIT, "deny", None))
    prog += [(_JEQ, table["clone"], "clone"), (_JEQ, table["clone3"], "enosys"),
             (_JEQ, table["personality"], "personality")]
    prog += [(_JEQ, table[name], "deny") for name in DENIED if name in table]
    prog += [(_RET, SECCOMP_RET_ALLOW),
             ("label", "clone"), (_LD_ABS, _ARG0_LO), (_JSET, CLONE_NS_FLAGS, "deny", "allow"),
             ("label", "personality"), (_LD_ABS, _ARG0_HI), (_JEQ, 0, None, "deny"),
             (_LD_ABS, _ARG0_LO)]
    prog += [(_JEQ, value, "allow") for value in PERSONALITY_OK]
    prog += [("label", "deny"), (_RET, SECCOMP_RET_ERRNO | EPERM),
             ("label", "enosys"), (_RET, SECCOMP_RET_ERRNO | ENOSYS),
             ("label", "allow"), (_RET, SECCOMP_RET_ALLOW)]
    return _assemble(prog)


# -- --security-opt ---------------------------------------------------------------------
def validate_security_opts(values: tuple[str, ...] | list[str]) -> list[str] | None:
    """`--security-opt` values as HostConfig.SecurityOpt; only what minidock honours."""
    from minidock.errors import InvalidArgument
    out = []
    for value in values:
        key, sep, val = value.replace(":", "=", 1).partition("=")
        if key == "seccomp" and val == "unconfined":
            out.append("seccomp=unconfined")
        elif key == "seccomp" and sep:
            raise InvalidArgument(f"seccomp profile {val} is not supported: "
                                  "only seccomp=unconfined is")
        elif key == "no-new-privileges" and val in ("", "true"):
            out.append("no-new-privileges")
        else:
            raise InvalidArgument(f'Invalid --security-opt: "{value}"')
    return out or None


def wanted(host_config: dict) -> bool:
    """Does the container get the default filter?"""
    return "seccomp=unconfined" not in (host_config.get("SecurityOpt") or ())


# -- installation (the container's init and exec'd processes, right before execve) -------
def install(host_config: dict) -> None:
    """no_new_privs, then the default filter (unless unconfined); OSError on failure."""
    if not wanted(host_config):
        return
    import ctypes
    machine = os.uname().machine
    if machine not in ARCHES:
        raise OSError(f"seccomp: no default filter for architecture {machine}")
    code = build_filter(machine)
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(code) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    for args in ((PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
                 (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)):
        if libc.prctl(*(ctypes.c_ulong(a) for a in args)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp: {os.strerror(err)}")
