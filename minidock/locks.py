"""The lock between creating pipelines and repairs (a leaf module).

A pipeline that creates things (run, start, network create, connect) holds the lock
shared (`busy`); a full repair (`system prune`, the first command after a reboot)
holds it exclusive, so "no record owns it" means "orphan" while it runs.

Locks are POSIX record locks (`lockf`): they are not inherited across fork, so a
monitor forked while a start holds the shared lock never pins it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from minidock.hints import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from minidock.context import Context

LOCK = "reconcile.lock"


def _lock_fd(ctx: "Context") -> int:
    os.makedirs(ctx.exec_root, mode=0o700, exist_ok=True)
    return os.open(os.path.join(ctx.exec_root, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                   0o600)


@contextmanager
def busy(ctx: "Context") -> Iterator[None]:
    """Shared lock for a creating pipeline: a full repair waits for it (and it for
    a running repair). Microseconds when uncontended."""
    import fcntl
    fd = _lock_fd(ctx)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)   # closing drops this process's POSIX lock


@contextmanager
def exclusive(ctx: "Context") -> Iterator[None]:
    """No creating pipeline runs while the body runs (full repair, reboot cleanup)."""
    import fcntl
    fd = _lock_fd(ctx)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive flock on `path` (created) for the body: serialises one-time work
    such as network initialisation."""
    import fcntl
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
