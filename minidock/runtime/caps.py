"""Privileges of the container's process: Docker's default capability set, no more.

Docker keeps 14 capabilities (CapEff/CapPrm/CapBnd = 00000000a80425fb); inheritable
and ambient are empty and no_new_privs is on, so nothing the container execs can gain
privileges back. Order matters: the bounding set is cut first (needs CAP_SETPCAP,
which the process still has), then the uid/gid change with keepcaps on, then effective, permitted and inheritable are cut (in that order: effective must stay
a subset of permitted), then no_new_privs.
"""

from __future__ import annotations

import os

import prctl  # only the container's init child imports this module

DEFAULT_CAPS = ("chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid",
                "setpcap", "net_bind_service", "net_raw", "sys_chroot", "mknod",
                "audit_write", "setfcap")
DEFAULT_MASK = 0xA80425FB


def drop_privileges(uid: int, gid: int, groups: tuple[int, ...]) -> None:
    """Cut the bounding set, become uid:gid, keep only the default caps, no_new_privs."""
    prctl.capbset.limit(*DEFAULT_CAPS)
    if uid or gid or groups != (0,):
        prctl.set_keepcaps(True)
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
        prctl.set_keepcaps(False)
    else:
        os.setgroups(list(groups))
    prctl.cap_effective.limit(*DEFAULT_CAPS)   # effective first: it must stay a
    prctl.cap_permitted.limit(*DEFAULT_CAPS)   # subset of permitted at every call
    prctl.cap_inheritable.limit()
    prctl.set_no_new_privs(1)
