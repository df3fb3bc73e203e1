"""dnswire against dnspython (an independent DNS implementation) on generated messages,
and on hostile bytes: fixed seeds, so `make test` runs the same cases every time.

- queries dnspython builds (random names with any byte in a label, types, classes,
  EDNS sizes) parse to what dnspython reads back from the same bytes;
- every reply dnswire builds is a message dnspython parses, with the records asked for;
- mutated, truncated, looping and random messages end in a Query or a WireError, never
  another exception or a hang; and whatever dnswire accepts, dnspython reads the same.
"""

from __future__ import annotations

import random
import struct

import pytest

from minidock.net.dns import dnswire as w

dns = pytest.importorskip("dns")
import dns.edns  # noqa: E402
import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

SEED = 14
QTYPES = [1, 2, 5, 12, 15, 16, 28, 33, 255, 65, 64, 0xFF00]


def random_label(rng: random.Random) -> bytes:
    kind = rng.random()
    size = rng.randint(1, 63 if kind < 0.2 else 12)
    if kind < 0.6:
        return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
                     for _ in range(size))
    return bytes(rng.randrange(256) for _ in range(size))


def random_name(rng: random.Random) -> dns.name.Name:
    labels: list[bytes] = []
    for _ in range(rng.randint(0, 6)):
        label = random_label(rng)
        if sum(len(x) + 1 for x in labels) + len(label) + 2 > 255:
            break
        labels.append(label)
    return dns.name.Name(labels + [b""])


def presentation(name: dns.name.Name) -> str:
    """dnspython's text form as dnswire gives it: no final dot, ASCII lower case."""
    return "" if name == dns.name.root else name.to_text(omit_final_dot=True).lower()


def random_query(rng: random.Random) -> dns.message.QueryMessage:
    q = dns.message.make_query(random_name(rng), rng.choice(QTYPES),
                               rdclass=rng.choice([1, 1, 1, 3, 255]))
    q.id = rng.randrange(65536)
    if rng.random() < 0.5:
        q.use_edns(0, payload=rng.choice([0, 100, 512, 1232, 4096, 65535]))
    if rng.random() < 0.2:
        q.flags &= ~dns.flags.RD
    return q


def test_queries_parse_as_dnspython_reads_them():
    rng = random.Random(SEED)
    for _ in range(3000):
        msg = random_query(rng)
        raw = msg.to_wire()
        got = w.parse_query(raw)
        back = dns.message.from_wire(raw)
        question = back.question[0]
        assert got.id == back.id
        assert got.name == presentation(question.name), raw
        assert (got.qtype, got.qclass) == (question.rdtype, question.rdclass)
        assert got.flags == back.flags
        want_size = max(512, back.payload) if back.edns >= 0 else 512
        assert got.udp_size == want_size
        assert w.question_of(raw) == got.question


def test_dotted_label_is_one_label():
    raw = dns.message.make_query(dns.name.Name([b"web.mynet", b""]), "A").to_wire()
    assert w.parse_query(raw).name == "web\\.mynet"          # never the name web.mynet


def _query_for(name: str, qtype: int, rng: random.Random) -> w.Query:
    msg = dns.message.make_query(name, qtype)
    msg.id = rng.randrange(65536)
    return w.parse_query(msg.to_wire())


def test_replies_are_what_dnspython_reads():
    rng = random.Random(SEED)
    for i in range(500):
        name = ".".join(f"n{rng.randrange(1000)}" for _ in range(rng.randint(1, 4)))
        ips = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
               for _ in range(rng.randint(1, 60))]
        q = _query_for(name, w.TYPE_A, rng)
        raw = w.answer_a(q, ips, ttl=600)
        msg = dns.message.from_wire(raw)
        assert msg.id == q.id and msg.rcode() == dns.rcode.NOERROR
        assert msg.flags & dns.flags.QR and msg.flags & dns.flags.AA
        assert len(raw) <= 512
        got = [r.address for rrset in msg.answer for r in rrset]
        assert got == ips[:len(got)]
        assert bool(msg.flags & dns.flags.TC) == (len(got) < len(ips))
        assert all(rrset.name == dns.name.from_text(name) and rrset.ttl == 600
                   for rrset in msg.answer)
        ptr_q = _query_for(f"{i % 250}.1.168.192.in-addr.arpa", w.TYPE_PTR, rng)
        targets = [f"c{j}.net{i}" for j in range(rng.randint(1, 3))]
        msg = dns.message.from_wire(w.answer_ptr(ptr_q, targets))
        assert [r.target.to_text(omit_final_dot=True) for rrset in msg.answer for r in rrset] \
            == targets
        for rcode in (w.RCODE_NXDOMAIN, w.RCODE_SERVFAIL, w.RCODE_REFUSED, 4):
            msg = dns.message.from_wire(w.answer_rcode(q, rcode))
            assert msg.rcode() == rcode and not msg.answer and msg.question[0].name == \
                dns.name.from_text(name)
        msg = dns.message.from_wire(w.answer_empty(q))
        assert msg.rcode() == dns.rcode.NOERROR and not msg.answer


