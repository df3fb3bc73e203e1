"""Reading the nftables ruleset's state over netfilter netlink, without a process: its
generation id (every committed change increments it) and how many rules each chain of
a table holds. The firewall's drift check (net/firewall/fwcheck.py) runs these on the
start path, so this module avoids `socket` (~7 ms of import) and uses `_socket`.
"""

from __future__ import annotations

import _socket
import struct

from minidock.net.kernel.nlmsg import (
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, attr_str, nlmsg, parse_attrs,
    split_messages)

NETLINK_NETFILTER = 12
NFT_GETGEN = (10 << 8) | 16        # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN
NFT_GETRULE = (10 << 8) | 7
NFT_NEWRULE = (10 << 8) | 6
NFTA_GEN_ID = 1
NFTA_RULE_TABLE, NFTA_RULE_CHAIN = 1, 2
_NFGEN = struct.Struct("=BBH")     # nfgenmsg: family, version, res_id


def _socket_or_none() -> "_socket.socket | None":
    try:
        return _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                              NETLINK_NETFILTER)
    except OSError:
        return None


def generation() -> int | None:
    """The nftables ruleset generation of the current netns, None if unavailable."""
    sock = _socket_or_none()
    if sock is None:
        return None
    try:
        sock.send(nlmsg(NFT_GETGEN, NLM_F_REQUEST, 1, _NFGEN.pack(_socket.AF_UNSPEC, 0, 0)))
        data = sock.recv(4096)
    except OSError:
        return None
    finally:
        sock.close()
    return parse_gen(data)


def parse_gen(data: bytes) -> int | None:
    """NFTA_GEN_ID from a NEWGEN reply (pure; None for an error or no attribute)."""
    for mtype, _flags, _seq, payload in split_messages(data):
        if mtype == NLMSG_ERROR:
            return None
        raw = parse_attrs(payload, _NFGEN.size).get(NFTA_GEN_ID)
        return struct.unpack(">I", raw[:4])[0] if raw and len(raw) >= 4 else None
    return None


def rule_counts(table: str) -> dict[str, int] | None:
    """chain -> number of rules in the iptables-nft table `table` (family ip), read
    with one netlink dump (~0.2 ms, no iptables-save); None if unavailable."""
    sock = _socket_or_none()
    if sock is None:
        return None
    body = _NFGEN.pack(_socket.AF_INET, 0, 0) + attr_str(NFTA_RULE_TABLE, table)
    try:
        sock.send(nlmsg(NFT_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, 1, body))
        counts: dict[str, int] = {}
        while True:
            data = sock.recv(65536)
            if parse_rule_dump(data, counts):
                return counts
    except OSError:
        return None
    finally:
        sock.close()


def parse_rule_dump(data: bytes, counts: dict[str, int]) -> bool:
    """Count NEWRULE messages per NFTA_RULE_CHAIN into `counts`; True at the end of
    the dump (NLMSG_DONE, an error, or a datagram with no message). Pure."""
    seen = False
    for mtype, _flags, _seq, payload in split_messages(data):
        seen = True
        if mtype in (NLMSG_ERROR, NLMSG_DONE):
            return True
        if mtype == NFT_NEWRULE:
            chain = parse_attrs(payload, _NFGEN.size).get(NFTA_RULE_CHAIN)
            if chain is not None:
                name = chain.split(b"\0")[0].decode(errors="surrogateescape")
                counts[name] = counts.get(name, 0) + 1
    return bool(data) and not seen
