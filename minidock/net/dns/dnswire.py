"""DNS messages on the wire (RFC 1035): parse a query, build the few answers we give.

The embedded resolver answers only what a container's stub resolver asks: one question,
class IN, types A, AAAA and PTR for names it knows; everything else is forwarded to an
upstream server byte for byte (only the 16-bit ID is rewritten). So this module needs
to *parse* queries and the header of upstream replies, and to *build* replies: A
records, empty NOERROR (a name that exists without that type), PTR records, and bare
rcodes (NXDOMAIN, SERVFAIL, FORMERR, REFUSED). It is pure: bytes in, bytes out.

Input comes from any process in any container, so parsing is defensive: every read is
bounds-checked (`WireError` on truncated input), names are capped at 255 bytes, and
compression pointers must point strictly backwards, which makes loops impossible.

Message layout (all integers big-endian):

    +--+--+--+--+--+--+--+--+--+--+--+--+
    | ID | FLAGS | QD | AN | NS | AR     |  12-byte header, 6 x uint16
    +-----------------------------------+
    | QNAME (labels) | QTYPE | QCLASS   |  question
    | NAME | TYPE | CLASS | TTL(32) | RDLENGTH | RDATA   answer records
    +-----------------------------------+

Over TCP every message is preceded by its length as a uint16 (`frame`/`unframe`).
"""

from __future__ import annotations

import ipaddress
import struct
from minidock.hints import NamedTuple

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_OPT = 41
CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_REFUSED = 5

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
OPCODE_MASK = 0x7800

UDP_MAX_DEFAULT = 512      # RFC 1035 limit when the query has no EDNS OPT record
MAX_NAME = 255
_HEADER = struct.Struct("!HHHHHH")
_PTR_TO_QNAME = b"\xc0\x0c"  # compression pointer to the question's name (offset 12)


class WireError(ValueError):
    """The bytes are not a well-formed DNS message (truncated, loop, overlong name)."""


class Query(NamedTuple):
    """One parsed query: what the resolver needs to answer it (a NamedTuple: the
    resolver process starts on the hot path, and dataclasses costs ~15 ms to import)."""

    id: int
    flags: int
    name: str            # lower-case, no trailing dot ("" for the root)
    qtype: int
    qclass: int
    question: bytes      # the raw question section, echoed in replies
    udp_size: int        # largest UDP reply the client accepts

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> 11


# -- parsing -------------------------------------------------------------------------
_PLAIN = bytes(c for c in range(0x21, 0x7F) if chr(c) not in '"().;\\@$')


def _label_text(raw: bytes) -> str:
    """One label as text, in the presentation form dnspython and dig print: ASCII
    lower-cased (DNS names compare case-insensitively, in ASCII only), a dot, quote,
    backslash... inside a label escaped (`a\\.b` is one label, never the name a.b), any
    other byte as \\DDD."""
    if not raw.translate(None, _PLAIN):
        return raw.lower().decode("ascii")
    out = []
    for c in raw.lower():
        if c in _PLAIN:
            out.append(chr(c))
        elif 0x20 < c < 0x7F:
            out.append("\\" + chr(c))
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """Decode the name at `offset`; return (name, offset just past it in the stream).

    Pointers may only point before the byte that holds them, at most 64 jumps are
    followed, and the decoded name is capped at 255 bytes: a crafted loop ends in a
    WireError, never in a hang.
    """
    labels: list[str] = []
    total = 0
    end = -1
    jumps = 0
    pos = offset
    while True:
        if pos >= len(data):
            raise WireError("truncated name")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise WireError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            jumps += 1
            if target >= pos or jumps > 64:
                raise WireError("bad compression pointer")
            if end < 0:
                end = pos + 2
            pos = target
            continue
        if length & 0xC0:
            raise WireError("unsupported label type")
        pos += 1
        if length == 0:
            break
        if pos + length > len(data):
            raise WireError("truncated label")
        total += length + 1
        if total > MAX_NAME:
            raise WireError("name too long")
        labels.append(_label_text(data[pos:pos + length]))
        pos += length
    return ".".join(labels), (end if end >= 0 else pos)


def parse_query(data: bytes) -> Query:
    """Parse a query with exactly one question; WireError when malformed."""
    if len(data) < _HEADER.size:
        raise WireError("truncated header")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & FLAG_QR:
        raise WireError("not a query")
    if qd != 1:
        raise WireError(f"{qd} questions")
    name, pos = read_name(data, _HEADER.size)
    if pos + 4 > len(data):
        raise WireError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    question = data[_HEADER.size:pos + 4]
    if data[_HEADER.size] & 0xC0:  # a pointer cannot open the first name
        raise WireError("compression pointer in question")
    udp_size = _edns_size(data, pos + 4, an + ns + ar, an + ns)
    return Query(qid, flags, name, qtype, qclass, question, udp_size)


def _edns_size(data: bytes, pos: int, count: int, skip: int) -> int:
    """The UDP size from an OPT record in the additional section, else 512."""
    for index in range(count):
        _, pos = read_name(data, pos)
        if pos + 10 > len(data):
            raise WireError("truncated record")
        rtype, rclass, _, rdlen = struct.unpack_from("!HHIH", data, pos)
        pos += 10 + rdlen
        if pos > len(data):
            raise WireError("truncated record data")
        if index >= skip and rtype == TYPE_OPT:
            return max(UDP_MAX_DEFAULT, min(rclass, 65535))
    return UDP_MAX_DEFAULT


