"""The proxy's control protocol and table file (minidock.net.ports.proxyproto): pure, no root."""

from __future__ import annotations

import errno

import pytest

from minidock.errors import InvalidArgument
from minidock.net.ports import proxy, proxyproto as pp
from minidock.net.ports.portspec import PortBinding

TCP = ("tcp", "0.0.0.0", 8080, "172.17.0.2", 80)
UDP6 = ("udp", "::", 53, "172.17.0.2", 53)


def test_request_round_trip():
    data = pp.encode_request("publish", "abc123", serve=False, last=True, forwards=[TCP, UDP6])
    assert data == b"publish abc123 0 1\ntcp 0.0.0.0 8080 172.17.0.2 80\nudp :: 53 172.17.0.2 53"
    assert pp.decode_request(data) == ("publish", "abc123", False, True, [TCP, UDP6])


def test_simple_ops_have_no_forwards():
    assert pp.decode_request(pp.encode_request("ping")) == ("ping", "-", True, True, [])
    assert pp.encode_request("unpublish", "c1") == b"unpublish c1 1 1"


@pytest.mark.parametrize("data, cause", [
    (b"dance c1 1 1", "malformed header"),
    (b"publish c1 1", "malformed header"),
    (b"publish c1 2 1", "malformed header"),
    (b"publish c1 1 1\nsctp 0.0.0.0 80 10.0.0.2 80", "invalid proto: sctp"),
    (b"publish c1 1 1\ntcp 0.0.0.0 0 10.0.0.2 80", "invalid port: 0"),
    (b"publish c1 1 1\ntcp 0.0.0.0 80 10.0.0.2 65536", "invalid port: 65536"),
    (b"publish c1 1 1\ntcp 0.0.0.0 http 10.0.0.2 80", "invalid port: http"),
    (b"publish c1 1 1\ntcp 300.0.0.1 80 10.0.0.2 80", "invalid IP address: 300.0.0.1"),
    (b"publish c1 1 1\ntcp 0.0.0.0 80 10.0.0.2", "forward needs 5 fields, got 4"),
    (b"publish c1 1 1\n", "forward needs 5 fields, got 1"),
    (b"\xff\xfe", "message is not utf-8"),
])
def test_malformed_requests_are_rejected(data, cause):
    with pytest.raises(pp.WireError, match=cause):
        pp.decode_request(data)


@pytest.mark.parametrize("owner", ["", "a b", "a\nb", "x" * 257])
def test_bad_owner(owner):
    with pytest.raises(pp.WireError, match="invalid owner"):
        pp.encode_request("unpublish", owner)


def test_split_publish_chunks_fds_and_marks_only_the_last():
    fwds = [("tcp", "0.0.0.0", 1000 + i, "10.0.0.2", 80) for i in range(7)]
    packets = pp.split_publish("c1", fwds, True, max_fds=3)
    assert [list(idx) for _, idx in packets] == [[0, 1, 2], [3, 4, 5], [6]]
    decoded = [pp.decode_request(msg) for msg, _ in packets]
    assert [d[3] for d in decoded] == [False, False, True]
    assert [f for d in decoded for f in d[4]] == fwds


def test_split_publish_of_a_whole_range_stays_under_the_kernel_limits():
    fwds = [("tcp", "0.0.0.0", 1 + i, "10.0.0.2", 1 + i) for i in range(1000)]
    packets = pp.split_publish("c1", fwds, True)
    assert all(len(idx) <= pp.MAX_FDS <= 253 and len(msg) <= pp.MAX_MSG for msg, idx in packets)
    assert sum(len(idx) for _, idx in packets) == 1000


def test_reply_round_trip():
    assert pp.decode_reply(pp.encode_reply(True, detail=["42", "w"])) == (True, "", ["42", "w"])
    assert pp.decode_reply(pp.encode_reply(False, "bad\nthing")) == (False, "bad thing", [])
    with pytest.raises(pp.WireError):
        pp.decode_reply(b"")
    with pytest.raises(pp.WireError):
        pp.decode_reply(b"maybe")


def test_table_round_trip_is_json():
    import json
    table = {"c1": [(TCP, True), (UDP6, False)], "c2": []}
    text = pp.encode_table(table)
    assert json.loads(text)["owners"]["c1"][0] == {
        "proto": "tcp", "host_ip": "0.0.0.0", "host_port": 8080,
        "container_ip": "172.17.0.2", "container_port": 80, "serve": True}
    assert pp.decode_table(text) == table
    assert pp.decode_table(pp.encode_table({})) == {}


@pytest.mark.parametrize("text", ["", "[]", '{"owners": {"c1": [{"proto": "tcp"}]}}',
                                  '{"owners": {"c1": [{"proto": "icmp", "host_ip": "::", '
                                  '"host_port": 1, "container_ip": "::1", "container_port": 1, '
                                  '"serve": true}]}}'])
def test_malformed_table(text):
    with pytest.raises(pp.WireError, match="malformed proxy table"):
        pp.decode_table(text)


def test_bind_error_uses_dockers_words():
    err = OSError(errno.EADDRINUSE, "Address already in use")
    assert pp.bind_error(TCP, err) == ("Error starting userland proxy: listen tcp4 0.0.0.0:8080: "
                                      "bind: address already in use")
    assert pp.listen_address(UDP6) == "udp6 [::]:53"


def test_publish_validates_before_binding():
    bad = PortBinding("tcp", 80, "0.0.0.0", 70000, container_ip="10.0.0.2")
    with pytest.raises(InvalidArgument, match="invalid port: 70000"):
        proxy.publish(object(), "c1", [bad])


def test_wire_forward_is_built_from_and_decoded_into_a_port_binding():
    b = PortBinding("udp", 53, "::", 5353, container_ip="10.0.0.2")
    assert proxy.to_wire(b) == ("udp", "::", 5353, "10.0.0.2", 53)
    assert proxy.from_wire(pp.check_forward("udp :: 5353 10.0.0.2 53".split())) == b
