"""Privileges of the container's process: Docker's capability set, tweaked per container.

Docker keeps 14 capabilities (CapEff/CapPrm/CapBnd = 00000000a80425fb); `--cap-add`,
`--cap-drop` (names with or without CAP_, any case, or ALL) and `--privileged` change
the set as moby's `oci/caps` TweakCapabilities does:

    privileged            every capability the kernel knows
    ALL in --cap-add      every capability except those dropped
    ALL in --cap-drop     only those added
    otherwise             the default set, minus the dropped, plus the added

The names are checked at create (pure: `normalize`, `effective_caps`); the init applies
the set with raw syscalls (`drop_privileges`). Order matters: the bounding set is cut
first (needs CAP_SETPCAP, which the process still has), then the uid/gid change with
keepcaps on, then one capset() for effective, permitted and inheritable (empty);
ambient stays empty. A non-root user keeps the set in permitted, none effective.
"""

from __future__ import annotations

import os

from minidock.errors import InvalidArgument

# capability numbers, linux/capability.h
ALL_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
            "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
            "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
            "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE")
NUMBER = {name: i for i, name in enumerate(ALL_CAPS)}
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
DEFAULT_MASK = 0xA80425FB

PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return min(int(fh.read()), len(ALL_CAPS) - 1)
    except (OSError, ValueError):
        return len(ALL_CAPS) - 1


def normalize(names: list[str] | tuple[str, ...]) -> list[str]:
    """Upper case with a CAP_ prefix (ALL stays ALL); Docker's error for an unknown name."""
    out = []
    for raw in names:
        name = raw.upper()
        if name != "ALL":
            name = name if name.startswith("CAP_") else "CAP_" + name
            if name not in NUMBER:
                raise InvalidArgument(f'unknown capability: "{name}"')
        if name not in out:
            out.append(name)
    return out


def bounding() -> int:
    """This process's bounding set: "every capability" is every one it can hand on
    (all the kernel knows for root on a plain host; fewer inside a restricted one)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << (last_cap() + 1)) - 1


def effective_caps(host_config: dict, available: int | None = None) -> list[str]:
    """The container's capability set from HostConfig (Privileged, CapAdd, CapDrop);
    `available`: the mask "every capability" stands for (default: `bounding()`)."""
    have = bounding() if available is None else available
    every = [c for c in ALL_CAPS if have & (1 << NUMBER[c])]
    if host_config.get("Privileged"):
        return every
    adds = normalize(host_config.get("CapAdd") or [])
    drops = normalize(host_config.get("CapDrop") or [])
    if "ALL" in adds:
        return [c for c in every if c not in drops]
    if "ALL" in drops:
        return [c for c in adds if c != "ALL"]
    caps = [c for c in DEFAULT_CAPS if c not in drops]
    return caps + [c for c in adds if c not in caps]


def mask(caps: list[str]) -> int:
    out = 0
    for name in caps:
        out |= 1 << NUMBER[name]
    return out


def drop_privileges(uid: int, gid: int, groups: tuple[int, ...], caps: int = DEFAULT_MASK) -> None:
    """Cut the bounding set to `caps` (a mask), become uid:gid, keep only `caps`."""
    from minidock.runtime import syscalls as sc
    for number in range(last_cap() + 1):
        if not caps & (1 << number):
            sc.prctl(PR_CAPBSET_DROP, number)
    if uid or gid or groups != (0,):
        sc.prctl(PR_SET_KEEPCAPS, 1)
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
        sc.prctl(PR_SET_KEEPCAPS, 0)
    else:
        os.setgroups(list(groups))
    sc.capset(0 if uid else caps, caps, 0)
