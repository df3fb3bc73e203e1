"""Who the container's process runs as: `-u user[:group]` against /etc/passwd, /etc/group.

Pure: `resolve_user` takes the text of the container's passwd and group files (read
inside the container after pivot_root, so no symlink can point outside) and returns
uid, gid, supplementary groups and home, following runc's GetExecUser: numeric ids
need no entry, names must exist, the supplementary groups are the groups that list
the user as a member, and the defaults are uid 0, gid 0, home "/".
"""

from __future__ import annotations

import os
import stat

from minidock.runtime.values import Values

from minidock.errors import CannotInvoke


class ExecUser(Values):
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _entries(text: str | None) -> list[list[str]]:
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def resolve_user(spec: str, passwd: str | None, group: str | None) -> ExecUser:
    """`spec` is "", "name", "uid", "name:group", "uid:gid"... (Docker's -u)."""
    user, _, grp = (spec or "").partition(":")
    uid, gid, home, name = 0, 0, "/", None
    if user:
        match = None
        for ent in _entries(passwd):
            if len(ent) >= 6 and (ent[0] == user or (user.isdigit() and ent[2] == user)):
                match = ent
                break
        if match is not None:
            name, uid, gid, home = match[0], int(match[2]), int(match[3]), match[5] or "/"
        elif user.isdigit():
            uid = int(user)
        else:
            raise CannotInvoke(f"unable to find user {user}: no matching entries in passwd file")
    else:
        for ent in _entries(passwd):
            if len(ent) >= 6 and ent[2] == "0":
                name, home = ent[0], ent[5] or "/"
                break
    groups: list[int] = []
    if grp:
        gid = _lookup_group(grp, group)
    elif name is not None:
        for ent in _entries(group):
            if len(ent) >= 4 and name in ent[3].split(","):
                groups.append(int(ent[2]))
    if gid not in groups:
        groups.insert(0, gid)
    return ExecUser(uid, gid, tuple(groups), home)


def _lookup_group(grp: str, group: str | None) -> int:
    for ent in _entries(group):
        if len(ent) >= 3 and (ent[0] == grp or (grp.isdigit() and ent[2] == grp)):
            return int(ent[2])
    if grp.isdigit():
        return int(grp)
    raise CannotInvoke(f"unable to find group {grp}: no matching entries in group file")


MAX_DB_SIZE = 4 << 20   # a passwd/group file larger than this is not read


def read_or_none(path: str) -> str | None:
    """The text of a regular file of the container (None if absent or not one).

    The image decides what is at `path`: a FIFO (would block), /dev/zero or a
    /proc/self/fd/N link (would read forever or the init's own input). So: resolved
    inside the root without magic links, opened non-blocking, regular files only,
    read up to MAX_DB_SIZE.
    """
    from minidock.runtime import syscalls as sc
    try:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = sc.openat2(root, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY,
                            sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)
        finally:
            os.close(root)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, MAX_DB_SIZE).decode(errors="replace")
        finally:
            os.close(fd)
    except OSError:
        return None
