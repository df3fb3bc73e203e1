"""The netlink message codec shared by every netlink client of minidock (rtnetlink in
netlink.py, netfilter netlink in nftnl.py and nfnetlink.py): headers, attributes,
nesting, splitting a datagram into messages. Pure (`struct` only, not even `socket`,
whose import costs ~7 ms on paths that need neither), unit-tested byte for byte.
"""

from __future__ import annotations

import errno
import struct
from minidock.hints import Iterator

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLA_F_NESTED = 0x8000

HDR = struct.Struct("=IHHII")       # nlmsghdr: len, type, flags, seq, pid
ATTR = struct.Struct("=HH")


def pad(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, data: bytes) -> bytes:
    """One attribute: length, type, payload, padded to 4 bytes."""
    length = ATTR.size + len(data)
    return ATTR.pack(length, kind) + data + b"\0" * (pad(length) - length)


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def attr_nested(kind: int, *children: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(children))


def nlmsg(msg_type: int, flags: int, seq: int, payload: bytes) -> bytes:
    """A complete netlink message (header + payload); the pid is left 0 (kernel fills)."""
    return HDR.pack(HDR.size + len(payload), msg_type, flags, seq, 0) + payload


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes from `offset` to the end: {type (flags masked): payload}; last wins."""
    out: dict[int, bytes] = {}
    while offset + ATTR.size <= len(data):
        length, kind = ATTR.unpack_from(data, offset)
        if length < ATTR.size:
            break
        out[kind & 0x3FFF] = data[offset + ATTR.size: offset + length]
        offset += pad(length)
    return out


def split_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) of every message in one datagram."""
    offset = 0
    while offset + HDR.size <= len(data):
        length, mtype, flags, seq, _pid = HDR.unpack_from(data, offset)
        if length < HDR.size:
            break
        yield mtype, flags, seq, data[offset + HDR.size: offset + length]
        offset += pad(length)


class BadReply(OSError):
    """A netlink reply too short or malformed for what its type promises (the kernel's
    replies are parsed defensively: a bad one is an OSError, never a traceback)."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EBADMSG, f"malformed netlink reply: {what}")


def error_code(body: bytes) -> int:
    """The errno (positive, 0 for an ACK) of an NLMSG_ERROR payload."""
    if len(body) < 4:
        raise BadReply("truncated error message")
    return -struct.unpack_from("=i", body, 0)[0]