def header(data: bytes) -> tuple[int, int, int]:
    """(id, flags, rcode) of any message; WireError if shorter than a header."""
    if len(data) < _HEADER.size:
        raise WireError("truncated header")
    qid, flags = struct.unpack_from("!HH", data)
    return qid, flags, flags & 0xF


def with_id(data: bytes, qid: int) -> bytes:
    """The same message with another ID (forwarding rewrites IDs both ways)."""
    return struct.pack("!H", qid) + data[2:]


def question_of(data: bytes) -> bytes:
    """The raw question section of a message with one question (to match replies)."""
    _, pos = read_name(data, _HEADER.size)
    return data[_HEADER.size:pos + 4]


# -- building ------------------------------------------------------------------------
def encode_name(name: str) -> bytes:
    """`a.b` -> b"\\x01a\\x01b\\x00"; WireError on an empty or overlong label."""
    out = bytearray()
    for label in name.strip(".").split(".") if name.strip(".") else []:
        raw = label.encode("latin-1")
        if not raw or len(raw) > 63:
            raise WireError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    out += b"\x00"
    if len(out) > MAX_NAME:
        raise WireError("name too long")
    return bytes(out)


def _reply(q: Query, rcode: int, records: list[bytes], authoritative: bool,
           max_size: int) -> bytes:
    flags = FLAG_QR | (q.flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | rcode
    if authoritative:
        flags |= FLAG_AA
    room = max_size - _HEADER.size - len(q.question)
    fitting: list[bytes] = []
    for rec in records:
        if len(rec) > room:
            flags |= FLAG_TC
            break
        fitting.append(rec)
        room -= len(rec)
    head = _HEADER.pack(q.id, flags, 1, len(fitting), 0, 0)
    return head + q.question + b"".join(fitting)


def _record(rtype: int, ttl: int, rdata: bytes) -> bytes:
    return _PTR_TO_QNAME + struct.pack("!HHIH", rtype, CLASS_IN, ttl, len(rdata)) + rdata


def answer_a(q: Query, ips: list[str], ttl: int = 600, max_size: int | None = None) -> bytes:
    """A records for `ips` (in the given order); TC set if they do not all fit."""
    recs = [_record(TYPE_A, ttl, ipaddress.IPv4Address(ip).packed) for ip in ips]
    return _reply(q, RCODE_NOERROR, recs, True, max_size or q.udp_size)


def answer_aaaa(q: Query, ips: list[str], ttl: int = 600, max_size: int | None = None) -> bytes:
    """AAAA records for `ips` (in the given order); TC set if they do not all fit."""
    recs = [_record(TYPE_AAAA, ttl, ipaddress.IPv6Address(ip).packed) for ip in ips]
    return _reply(q, RCODE_NOERROR, recs, True, max_size or q.udp_size)


def answer_ptr(q: Query, names: list[str], ttl: int = 600, max_size: int | None = None) -> bytes:
    """PTR records pointing at `names`."""
    recs = [_record(TYPE_PTR, ttl, encode_name(n)) for n in names]
    return _reply(q, RCODE_NOERROR, recs, True, max_size or q.udp_size)


def answer_empty(q: Query) -> bytes:
    """NOERROR with no answer: the name exists, not with this type (AAAA of an IPv4 name)."""
    return _reply(q, RCODE_NOERROR, [], True, q.udp_size)


def answer_rcode(q: Query, rcode: int) -> bytes:
    """A bare error reply: NXDOMAIN, SERVFAIL, REFUSED, ..."""
    return _reply(q, rcode, [], rcode == RCODE_NXDOMAIN, q.udp_size)


def formerr(data: bytes) -> bytes | None:
    """FORMERR for a message we cannot parse, if it has at least an ID; else None."""
    if len(data) < 2 or (len(data) >= 4 and data[2] & 0x80):
        return None
    flags = FLAG_QR | FLAG_RA | RCODE_FORMERR
    return _HEADER.pack(struct.unpack_from("!H", data)[0], flags, 0, 0, 0, 0)


def ptr_target(name: str) -> str | None:
    """`4.3.2.1.in-addr.arpa` -> `1.2.3.4`; None for any other name."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None


# -- TCP framing ---------------------------------------------------------------------
def frame(msg: bytes) -> bytes:
    """Prefix a message with its 2-byte length (DNS over TCP)."""
    if len(msg) > 0xFFFF:
        raise WireError("message too long for TCP")
    return struct.pack("!H", len(msg)) + msg


def unframe(buf: bytes) -> tuple[list[bytes], bytes]:
    """Split a TCP stream buffer into complete messages and the incomplete rest."""
    msgs: list[bytes] = []
    pos = 0
    while len(buf) - pos >= 2:
        size = struct.unpack_from("!H", buf, pos)[0]
        if len(buf) - pos - 2 < size:
            break
        msgs.append(buf[pos + 2:pos + 2 + size])
        pos += 2 + size
    return msgs, buf[pos:]
