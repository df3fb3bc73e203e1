"""A small rtnetlink client on the standard library: minidock's one seam to the kernel's
link, address and route tables.

Why not pyroute2 here: `from pyroute2 import IPRoute` costs 130-300 ms on this kind of
machine and even `pyroute2.netlink.rtnl.ifinfmsg` alone 60-80 ms (it pulls in logging,
multiprocessing and asyncio), while the whole `minidock run --net bridge` budget is about
120 ms. The operations minidock needs are a dozen fixed-shape messages, so this module
encodes them with `struct` over one `socket.AF_NETLINK` socket; importing it costs well
under 2 ms. pyroute2 stays a project dependency for the *tests*: the integration tests
cross-check what this client made with pyroute2 and with `ip -j`, a second and third
opinion from independent code.

Shape of the module:
* pure encoders (`ifinfomsg`, `msg_veth_add`, ...) on the shared codec (nlmsg.py:
  `nlmsg`, `attr`, `parse_attrs`), checked byte for byte by the unit tests, without root;
* `Netlink`: one socket (optionally opened inside another netns: a socket stays bound to
  the netns it was created in), one `request()` that sends a message, reads replies up
  to the ACK / DONE, and turns a kernel error into `OSError(errno)`;
* the operations, named like `ip` does them: `link_get`, `bridge_add`, `veth_add`,
  `link_set`, `link_del`, `addr_add`/`addr_del`/`addr_list`, `route_add`, `route_list`,
  `brport_set_hairpin`.
"""

from __future__ import annotations

import errno as _errno
import os
import _socket as socket  # not `socket`: its import builds enums (~3 ms per run)
import struct
from minidock.hints import NamedTuple

from minidock import pipeline as _pl   # trace notes (built only when tracing)
from minidock.net.kernel.nlmsg import (
    NLA_F_NESTED, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_MULTI, NLM_F_REQUEST,
    NLMSG_DONE, NLMSG_ERROR, BadReply, attr, attr_nested, attr_str, attr_u32, error_code,
    nlmsg, parse_attrs, split_messages)

# -- constants (linux/rtnetlink.h, linux/if_link.h); the codec: nlmsg.py ------------
NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_MASTER, IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_PID = 10, 12, 18, 19
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin

IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 6, 7, 15
RT_TABLE_MAIN = 254
RTPROT_BOOT, RTPROT_KERNEL = 3, 2
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RTN_UNICAST = 1

AF_UNSPEC, AF_INET, AF_BRIDGE = 0, socket.AF_INET, 7
IFF_UP = 0x1

_IFI = struct.Struct("=BxHiII")     # ifinfomsg: family, type, index, flags, change
_IFA = struct.Struct("=BBBBI")      # ifaddrmsg: family, prefixlen, flags, scope, index
_RTM = struct.Struct("=BBBBBBBBI")  # rtmsg: family dst_len src_len tos table proto scope type flags


# -- pure encoding ------------------------------------------------------------------
def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = AF_UNSPEC) -> bytes:
    return _IFI.pack(family, 0, index, flags, change)


def ifaddrmsg(index: int, prefixlen: int, scope: int = RT_SCOPE_UNIVERSE) -> bytes:
    return _IFA.pack(AF_INET, prefixlen, 0, scope, index)


def rtmsg(dst_len: int = 0, scope: int = RT_SCOPE_UNIVERSE, proto: int = RTPROT_BOOT,
          table: int = RT_TABLE_MAIN, rtype: int = RTN_UNICAST) -> bytes:
    return _RTM.pack(AF_INET, dst_len, 0, 0, table, proto, scope, rtype, 0)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def _cstr(raw: bytes) -> str:
    """A kernel string; an interface name is any bytes, kept as the os module does."""
    return raw.split(b"\0", 1)[0].decode(errors="surrogateescape")


def _u32(at: dict[int, bytes], kind: int, default: int = 0) -> int:
    raw = at.get(kind)
    if raw is None:
        return default
    if len(raw) < 4:
        raise BadReply(f"attribute {kind} is {len(raw)} bytes")
    return struct.unpack_from("=I", raw)[0]


