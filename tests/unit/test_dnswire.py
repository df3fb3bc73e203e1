"""dnswire: parse queries, build answers, TCP framing, hostile input."""

from __future__ import annotations

import struct

import pytest

from minidock.net.dns import dnswire as w


def make_query(name: str, qtype: int = w.TYPE_A, qid: int = 0x1234, flags: int = w.FLAG_RD,
               extra: bytes = b"", arcount: int = 0) -> bytes:
    head = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount)
    return head + w.encode_name(name) + struct.pack("!HH", qtype, w.CLASS_IN) + extra


def parse_answer(msg: bytes) -> tuple[int, int, list[tuple[int, int, bytes]]]:
    """(flags, rcode, [(type, ttl, rdata)]) of a reply built by dnswire."""
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    _, pos = w.read_name(msg, 12)
    pos += 4
    records = []
    for _ in range(an):
        _, pos = w.read_name(msg, pos)
        rtype, _, ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        records.append((rtype, ttl, msg[pos:pos + rdlen]))
        pos += rdlen
    assert pos == len(msg)
    return flags, flags & 0xF, records


def test_parse_query() -> None:
    q = w.parse_query(make_query("Web.MyNet."))
    assert (q.id, q.name, q.qtype, q.qclass) == (0x1234, "web.mynet", w.TYPE_A, w.CLASS_IN)
    assert q.udp_size == 512 and q.opcode == 0


def test_parse_edns_udp_size() -> None:
    opt = b"\x00" + struct.pack("!HHIH", w.TYPE_OPT, 1232, 0, 0)
    assert w.parse_query(make_query("a", extra=opt, arcount=1)).udp_size == 1232


@pytest.mark.parametrize("data", [
    b"", b"\x12\x34", make_query("web")[:-1], make_query("web")[:14],
    struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + b"\x00" + b"\x00\x01\x00\x01",  # 2 questions
    struct.pack("!HHHHHH", 1, w.FLAG_QR, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",  # a response
    make_query("a", arcount=1),  # announced record missing
])
def test_malformed_queries_raise(data: bytes) -> None:
    with pytest.raises(w.WireError):
        w.parse_query(data)


def test_compression_pointer_loops_are_rejected() -> None:
    head = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    self_loop = head + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(w.WireError):
        w.parse_query(self_loop)
    forward = head + b"\x01a\xc0\x20" + b"\x00\x01\x00\x01"
    with pytest.raises(w.WireError):
        w.read_name(forward, 12)
    # label then a pointer back to that label: a loop, ended by the length cap
    back_loop = head + b"\x01a\xc0\x0c"
    with pytest.raises(w.WireError):
        w.read_name(back_loop, 12)


def test_read_name_follows_backward_pointer() -> None:
    data = b"\x00" * 12 + b"\x03web\x00" + b"\x03www\xc0\x0c"
    assert w.read_name(data, 17) == ("www.web", 23)


def test_overlong_name_rejected() -> None:
    data = b"\x00" * 12 + b"\x3f" + b"a" * 63
    data = data + (b"\x3f" + b"a" * 63) * 4 + b"\x00"
    with pytest.raises(w.WireError):
        w.read_name(data, 12)


def test_answer_a() -> None:
    q = w.parse_query(make_query("web"))
    msg = w.answer_a(q, ["172.18.0.2", "172.18.0.3"], ttl=600)
    flags, rcode, recs = parse_answer(msg)
    assert msg[:2] == b"\x12\x34"
    assert flags & w.FLAG_QR and flags & w.FLAG_RD and flags & w.FLAG_RA and not flags & w.FLAG_TC
    assert rcode == w.RCODE_NOERROR
    assert recs == [(w.TYPE_A, 600, bytes([172, 18, 0, 2])), (w.TYPE_A, 600, bytes([172, 18, 0, 3]))]


def test_answer_a_truncates_to_udp_size() -> None:
    q = w.parse_query(make_query("web"))
    ips = [f"10.0.{i // 256}.{i % 256}" for i in range(100)]
    msg = w.answer_a(q, ips)
    flags, _, recs = parse_answer(msg)
    assert len(msg) <= 512 and flags & w.FLAG_TC and 0 < len(recs) < 100
    flags, _, recs = parse_answer(w.answer_a(q, ips, max_size=65535))
    assert not flags & w.FLAG_TC and len(recs) == 100


def test_answer_empty_and_rcodes() -> None:
    q = w.parse_query(make_query("web", w.TYPE_AAAA))
    assert parse_answer(w.answer_empty(q))[1:] == (w.RCODE_NOERROR, [])
    assert parse_answer(w.answer_rcode(q, w.RCODE_NXDOMAIN))[1:] == (w.RCODE_NXDOMAIN, [])
    assert parse_answer(w.answer_rcode(q, w.RCODE_SERVFAIL))[1:] == (w.RCODE_SERVFAIL, [])


def test_answer_ptr() -> None:
    q = w.parse_query(make_query("2.0.18.172.in-addr.arpa", w.TYPE_PTR))
    _, _, recs = parse_answer(w.answer_ptr(q, ["web.mynet"]))
    assert recs == [(w.TYPE_PTR, 600, w.encode_name("web.mynet"))]


def test_ptr_target() -> None:
    assert w.ptr_target("2.0.18.172.in-addr.arpa") == "172.18.0.2"
    assert w.ptr_target("0.18.172.in-addr.arpa") is None
    assert w.ptr_target("x.0.18.172.in-addr.arpa") is None
    assert w.ptr_target("web") is None


def test_formerr() -> None:
    msg = w.formerr(b"\xab\xcd\x01")
    assert msg is not None and msg[:2] == b"\xab\xcd" and msg[3] & 0xF == w.RCODE_FORMERR
    assert w.formerr(b"\x01") is None
    assert w.formerr(b"\x00\x01\x80\x00") is None  # never answer a response


def test_id_rewrite_and_question() -> None:
    raw = make_query("example.test")
    moved = w.with_id(raw, 7)
    assert w.header(moved)[0] == 7 and moved[2:] == raw[2:]
    assert w.question_of(raw) == w.parse_query(raw).question


def test_tcp_framing() -> None:
    a, b = make_query("a"), make_query("bb")
    stream = w.frame(a) + w.frame(b)
    assert w.unframe(stream) == ([a, b], b"")
    assert w.unframe(stream[:-1]) == ([a], w.frame(b)[:-1])
    assert w.unframe(b"\x00") == ([], b"\x00")
    with pytest.raises(w.WireError):
        w.frame(b"x" * 70000)


def test_encode_name_rejects_bad_labels() -> None:
    assert w.encode_name(".") == b"\x00"
    with pytest.raises(w.WireError):
        w.encode_name("a..b")
    with pytest.raises(w.WireError):
        w.encode_name("x" * 64)
