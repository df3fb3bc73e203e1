"""net/kernel/netlink.py message encoding and decoding, byte for byte (no root, no kernel)."""

from __future__ import annotations

import socket
import struct

from minidock.net.kernel import netlink as nl


def test_attr_padding_and_header():
    a = nl.attr(3, b"abc")
    assert a == struct.pack("=HH", 7, 3) + b"abc" + b"\0"
    assert nl.attr_str(3, "eth0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3
    assert nl.attr_u32(4, 1500) == struct.pack("=HHI", 8, 4, 1500)
    nested = nl.attr_nested(18, nl.attr_str(1, "veth"))
    assert struct.unpack_from("=HH", nested)[1] == 18 | nl.NLA_F_NESTED


def test_nlmsg_header():
    msg = nl.nlmsg(nl.RTM_NEWLINK, nl.NLM_F_REQUEST | nl.NLM_F_ACK, 7, b"x" * 16)
    length, mtype, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (length, mtype, flags, seq, pid) == (32, 16, 5, 7, 0)


def test_parse_attrs_roundtrip():
    data = nl.attr_str(nl.IFLA_IFNAME, "br0") + nl.attr_u32(nl.IFLA_MTU, 1400)
    at = nl.parse_attrs(data)
    assert at[nl.IFLA_IFNAME] == b"br0\0" and struct.unpack("=I", at[nl.IFLA_MTU])[0] == 1400
    nested = nl.attr_nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, "bridge"))
    assert nl.IFLA_LINKINFO in nl.parse_attrs(nested)


def test_veth_with_peer_in_netns():
    body = nl.msg_veth_add("veth1234567", "eth0", mtu=1500, master=2, up=True,
                           peer_netns_fd=9, peer_mac="02:42:ac:11:00:02")
    fam, _t, index, flags, change = struct.unpack_from("=BxHiII", body)
    assert (index, flags & nl.IFF_UP, change) == (0, 1, 1)
    at = nl.parse_attrs(body, 16)
    assert at[nl.IFLA_IFNAME] == b"veth1234567\0"
    assert struct.unpack("=I", at[nl.IFLA_MASTER])[0] == 2
    info = nl.parse_attrs(at[nl.IFLA_LINKINFO])
    assert info[nl.IFLA_INFO_KIND] == b"veth\0"
    peer = nl.parse_attrs(info[nl.IFLA_INFO_DATA])[nl.VETH_INFO_PEER]
    pat = nl.parse_attrs(peer, 16)  # the peer carries its own ifinfomsg
    assert pat[nl.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", pat[nl.IFLA_NET_NS_FD])[0] == 9
    assert pat[nl.IFLA_ADDRESS] == bytes([2, 0x42, 0xac, 0x11, 0, 2])


def test_addr_message_has_local_and_broadcast():
    body = nl.msg_addr(5, "172.17.0.1", 16)
    fam, plen, _f, scope, index = struct.unpack_from("=BBBBI", body)
    assert (fam, plen, index) == (socket.AF_INET, 16, 5)
    at = nl.parse_attrs(body, 8)
    assert at[nl.IFA_LOCAL] == socket.inet_aton("172.17.0.1")
    assert at[nl.IFA_BROADCAST] == socket.inet_aton("172.17.255.255")


def test_default_route_message():
    body = nl.msg_route("0.0.0.0/0", "172.17.0.1")
    fields = struct.unpack_from("=BBBBBBBBI", body)
    assert fields[1] == 0 and fields[4] == nl.RT_TABLE_MAIN and fields[6] == nl.RT_SCOPE_UNIVERSE
    at = nl.parse_attrs(body, 12)
    assert nl.RTA_DST not in at and at[nl.RTA_GATEWAY] == socket.inet_aton("172.17.0.1")
    link_route = nl.parse_attrs(nl.msg_route("10.0.0.0/8", oif=3), 12)
    assert link_route[nl.RTA_DST] == socket.inet_aton("10.0.0.0")


def test_decode_link_and_route():
    body = (nl.ifinfomsg(4, nl.IFF_UP) + nl.attr_str(nl.IFLA_IFNAME, "minidock0")
            + nl.attr_u32(nl.IFLA_MTU, 1500) + nl.attr(nl.IFLA_ADDRESS, bytes([2, 0x42, 1, 2, 3, 4]))
            + nl.attr_nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, "bridge")))
    link = nl.decode_link(body)
    assert link == nl.Link(4, "minidock0", 1, 1500, 0, "02:42:01:02:03:04", "bridge")
    assert link.up
    route = nl.decode_route(nl.rtmsg(16) + nl.attr(nl.RTA_DST, socket.inet_aton("172.17.0.0"))
                            + nl.attr_u32(nl.RTA_OIF, 4))
    assert route == nl.Route("172.17.0.0/16", "", 4, nl.RT_TABLE_MAIN)


def test_split_messages_and_error_payload():
    err = struct.pack("=i", -17) + b"\0" * 16
    data = nl.nlmsg(nl.NLMSG_ERROR, 0, 3, err) + nl.nlmsg(nl.NLMSG_DONE, 0, 4, b"\0" * 4)
    msgs = list(nl.split_messages(data))
    assert [(m[0], m[2]) for m in msgs] == [(nl.NLMSG_ERROR, 3), (nl.NLMSG_DONE, 4)]
    assert struct.unpack_from("=i", msgs[0][3])[0] == -17


def test_hairpin_message():
    body = nl.msg_brport_hairpin(7, True)
    assert body[0] == nl.AF_BRIDGE
    protinfo = nl.parse_attrs(body, 16)[nl.IFLA_PROTINFO]
    assert nl.parse_attrs(protinfo)[nl.IFLA_BRPORT_MODE] == b"\x01"


def test_import_is_cheap():
    """No pyroute2, asyncio or logging behind the import."""
    import subprocess
    import sys
    code = ("import sys, minidock.net.kernel.netlink, minidock.net.kernel.netns; "
            "bad = [m for m in ('pyroute2', 'asyncio', 'logging', 'multiprocessing', 'subprocess') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_ipv6_addr_message_without_dad():
    msg = nl.msg_addr6(7, "2001:db8:1::1", 64)
    family, plen, flags, scope, index = struct.unpack_from("=BBBBI", msg)
    assert (family, plen, flags, scope, index) == (socket.AF_INET6, 64, nl.IFA_F_NODAD, 0, 7)
    at = nl.parse_attrs(msg, 8)
    assert at[nl.IFA_LOCAL] == at[nl.IFA_ADDRESS] == socket.inet_pton(socket.AF_INET6,
                                                                       "2001:db8:1::1")
    assert struct.unpack_from("=BBBBI", nl.msg_addr6(7, "fe80::1", 64, nl.RT_SCOPE_LINK))[3] \
        == nl.RT_SCOPE_LINK


def test_ipv6_default_route_message():
    msg = nl.msg_route6("::/0", "2001:db8:1::1")
    fields = struct.unpack_from("=BBBBBBBBI", msg)
    assert fields[0] == socket.AF_INET6 and fields[1] == 0       # family, dst_len
    at = nl.parse_attrs(msg, 12)
    assert nl.RTA_DST not in at
    assert at[nl.RTA_GATEWAY] == socket.inet_pton(socket.AF_INET6, "2001:db8:1::1")