def _ipv4(raw: bytes, what: str) -> str:
    if len(raw) != 4:
        raise BadReply(f"{what} is {len(raw)} bytes")
    return socket.inet_ntoa(raw)


# -- decoded records ----------------------------------------------------------------
class Link(NamedTuple):
    index: int
    name: str
    flags: int
    mtu: int
    master: int
    mac: str
    kind: str

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


class Addr(NamedTuple):
    index: int
    address: str
    prefixlen: int


class Route(NamedTuple):
    dst: str          # "0.0.0.0/0" for the default route
    gateway: str
    oif: int
    table: int


def _header(fmt: struct.Struct, payload: bytes, what: str) -> tuple:
    if len(payload) < fmt.size:
        raise BadReply(f"truncated {what}")
    return fmt.unpack_from(payload, 0)


def decode_link(payload: bytes) -> Link:
    """A link from an RTM_NEWLINK payload; BadReply when it is malformed."""
    _fam, _type, index, flags, _chg = _header(_IFI, payload, "ifinfomsg")
    at = parse_attrs(payload, _IFI.size)
    kind = ""
    if IFLA_LINKINFO in at:
        kind = _cstr(parse_attrs(at[IFLA_LINKINFO]).get(IFLA_INFO_KIND, b""))
    return Link(
        index=index, name=_cstr(at.get(IFLA_IFNAME, b"")), flags=flags,
        mtu=_u32(at, IFLA_MTU), master=_u32(at, IFLA_MASTER),
        mac=":".join(f"{b:02x}" for b in at.get(IFLA_ADDRESS, b"")), kind=kind)


def decode_addr(payload: bytes) -> Addr | None:
    """An IPv4 address from an RTM_NEWADDR payload (None for other families)."""
    family, plen, _fl, _scope, index = _header(_IFA, payload, "ifaddrmsg")
    if family != AF_INET:
        return None
    at = parse_attrs(payload, _IFA.size)
    raw = at.get(IFA_LOCAL) or at.get(IFA_ADDRESS) or b""
    return Addr(index, _ipv4(raw, "address"), plen)


def decode_route(payload: bytes) -> Route | None:
    """An IPv4 unicast route from an RTM_NEWROUTE payload (None for others)."""
    family, dst_len, _s, _t, table, _p, _sc, rtype, _f = _header(_RTM, payload, "rtmsg")
    if family != AF_INET or rtype != RTN_UNICAST:
        return None
    at = parse_attrs(payload, _RTM.size)
    table = _u32(at, RTA_TABLE, table)
    dst = _ipv4(at[RTA_DST], "destination") if RTA_DST in at else "0.0.0.0"
    gw = _ipv4(at[RTA_GATEWAY], "gateway") if RTA_GATEWAY in at else ""
    return Route(f"{dst}/{dst_len}", gw, _u32(at, RTA_OIF), table)


# -- message builders (pure: what each operation sends) ------------------------------
def msg_bridge_add(name: str, mac: str | None = None, mtu: int = 0) -> bytes:
    attrs = attr_str(IFLA_IFNAME, name)
    if mac:
        attrs += attr(IFLA_ADDRESS, mac_bytes(mac))
    if mtu:
        attrs += attr_u32(IFLA_MTU, mtu)
    attrs += attr_nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
    return ifinfomsg() + attrs


def msg_veth_add(name: str, peer: str, *, mtu: int = 0, master: int = 0, up: bool = False,
                 peer_netns_fd: int | None = None, peer_mac: str | None = None) -> bytes:
    """A veth pair; the peer may be created directly in another netns (by fd)."""
    peer_attrs = attr_str(IFLA_IFNAME, peer)
    if mtu:
        peer_attrs += attr_u32(IFLA_MTU, mtu)
    if peer_mac:
        peer_attrs += attr(IFLA_ADDRESS, mac_bytes(peer_mac))
    if peer_netns_fd is not None:
        peer_attrs += attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
    info = attr_nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "veth"),
                       attr_nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, ifinfomsg() + peer_attrs)))
    attrs = attr_str(IFLA_IFNAME, name)
    if mtu:
        attrs += attr_u32(IFLA_MTU, mtu)
    if master:
        attrs += attr_u32(IFLA_MASTER, master)
    return ifinfomsg(flags=IFF_UP if up else 0, change=IFF_UP if up else 0) + attrs + info


