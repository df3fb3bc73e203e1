"""Anti-spoofing on each container's bridge port: a container sends only as itself.

A container keeps CAP_NET_RAW (Docker's default set), so it can craft frames with any
source: IPv4 packets from another container's or the gateway's address, ARP replies
that poison its neighbours' caches, frames from another MAC that steal its traffic on
the bridge. Docker filters none of that; minidock drops it where the frame enters the
bridge, on the host end of the container's veth.

The rules live in nftables' `bridge` family (not in iptables: the iptables ruleset
stays rule-for-rule Docker's), in one table whose rules never change; containers are
elements of three sets, so a start or a stop is one netfilter netlink batch of
element changes (net/kernel/nftnl.py, no process); `nft -f -` writes the table only when it
is missing (the first container since boot):

    table bridge minidock
      set guarded { ifname }                 the host ends of containers' veths
      set ip4     { ifname . ipv4_addr }     the address each may send from
      set mac     { ifname . ether_addr }    the MAC each may send from
      set ip6addr { ifname . ipv6_addr }     its IPv6 and link-local (EUI-64) addresses
      set nd6     { ifname . 128-bit target } the same, as neighbour advertisement targets
      chain antispoof  (prerouting, before br_netfilter and bridging)
        iifname != @guarded              accept    (uplinks, other ports)
        iifname . ether saddr != @mac    drop
        IPv4 with iifname . ip saddr in @ip4                          accept
        ARP (Ethernet/IPv4) whose sender MAC and IP are the port's    accept
        neighbour advertisement for a target not the port's           drop
        IPv6 with iifname . ip6 saddr in @ip6addr                     accept
        IPv6 from :: (duplicate address detection, MLD)               accept
                                         drop      (anything else: IPv6 on an
                                                    IPv4-only network, VLAN tags...)

`guard` (on join, before the veth exists: no window) and `unguard` (on release; a named
inverse, idempotent: a missing element counts as removed) are the side effects;
the batches are pure text builders, unit-tested.
"""

from __future__ import annotations

import re
import sys
from ipaddress import IPv4Address, IPv6Address

from minidock.errors import Internal

TABLE = "bridge minidock"
_PORT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def table_batch() -> list[str]:
    """The table, its sets and its chain, rules rewritten: idempotent as one batch."""
    t = TABLE
    return [
        f"add table {t}",
        f"add set {t} guarded {{ type ifname; }}",
        f"add set {t} ip4 {{ type ifname . ipv4_addr; }}",
        f"add set {t} mac {{ type ifname . ether_addr; }}",
        f"add set {t} ip6addr {{ type ifname . ipv6_addr; }}",
        f"add set {t} nd6 {{ typeof iifname . @th,64,128; }}",
        f"add chain {t} antispoof {{ type filter hook prerouting priority -300; policy accept; }}",
        f"flush chain {t} antispoof",
        f"add rule {t} antispoof iifname != @guarded accept",
        f"add rule {t} antispoof iifname . ether saddr != @mac drop",
        f"add rule {t} antispoof ether type ip iifname . ip saddr @ip4 accept",
        f"add rule {t} antispoof ether type arp arp htype 1 arp ptype ip arp hlen 6 "
        "arp plen 4 iifname . arp saddr ether @mac iifname . arp saddr ip @ip4 accept",
        f"add rule {t} antispoof ether type ip6 icmpv6 type nd-neighbor-advert "
        "iifname . @th,64,128 != @nd6 drop",
        f"add rule {t} antispoof ether type ip6 iifname . ip6 saddr @ip6addr accept",
        f"add rule {t} antispoof ether type ip6 ip6 saddr :: icmpv6 type "
        "{ nd-neighbor-solicit, mld2-listener-report } accept",
        f"add rule {t} antispoof drop",
    ]


def link_local(mac: str) -> IPv6Address:
    """The interface's EUI-64 link-local address (what the kernel gives a container's
    eth0 when IPv6 is on: 02:42:ac:11:00:02 -> fe80::42:acff:fe11:2)."""
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:6]
    return IPv6Address(b"\xfe\x80" + bytes(6) + eui)


def _v6_addrs(ip6: str, mac: str) -> list[IPv6Address]:
    return [IPv6Address(ip6), link_local(mac)] if ip6 else []


