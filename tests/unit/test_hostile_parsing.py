"""Defensive parsing (issue 14): netlink replies, daemon.json and image configs fed
random, truncated and mutated bytes with fixed seeds. Each parser returns its value or
raises the project's clean error (OSError for the kernel's replies, InvalidArgument for
user files), never another exception."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest

from minidock import config
from minidock.errors import InvalidArgument
from minidock.image import config as imgconfig
from minidock.image import loader
from minidock.net.kernel import netlink as nl
from minidock.runtime import container as records
from minidock.runtime.spec import RunOptions

SEED = 14


def _mutations(rng: random.Random, good: bytes, count: int):
    """Truncations, flipped bytes, spliced garbage and pure noise around `good`."""
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:
            yield good[:rng.randrange(len(good) + 1)]
        elif kind == 1:
            raw = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            yield bytes(raw)
        elif kind == 2:
            cut = rng.randrange(len(good) + 1)
            yield good[:cut] + bytes(rng.randrange(256) for _ in range(rng.randrange(40))) + good[cut:]
        else:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(120)))


# -- netlink -----------------------------------------------------------------------------------
def _good_link() -> bytes:
    info = nl.attr_nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, "veth"))
    return (nl.ifinfomsg(index=7, flags=1) + nl.attr_str(nl.IFLA_IFNAME, "eth0")
            + nl.attr_u32(nl.IFLA_MTU, 1500) + nl.attr(nl.IFLA_ADDRESS, b"\x02\x42\xac\x11\x00\x02")
            + info)


def _good_addr() -> bytes:
    return nl.ifaddrmsg(7, 16) + nl.attr(nl.IFA_LOCAL, b"\xac\x11\x00\x02")


def _good_route() -> bytes:
    return nl.rtmsg(dst_len=16) + nl.attr(nl.RTA_DST, b"\xac\x11\x00\x00") \
        + nl.attr_u32(nl.RTA_OIF, 7)


@pytest.mark.parametrize("decode, good", [
    (nl.decode_link, _good_link()), (nl.decode_addr, _good_addr()),
    (nl.decode_route, _good_route()),
])
def test_netlink_records_decode_or_refuse(decode, good):
    assert decode(good) is not None
    rng = random.Random(SEED)
    refused = 0
    for raw in _mutations(rng, good, 5000):
        try:
            decode(raw)
        except nl.BadReply:
            refused += 1
    assert refused > 0


def test_netlink_datagrams_split_cleanly():
    good = nl.nlmsg(nl.RTM_NEWLINK, 2, 5, _good_link()) + nl.nlmsg(nl.NLMSG_DONE, 2, 5, b"\0" * 4)
    rng = random.Random(SEED)
    for raw in _mutations(rng, good, 5000):
        for mtype, _flags, _seq, body in nl.split_messages(raw):
            assert isinstance(body, bytes)
            nl.parse_attrs(body)
            try:
                nl.error_code(body)
            except nl.BadReply:
                pass


def test_netlink_error_code():
    assert nl.error_code(struct.pack("=i", -17)) == 17
    with pytest.raises(nl.BadReply):
        nl.error_code(b"\x01")


# -- daemon.json -------------------------------------------------------------------------------
GOOD_DAEMON = {"bip": "10.70.0.1/16", "mtu": 1400, "icc": False, "dns": ["10.0.0.1"],
               "default-address-pools": [{"base": "10.80.0.0/16", "size": 24}],
               "userland-proxy": True}


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1 << 70, 3.5, 1500, float("1e308")])
    if kind == 3:
        return rng.choice(["", "10.0.0.0/8", "x" * 300, "\u0000", "::1", "999.1.1.1/33"])
    if kind == 4:
        return rng.choice([[], {}])
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(list(config._KEYS) + ["base", "size", "Env", "x"]): _random_json(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def test_daemon_json_any_bytes(tmp_path):
    path = tmp_path / "daemon.json"
    rng = random.Random(SEED)
    good = json.dumps(GOOD_DAEMON).encode()
    samples = list(_mutations(rng, good, 3000))
    samples += [b"[" * 100000 + b"]" * 100000, b"\xff\xfe{}", b"{\"bip\": \"\xff\"}", b"\x00" * 10]
    for raw in samples:
        path.write_bytes(raw)
        try:
            config.load_config(str(path))
        except InvalidArgument:
            pass


def test_daemon_json_any_values():
    rng = random.Random(SEED)
    for _ in range(5000):
        doc = dict(GOOD_DAEMON)
        for _ in range(rng.randint(1, 3)):
            doc[rng.choice(list(config._KEYS))] = _random_json(rng)
        try:
            config.parse_config(doc)
        except InvalidArgument:
            pass


# -- image configs -------------------------------------------------------------------------------
GOOD_IMAGE = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["A=b"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}},
                         "Labels": {"a": "b"}, "WorkingDir": "/w", "User": "1:2"},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}}


class _Image:
    def __init__(self, cfg: dict) -> None:
        self.config, self.id, self.layer_dirs = cfg, "b" * 64, ["/l"]


def _use(doc: Any) -> None:
    """What loading and running do with an image config, all of it pure."""
    cfg = loader._parse_config(doc) if isinstance(doc, bytes) else doc
    imgconfig.diff_ids(cfg)
    norm = imgconfig.normalize_config(cfg.get("config"))
    records.build_doc("c" * 64, "n", _Image(norm), RunOptions(image="x", publish_all=True),
                      [], "/log", "2024-01-01T00:00:00Z")


def test_image_config_any_bytes():
    rng = random.Random(SEED)
    good = json.dumps(GOOD_IMAGE).encode()
    for raw in [*_mutations(rng, good, 3000), b"[" * 100000, b"\xff" * 10]:
        try:
            _use(raw)
        except InvalidArgument:
            pass


def test_image_config_any_values():
    rng = random.Random(SEED)
    keys = ["Env", "Cmd", "Entrypoint", "ExposedPorts", "Labels", "Volumes", "WorkingDir",
            "User", "Hostname", "OnBuild", "StopSignal"]
    for _ in range(5000):
        doc = json.loads(json.dumps(GOOD_IMAGE))
        for _ in range(rng.randint(1, 3)):
            doc["config"][rng.choice(keys)] = _random_json(rng)
        if rng.random() < 0.1:
            doc["rootfs"] = _random_json(rng)
        try:
            _use(doc)
        except InvalidArgument:
            pass


def test_nfnetlink_replies_parse_or_give_up():
    from minidock.net.kernel import nfnetlink as nfn
    from minidock.net.kernel.nlmsg import attr, attr_str, nlmsg
    gen = nlmsg(nfn.NFT_GETGEN, 0, 1, b"\x00\x00\x00\x00" + attr(nfn.NFTA_GEN_ID, b"\x00\x00\x00\x07"))
    rule = nlmsg(nfn.NFT_NEWRULE, 2, 1, b"\x02\x00\x00\x00" + attr_str(nfn.NFTA_RULE_CHAIN, "FORWARD"))
    assert nfn.parse_gen(gen) == 7
    counts: dict[str, int] = {}
    assert not nfn.parse_rule_dump(rule, counts) and counts == {"FORWARD": 1}
    rng = random.Random(SEED)
    for raw in _mutations(rng, gen, 3000):
        assert nfn.parse_gen(raw) is None or isinstance(nfn.parse_gen(raw), int)
    for raw in _mutations(rng, rule + rule, 3000):
        nfn.parse_rule_dump(raw, {})
