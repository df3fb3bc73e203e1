"""One exception hierarchy for everything minidock reports to a user.

Each error carries the exit status Docker would use: 125 for minidock's own errors
(bad flags, missing objects, conflicts), 126 when the container command cannot be
invoked, 127 when it is not found. Messages are one lower-case line that names the
object and the cause; the CLI prints them as `minidock: <message>` with no traceback.
"""

from __future__ import annotations


class MinidockError(Exception):
    """Base of every error minidock expects; anything else is a bug (traceback)."""

    exit_code = 125


class InvalidArgument(MinidockError):
    """A flag, option, spec or file content the user gave is malformed or conflicts."""


class NoAddress(InvalidArgument):
    """An IPAM pool has no free address left (the caller names the network)."""


class NotFound(MinidockError):
    """A container, image, network or other named object does not exist."""


class Conflict(MinidockError):
    """The request collides with existing state (a name, address or port in use)."""


class Forbidden(MinidockError):
    """The operation is never allowed (removing a predefined network)."""


class Internal(MinidockError):
    """A kernel or system call failed in a way the user cannot fix by changing input."""


class CannotInvoke(MinidockError):
    """The container command exists but cannot be executed (permission, not a file)."""

    exit_code = 126


class CommandNotFound(MinidockError):
    """The container command does not exist in the container's rootfs or PATH."""

    exit_code = 127


class FaultInjected(Internal):
    """Raised by the MINIDOCK_FAULT hook right after the named step (tests only)."""
