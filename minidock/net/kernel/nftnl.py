"""Set elements of an nftables table over netlink, without running `nft`.

Anti-spoofing (antispoof.py) keeps one fixed nftables table whose rules never change;
each container start or stop only adds or removes a few set elements. Running the
`nft` binary for that costs a process and a full ruleset cache dump (tens of ms on
the start path of every container); the same change is one netfilter netlink batch:

    NFNL_MSG_BATCH_BEGIN (res_id = NFNL_SUBSYS_NFTABLES)
    NFT_MSG_NEWSETELEM | NFT_MSG_DELSETELEM    (table, set, elements: nested keys)
    NFNL_MSG_BATCH_END

The batch is atomic: every element lands or none. Keys are raw bytes in nftables'
register layout: each field of a concatenation is padded to a multiple of 4 bytes
(`ifname` is 16 bytes, `ipv4_addr` 4, `ether_addr` 6 padded to 8). The table and its
sets are created by `nft -f` once per boot (antispoof.table_batch); a missing table
surfaces here as FileNotFoundError (ENOENT), which the caller handles.
"""

from __future__ import annotations

import os
import _socket as socket  # not `socket`: its import builds enums (~3 ms per run)
import struct

from minidock.net.kernel.nlmsg import (attr, attr_nested, attr_str, error_code, nlmsg,
                                       split_messages)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14
NFPROTO_BRIDGE = 7
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLMSG_ERROR = 2
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_DATA_VALUE = 1
IFNAMSIZ = 16


def key_ifname(name: str) -> bytes:
    """An `ifname` field: the name, NUL-padded to IFNAMSIZ."""
    raw = name.encode()
    if len(raw) >= IFNAMSIZ:
        raise ValueError(f"interface name too long: {name!r}")
    return raw.ljust(IFNAMSIZ, b"\0")


def key_ipv4(addr: str) -> bytes:
    return socket.inet_aton(addr)


def key_ether(mac: str) -> bytes:
    """An `ether_addr` field inside a concatenation: 6 bytes padded to 8."""
    return bytes.fromhex(mac.replace(":", "")).ljust(8, b"\0")


def _nfgen(family: int, res_id: int = 0) -> bytes:
    return struct.pack("!BBH", family, 0, res_id)


def msg_setelems(delete: bool, table: str, set_name: str, keys: list[bytes], seq: int,
                 family: int = NFPROTO_BRIDGE) -> bytes:
    """One NEWSETELEM / DELSETELEM message for `keys` (pure, unit-tested)."""
    elems = b"".join(
        attr_nested(NFTA_LIST_ELEM, attr_nested(NFTA_SET_ELEM_KEY, attr(NFTA_DATA_VALUE, k)))
        for k in keys)
    body = (_nfgen(family) + attr_str(NFTA_SET_ELEM_LIST_TABLE, table)
            + attr_str(NFTA_SET_ELEM_LIST_SET, set_name)
            + attr_nested(NFTA_SET_ELEM_LIST_ELEMENTS, elems))
    kind = NFT_MSG_DELSETELEM if delete else NFT_MSG_NEWSETELEM
    flags = NLM_F_REQUEST | NLM_F_ACK | (0 if delete else NLM_F_CREATE)
    return nlmsg((NFNL_SUBSYS_NFTABLES << 8) | kind, flags, seq, body)


def batch(messages: list[bytes], seq: int) -> bytes:
    """Wrap messages in BATCH_BEGIN / BATCH_END (the kernel applies them atomically)."""
    begin = nlmsg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq,
                 _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES))
    end = nlmsg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + len(messages) + 1,
               _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES))
    return begin + b"".join(messages) + end


def apply(changes: list[tuple[bool, str, str, list[bytes]]], family: int = NFPROTO_BRIDGE
          ) -> None:
    """Apply (delete?, table, set, keys) changes as one atomic batch in the current netns.

    Raises OSError(errno) from the kernel: ENOENT when the table, a set or (on delete)
    an element is missing, EEXIST never (adds use NLM_F_CREATE without EXCL).
    """
    seq0 = int.from_bytes(os.urandom(3), "big") << 4
    msgs = [msg_setelems(d, t, s, k, seq0 + 1 + i, family) for i, (d, t, s, k) in enumerate(changes)]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                         NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
        sock.send(batch(msgs, seq0))
        pending = {seq0 + 1 + i for i in range(len(msgs))}
        first_error = 0
        while pending:
            for msg_type, _flags, seq, payload in split_messages(sock.recv(65536)):
                if msg_type != NLMSG_ERROR:
                    continue
                code = error_code(payload)
                pending.discard(seq)
                if code and not first_error:
                    first_error = code
                    pending.clear()   # the batch was aborted: no more acks follow
        if first_error:
            raise OSError(first_error, os.strerror(first_error))
    finally:
        sock.close()
