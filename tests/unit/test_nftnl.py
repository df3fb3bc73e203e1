"""nftnl: the netfilter netlink messages for set elements (pure encoding)."""

import socket
import struct

from minidock.net.kernel import nftnl


def test_keys_use_register_layout():
    assert nftnl.key_ifname("veth1") == b"veth1" + b"\0" * 11
    assert nftnl.key_ipv4("172.17.0.2") == bytes([172, 17, 0, 2])
    assert nftnl.key_ether("02:42:ac:11:00:02") == bytes.fromhex("0242ac110002") + b"\0\0"


def test_newsetelem_header_and_attributes():
    key = nftnl.key_ifname("veth1")
    msg = nftnl.msg_setelems(False, "minidock", "guarded", [key], seq=7)
    length, mtype, flags, seq, _pid = struct.unpack_from("=LHHLL", msg)
    assert length == len(msg) and seq == 7
    assert mtype == (nftnl.NFNL_SUBSYS_NFTABLES << 8) | nftnl.NFT_MSG_NEWSETELEM
    assert flags & nftnl.NLM_F_CREATE and flags & nftnl.NLM_F_ACK
    family, version, res_id = struct.unpack_from("!BBH", msg, 16)
    assert (family, version, res_id) == (nftnl.NFPROTO_BRIDGE, 0, 0)
    assert b"minidock\0" in msg and b"guarded\0" in msg and key in msg


def test_delete_has_no_create_flag_and_batch_wraps():
    msg = nftnl.msg_setelems(True, "t", "s", [b"x" * 16], seq=2)
    _l, mtype, flags, _s, _p = struct.unpack_from("=LHHLL", msg)
    assert mtype & 0xff == nftnl.NFT_MSG_DELSETELEM and not flags & nftnl.NLM_F_CREATE
    whole = nftnl.batch([msg], seq=1)
    assert struct.unpack_from("=H", whole, 4)[0] == nftnl.NFNL_MSG_BATCH_BEGIN
    res_id = struct.unpack_from("!H", whole, 18)[0]
    assert res_id == nftnl.NFNL_SUBSYS_NFTABLES
    assert whole[20:20 + len(msg)] == msg
    assert struct.unpack_from("=H", whole, 20 + len(msg) + 4)[0] == nftnl.NFNL_MSG_BATCH_END
    assert socket.AF_UNSPEC == whole[16]