def msg_link_set(index: int, *, up: bool | None = None, mtu: int = 0, master: int | None = None,
                 name: str | None = None, mac: str | None = None,
                 netns_fd: int | None = None) -> bytes:
    flags = change = 0
    if up is not None:
        change = IFF_UP
        flags = IFF_UP if up else 0
    attrs = b""
    if name:
        attrs += attr_str(IFLA_IFNAME, name)
    if mtu:
        attrs += attr_u32(IFLA_MTU, mtu)
    if master is not None:
        attrs += attr_u32(IFLA_MASTER, master)
    if mac:
        attrs += attr(IFLA_ADDRESS, mac_bytes(mac))
    if netns_fd is not None:
        attrs += attr_u32(IFLA_NET_NS_FD, netns_fd)
    return ifinfomsg(index, flags, change) + attrs


def msg_addr(index: int, address: str, prefixlen: int) -> bytes:
    raw = socket.inet_aton(address)
    bcast = _broadcast(raw, prefixlen)
    return (ifaddrmsg(index, prefixlen) + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
            + (attr(IFA_BROADCAST, bcast) if prefixlen < 31 else b""))


def _broadcast(raw: bytes, prefixlen: int) -> bytes:
    value = struct.unpack("!I", raw)[0] | ((1 << (32 - prefixlen)) - 1)
    return struct.pack("!I", value)


def msg_route(dst: str, gateway: str | None = None, oif: int = 0) -> bytes:
    """A main-table IPv4 route: `dst` "a.b.c.d/n" ("0.0.0.0/0" = default)."""
    net, _, plen = dst.partition("/")
    dst_len = int(plen or 32)
    scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
    attrs = attr(RTA_DST, socket.inet_aton(net)) if dst_len else b""
    if gateway:
        attrs += attr(RTA_GATEWAY, socket.inet_aton(gateway))
    if oif:
        attrs += attr_u32(RTA_OIF, oif)
    return rtmsg(dst_len, scope) + attrs


IFA_F_NODAD = 0x02
AF_INET6 = socket.AF_INET6


def msg_addr6(index: int, address: str, prefixlen: int, scope: int = RT_SCOPE_UNIVERSE) -> bytes:
    """An IPv6 address, usable at once (IFA_F_NODAD, as Docker's: no duplicate
    address detection on a bridge whose addresses IPAM hands out)."""
    raw = socket.inet_pton(AF_INET6, address)
    return (_IFA.pack(AF_INET6, prefixlen, IFA_F_NODAD, scope, index)
            + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw))


def msg_route6(dst: str, gateway: str | None = None, oif: int = 0) -> bytes:
    """A main-table IPv6 route: `dst` "addr/n" ("::/0" = default)."""
    net, _, plen = dst.partition("/")
    dst_len = int(plen or 128)
    attrs = attr(RTA_DST, socket.inet_pton(AF_INET6, net)) if dst_len else b""
    if gateway:
        attrs += attr(RTA_GATEWAY, socket.inet_pton(AF_INET6, gateway))
    if oif:
        attrs += attr_u32(RTA_OIF, oif)
    return _RTM.pack(AF_INET6, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                     RTN_UNICAST, 0) + attrs


def msg_brport_hairpin(index: int, on: bool) -> bytes:
    return (ifinfomsg(index, family=AF_BRIDGE)
            + attr_nested(IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([1 if on else 0]))))


