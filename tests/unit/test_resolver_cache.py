"""The resolver's answer cache: same query bytes, same answer (with the asker's id);
forgotten when another process changes the store; never for shuffled answers."""

from __future__ import annotations

import socket
import struct

from minidock.net.dns import dnsrecords as r
from minidock.net.dns import dnswire as w
from minidock.net.dns.resolver import Paths
from minidock.net.dns.resolverd import Resolver, Sandbox
from minidock.store import Store

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _query(name: str, qid: int) -> bytes:
    return (struct.pack("!HHHHHH", qid, w.FLAG_RD, 1, 0, 0, 0) + w.encode_name(name)
            + struct.pack("!HH", w.TYPE_A, w.CLASS_IN))


def _addresses(msg: bytes) -> list[str]:
    _, _, _, an, _, _ = struct.unpack_from("!HHHHHH", msg)
    # each A record: name pointer (2), type, class, ttl, length (10), address (4)
    ends = [len(msg) - 16 * i for i in range(an)][::-1]
    return [socket.inet_ntoa(msg[end - 4:end]) for end in ends]


def _resolver(tmp_path) -> tuple[Resolver, Store]:
    root = str(tmp_path / "root")
    writer = Store(root)                       # another process's connection
    writer.put("network", "n1", {"Name": "front"}, name="front")
    r.set_endpoint(writer, "n1", A, "172.18.0.2", ["web"])
    r.set_endpoint(writer, "n1", B, "172.18.0.3", ["db", "both"])
    r.set_endpoint(writer, "n1", C, "172.18.0.4", ["both"])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    res = Resolver(Paths(str(tmp_path / "run")), root, listener)
    return res, writer


def _ask(res: Resolver, sb: Sandbox, raw: bytes) -> bytes:
    got: list[bytes] = []
    res.check_cache()
    hit = res.cache.get((sb.cid, raw[2:]))
    if hit is not None:
        return raw[:2] + hit
    res.answer(sb, raw, False, got.append)
    return got[0]


def test_cached_answer_carries_the_askers_id_and_follows_store_changes(tmp_path) -> None:
    res, writer = _resolver(tmp_path)
    sb = Sandbox(A, "/nonexistent", 0, None, None)       # type: ignore[arg-type]
    first = _ask(res, sb, _query("db", 1))
    assert _addresses(first) == ["172.18.0.3"] and first[:2] == b"\x00\x01"
    assert len(res.cache) == 1
    again = _ask(res, sb, _query("db", 0xBEEF))
    assert again[:2] == b"\xbe\xef" and again[2:] == first[2:]
    # another container asking the same bytes has its own entry (answers are scoped)
    other = Sandbox(C, "/nonexistent", 0, None, None)    # type: ignore[arg-type]
    _ask(res, other, _query("db", 2))
    assert len(res.cache) == 2
    # the record changes in another process: the next wake-up forgets the cache
    r.set_endpoint(writer, "n1", B, "172.18.0.9", ["db"])
    assert _addresses(_ask(res, sb, _query("db", 3))) == ["172.18.0.9"]


def test_shuffled_and_missing_answers_are_not_cached(tmp_path) -> None:
    res, _writer = _resolver(tmp_path)
    sb = Sandbox(A, "/nonexistent", 0, None, None)       # type: ignore[arg-type]
    assert sorted(_addresses(_ask(res, sb, _query("both", 1)))) == ["172.18.0.3", "172.18.0.4"]
    assert res.cache == {}
    assert res.local_answer(A, w.parse_query(_query("nowhere", 1)), False) is None
    assert res.cache == {}