def _elements(port: str, ip: str, mac: str, ip6: str = "") -> list[tuple[str, str]]:
    """(set, element) of one port; the values are checked: they become nft syntax."""
    if not _PORT_RE.match(port):
        raise Internal(f"anti-spoofing: bad interface name {port!r}")
    addr = IPv4Address(ip)
    mac = mac.lower()
    if not _MAC_RE.match(mac):
        raise Internal(f"anti-spoofing: bad MAC address {mac!r}")
    out = [("guarded", f'"{port}"'), ("ip4", f'"{port}" . {addr}'), ("mac", f'"{port}" . {mac}')]
    for a in _v6_addrs(ip6, mac):
        out += [("ip6addr", f'"{port}" . {a}'), ("nd6", f'"{port}" . 0x{a.packed.hex()}')]
    return out


def guard_batch(port: str, ip: str, mac: str, ip6: str = "") -> list[str]:
    """Elements that let `port` send as ip/mac (and ip6) only (the table must exist)."""
    return [f"add element {TABLE} {s} {{ {e} }}" for s, e in _elements(port, ip, mac, ip6)]


def unguard_batch(port: str, ip: str, mac: str, ip6: str = "") -> list[str]:
    """Remove the port's elements; add-then-delete makes a missing one no error."""
    out = table_batch()[:6]     # table and sets exist afterwards, rules untouched
    for s, e in _elements(port, ip, mac, ip6):
        out += [f"add element {TABLE} {s} {{ {e} }}", f"delete element {TABLE} {s} {{ {e} }}"]
    return out


# -- side effects ------------------------------------------------------------------------
def _nft(lines: list[str]) -> tuple[bool, str]:
    """One atomic `nft -f -` batch; (ok, first error line). No nft: (True, "")."""
    import subprocess

    from minidock.net.firewall import fwcheck
    gen = fwcheck.before_change()   # one nft commit: the firewall stays known-good
    try:
        proc = subprocess.run(["nft", "-f", "-"], input="\n".join(lines) + "\n",
                              capture_output=True, text=True)
    except FileNotFoundError:
        _warn_once()
        return True, ""
    if proc.returncode == 0:
        fwcheck.after_change(gen, 1)
    err = next((ln for ln in proc.stderr.splitlines() if ln.startswith("Error")), proc.stderr)
    return proc.returncode == 0, err.strip()


_warned = False


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        print("minidock: warning: nft not found (install nftables): containers can spoof "
              "source addresses and ARP on their bridge", file=sys.stderr)


def _keys(port: str, ip: str, mac: str, ip6: str = "") -> list[tuple[str, list[bytes]]]:
    """(set, [key]) of one port in the kernel's register layout (net/kernel/nftnl.py)."""
    from minidock.net.kernel import nftnl
    _elements(port, ip, mac, ip6)       # the same checks as the text form
    name = nftnl.key_ifname(port)
    out = [("guarded", [name]), ("ip4", [name + nftnl.key_ipv4(ip)]),
           ("mac", [name + nftnl.key_ether(mac.lower())])]
    v6 = [name + a.packed for a in _v6_addrs(ip6, mac)]
    if v6:
        out += [("ip6addr", v6), ("nd6", v6)]
    return out


def _apply(changes: list[tuple[bool, str, str, list[bytes]]]) -> None:
    """One netfilter netlink batch (net/kernel/nftnl.py): one commit, so the firewall
    stays known-good (net/firewall/fwcheck.py)."""
    from minidock.net.firewall import fwcheck
    from minidock.net.kernel import nftnl
    gen = fwcheck.before_change()
    nftnl.apply(changes)
    fwcheck.after_change(gen, 1)


def guard(port: str, ip: str, mac: str, ip6: str = "") -> None:
    """Let the bridge port `port` carry only frames from ip/mac (idempotent).

    One netfilter netlink batch of element adds (no nft process); only when the table
    is missing (first container since boot) `nft -f` writes it, with the elements.
    """
    try:
        _apply([(False, "minidock", s, k) for s, k in _keys(port, ip, mac, ip6)])
        return
    except FileNotFoundError:
        pass
    except OSError as err:
        raise Internal(f"anti-spoofing rules for {port}: {err.strerror}") from err
    ok, err = _nft(table_batch() + guard_batch(port, ip, mac, ip6))
    if not ok:
        raise Internal(f"anti-spoofing rules for {port}: {err}")


def unguard(port: str, ip: str, mac: str, ip6: str = "") -> None:
    """Inverse of guard; a port never guarded (or already unguarded) is no error:
    each element is added, then deleted, in one atomic batch."""
    changes = []
    for s, k in _keys(port, ip, mac, ip6):
        changes += [(False, "minidock", s, k), (True, "minidock", s, k)]
    try:
        _apply(changes)
    except FileNotFoundError:
        return                          # no table: nothing guarded
    except OSError as err:
        raise Internal(f"removing anti-spoofing rules for {port}: {err.strerror}") from err
