"""`logs [-f]`: print the json-file log back as the container wrote it.

Entries go to stdout or stderr by their stream. Following waits, without polling, on
an inotify watch of the log file and on the monitor's pidfd: the monitor writes the
last entries before it exits, so its exit means the log is complete.
"""

from __future__ import annotations

import os
import select
import sys
from minidock.hints import TYPE_CHECKING, Any

from minidock.runtime.logs import parse_entries

if TYPE_CHECKING:
    from minidock.context import Context

IN_MODIFY = 0x2


def print_logs(ctx: Context, ctr: dict[str, Any], follow: bool) -> None:
    path = ctr.get("LogPath") or ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        pending = _emit(b"", _read_all(fd))
        if follow:
            _follow(ctx, ctr, fd, path, pending)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _emit(pending: bytes, data: bytes) -> bytes:
    """Print every complete line; return the incomplete tail."""
    buf = pending + data
    cut = buf.rfind(b"\n") + 1
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    for stream, text in parse_entries(buf[:cut]):
        target = out.get(stream, sys.stdout.buffer)
        target.write(text.encode())
        target.flush()
    return buf[cut:]


def _follow(ctx: Context, ctr: dict[str, Any], fd: int, path: str, pending: bytes) -> None:
    from minidock.runtime.lifecycle import pidfd_checked, refresh
    ctr = refresh(ctx, ctr)
    mon = ctr.get("_Monitor") or {}
    pidfd = pidfd_checked(mon.get("Pid", 0), mon.get("Start")) if ctr["State"].get("Running") else None
    if pidfd is None:
        return
    ino = _inotify(path)
    try:
        while True:
            ready, _, _ = select.select([ino, pidfd], [], [])
            if ino in ready:
                os.read(ino, 4096)
            pending = _emit(pending, _read_all(fd))
            if pidfd in ready:
                _emit(pending, _read_all(fd))
                return
    finally:
        os.close(ino)
        os.close(pidfd)


def _inotify(path: str) -> int:
    from minidock.libc import lib as _lib
    from minidock.runtime.syscalls import check as _check
    lib = _lib()
    ino = _check(lib.inotify_init1(os.O_CLOEXEC), "inotify_init1")
    _check(lib.inotify_add_watch(ino, os.fsencode(path), IN_MODIFY), "inotify_add_watch", path)
    return ino
