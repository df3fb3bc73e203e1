"""Kernel knobs through /proc/sys, which follows the calling thread's netns."""

from __future__ import annotations

PROC_NET = "/proc/sys/net"


def write(path: str, value: str) -> bool:
    """Write a /proc/sys value if it differs; False when the knob does not exist."""
    try:
        with open(path) as fh:
            if fh.read().strip() == value:
                return True
        with open(path, "w") as fh:
            fh.write(value)
        return True
    except FileNotFoundError:
        return False


def read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""