# -- hostile bytes --------------------------------------------------------------------------
def hostile(rng: random.Random) -> bytes:
    """One malformed message: truncated, looping, huge counts, bad labels or noise."""
    base = random_query(rng).to_wire()
    kind = rng.randrange(9)
    if kind == 0:                                   # truncated anywhere
        return base[:rng.randrange(len(base))]
    if kind == 1:                                   # a pointer to itself / forward / loop
        target = rng.choice([12, 13, len(base), 0x3FFF])
        return base[:12] + struct.pack("!H", 0xC000 | target) + b"\x00\x01\x00\x01"
    if kind == 2:                                   # mutual pointers in the additional section
        head = struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 1)
        return head + b"\x01a\x00\x00\x01\x00\x01" + b"\xc0\x1b\xc0\x19" + b"\x00" * 10
    if kind == 3:                                   # huge counts
        counts = [rng.choice([1, 2, 0xFFFF]) for _ in range(4)]
        return base[:4] + struct.pack("!HHHH", *counts) + base[12:]
    if kind == 4:                                   # bad label types and lengths
        bad = rng.choice([b"\x40abc", b"\x80", b"\x3fabc", b"\x05ab"])
        return base[:12] + bad + base[12:]
    if kind == 5:                                   # a name over 255 bytes
        return base[:12] + b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 4 + b"\x00\x00\x01\x00\x01"
    if kind == 6:                                   # an OPT record lying about its length
        return base[:10] + b"\x00\x01" + base[12:] + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\xff\xff"
    if kind == 7:                                   # flipped bytes
        raw = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))


def test_hostile_messages_end_cleanly_and_agree_with_dnspython():
    rng = random.Random(SEED)
    accepted = 0
    for _ in range(10000):
        raw = hostile(rng)
        try:
            q = w.parse_query(raw)
        except w.WireError:
            err = w.formerr(raw)
            assert err is None or (dns.message.from_wire(err).rcode() == dns.rcode.FORMERR)
            continue
        accepted += 1
        back = dns.message.from_wire(raw, question_only=True)
        assert presentation(back.question[0].name) == q.name
        assert (back.question[0].rdtype, back.question[0].rdclass) == (q.qtype, q.qclass)
    assert 0 < accepted < 10000


def test_read_name_never_hangs_on_any_pointer_layout():
    rng = random.Random(SEED)
    for _ in range(5000):
        raw = bytes(rng.choice([0xC0, 0xC0, 0x01, 0x00, 0x3F, rng.randrange(256)])
                    for _ in range(rng.randint(1, 40)))
        try:
            name, end = w.read_name(raw, rng.randrange(len(raw)))
        except w.WireError:
            continue
        assert len(name) <= 4 * 255 and end <= len(raw)


def test_tcp_unframe_any_stream():
    rng = random.Random(SEED)
    for _ in range(2000):
        buf = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        msgs, rest = w.unframe(buf)
        assert b"".join(w.frame(m) for m in msgs) + rest == buf


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:
    @settings(derandomize=True, max_examples=400, deadline=None, database=None)
    @given(st.binary(max_size=300))
    def test_any_bytes_give_a_query_or_a_wire_error(raw):
        try:
            w.parse_query(raw)
        except w.WireError:
            pass
        try:
            w.header(raw)
        except w.WireError:
            pass