# -- the socket ---------------------------------------------------------------------
class Netlink:
    """One rtnetlink socket. `Netlink(netns_fd=fd)` opens it inside that netns."""

    def __init__(self, netns_fd: int | None = None) -> None:
        if netns_fd is None:
            self.sock = _open_socket()
        else:
            from minidock.net.kernel.netns import in_netns_fd
            with in_netns_fd(netns_fd):
                self.sock = _open_socket()
        self._seq = 0
        self._names: dict[int, str] = {}   # index -> name seen (for the trace's notes)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, payload: bytes) -> list[bytes]:
        """Send one request; return the payloads of the replies (dump or ACK'd)."""
        self._seq += 1
        seq = self._seq
        self.sock.send(nlmsg(msg_type, flags | NLM_F_REQUEST, seq, payload))
        out: list[bytes] = []
        while True:
            data = self.sock.recv(1 << 16)
            for mtype, mflags, mseq, body in split_messages(data):
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    code = error_code(body)
                    if code:
                        raise OSError(code, os.strerror(code))
                    return out
                if mtype == NLMSG_DONE:
                    return out
                out.append(body)
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return out

    def _do(self, msg_type: int, payload: bytes, flags: int = 0) -> None:
        self.request(msg_type, flags | NLM_F_ACK, payload)

    # links -------------------------------------------------------------------------
    def link_get(self, name: str) -> Link | None:
        """The link called `name`, or None when there is none."""
        try:
            replies = self.request(RTM_GETLINK, 0, ifinfomsg() + attr_str(IFLA_IFNAME, name))
        except OSError as err:
            if err.errno in (_errno.ENODEV, _errno.ENOENT):
                return None
            raise
        link = decode_link(replies[0]) if replies else None
        if link is not None:
            self._names[link.index] = link.name
        return link

    def link_list(self) -> list[Link]:
        return [decode_link(b) for b in self.request(RTM_GETLINK, NLM_F_DUMP, ifinfomsg())]

    def bridge_add(self, name: str, mac: str | None = None, mtu: int = 0) -> None:
        self._do(RTM_NEWLINK, msg_bridge_add(name, mac, mtu), NLM_F_CREATE | NLM_F_EXCL)
        if _pl.TRACING:
            _pl.note("+", "bridge", f"{name}" + (f" mac {mac}" if mac else ""))

    def veth_add(self, name: str, peer: str, **kw: object) -> None:
        self._do(RTM_NEWLINK, msg_veth_add(name, peer, **kw), NLM_F_CREATE | NLM_F_EXCL)  # type: ignore[arg-type]
        if _pl.TRACING:
            where = " (in the sandbox's netns)" if kw.get("peer_netns_fd") is not None else ""
            _pl.note("+", "veth", f"{name} ⇄ {peer}{where}"
                     + (f" mac {kw['peer_mac']}" if kw.get("peer_mac") else "")
                     + (f", {name} master {self._dev(kw['master'])}" if kw.get("master") else ""))

    def link_set(self, index: int, **kw: object) -> None:
        self._do(RTM_NEWLINK, msg_link_set(index, **kw))  # type: ignore[arg-type]

    def link_del(self, index: int) -> None:
        self._do(RTM_DELLINK, ifinfomsg(index))
        if _pl.TRACING:
            _pl.note("-", "link", self._names.get(index, f"index {index}"))

    def link_del_name(self, name: str) -> bool:
        """Delete the link called `name`; False when it was already gone (idempotent)."""
        try:
            self._do(RTM_DELLINK, ifinfomsg() + attr_str(IFLA_IFNAME, name))
        except OSError as err:
            if err.errno in (_errno.ENODEV, _errno.ENOENT):
                return False
            raise
        if _pl.TRACING:
            _pl.note("-", "link", name)
        return True

    def brport_set_hairpin(self, index: int, on: bool = True) -> None:
        self._do(RTM_SETLINK, msg_brport_hairpin(index, on))

    # addresses ---------------------------------------------------------------------
    def addr_add(self, index: int, address: str, prefixlen: int) -> None:
        self._do(RTM_NEWADDR, msg_addr(index, address, prefixlen), NLM_F_CREATE | NLM_F_EXCL)
        if _pl.TRACING:
            _pl.note("+", "addr", f"{address}/{prefixlen} dev {self._dev(index)}")

    def addr_del(self, index: int, address: str, prefixlen: int) -> None:
        self._do(RTM_DELADDR, msg_addr(index, address, prefixlen))

    def addr_list(self, index: int = 0) -> list[Addr]:
        out = []
        for body in self.request(RTM_GETADDR, NLM_F_DUMP, ifaddrmsg(0, 0)):
            a = decode_addr(body)
            if a and (not index or a.index == index):
                out.append(a)
        return out

    def addr6_add(self, index: int, address: str, prefixlen: int, link_scope: bool = False
                  ) -> None:
        """Add an IPv6 address (EEXIST when present: callers check first)."""
        scope = RT_SCOPE_LINK if link_scope else RT_SCOPE_UNIVERSE
        self._do(RTM_NEWADDR, msg_addr6(index, address, prefixlen, scope),
                 NLM_F_CREATE | NLM_F_EXCL)

    def addr6_list(self, index: int) -> list[Addr]:
        """The IPv6 addresses of one link."""
        out = []
        for body in self.request(RTM_GETADDR, NLM_F_DUMP, _IFA.pack(AF_INET6, 0, 0, 0, 0)):
            family, plen, _fl, _scope, idx = _IFA.unpack_from(body, 0)
            if family != AF_INET6 or idx != index:
                continue
            at = parse_attrs(body, _IFA.size)
            raw = at.get(IFA_LOCAL) or at.get(IFA_ADDRESS) or b""
            out.append(Addr(idx, socket.inet_ntop(AF_INET6, raw), plen))
        return out

    def route6_add(self, dst: str, gateway: str | None = None, oif: int = 0) -> None:
        self._do(RTM_NEWROUTE, msg_route6(dst, gateway, oif), NLM_F_CREATE | NLM_F_EXCL)

    # routes ------------------------------------------------------------------------
    def route_add(self, dst: str, gateway: str | None = None, oif: int = 0) -> None:
        self._do(RTM_NEWROUTE, msg_route(dst, gateway, oif), NLM_F_CREATE | NLM_F_EXCL)
        if _pl.TRACING:
            _pl.note("+", "route", ("default" if dst in ("0.0.0.0/0", "default") else dst)
                     + (f" via {gateway}" if gateway else "")
                     + (f" dev {self._dev(oif)}" if oif else ""))

    def _dev(self, index: int) -> str:
        if index not in self._names:
            for link in self.link_list():
                self._names[link.index] = link.name
        return self._names.get(index, f"index {index}")

    def route_list(self, table: int = RT_TABLE_MAIN) -> list[Route]:
        out = []
        for body in self.request(RTM_GETROUTE, NLM_F_DUMP, rtmsg(table=0, proto=0, rtype=0)):
            r = decode_route(body)
            if r and (not table or r.table == table):
                out.append(r)
        return out


def _open_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


RTMGRP_LINK = 0x1
RTM_DELLINK_EVENT = 17


class LinkWatch:
    """Wait for links to disappear, event-driven (no polling).

    Unmounting a sandbox key drops the last reference to a container's netns; the
    kernel then destroys the netns, and with it the veth pair, asynchronously (in a
    workqueue). Open the watch *before* the unmount, then `wait(names)` returns once
    each named link is gone — by its RTM_DELLINK event — or, after `timeout`, deletes
    what is left itself, so `rm` returns with nothing of the container left.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))

    def close(self) -> None:
        self.sock.close()

    def wait(self, names: list[str], timeout: float = 0.5) -> None:
        import select
        import time
        with Netlink() as nl:
            left = {n for n in names if n and nl.link_get(n) is not None}
            deadline = time.monotonic() + timeout
            while left:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                    for name in left:       # the kernel is slow: delete them ourselves
                        nl.link_del_name(name)
                    return
                for mtype, _f, _s, body in split_messages(self.sock.recv(1 << 16)):
                    if mtype == RTM_DELLINK_EVENT:
                        left.discard(decode_link(body).name)
