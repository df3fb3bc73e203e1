"""The one libc handle (ctypes), loaded on first use: calls Python 3.11 has no
wrapper for (unshare, setns, mount, pivot_root...). A leaf: the runtime's syscalls
and networking's netns seam both use it."""

from __future__ import annotations

from minidock.hints import Any

_libc: Any = None


def lib() -> Any:
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc
