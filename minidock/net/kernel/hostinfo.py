"""What the host's network looks like, for picking pools that collide with nothing:
its routes, its nameservers, the address of an existing link."""

from __future__ import annotations

from minidock.hints import Any


def routes() -> list[Any]:
    """Destinations of the host's routes (all tables), default routes left out."""
    from ipaddress import IPv4Network
    from minidock.net.kernel.netlink import Netlink
    with Netlink() as nl:
        return [IPv4Network(r.dst, strict=False) for r in nl.route_list(table=0)
                if not r.dst.endswith("/0")]


def nameservers(path: str = "/etc/resolv.conf") -> list[Any]:
    """The host's nameserver addresses (a pool must not hide one)."""
    from ipaddress import ip_address
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                out.append(ip_address(parts[1]))
            except ValueError:
                pass
    return out


def link_address(name: str) -> str | None:
    """The first IPv4 address of link `name` as a CIDR, None without link or address."""
    from minidock.net.kernel.netlink import Netlink
    with Netlink() as nl:
        link = nl.link_get(name)
        if link is None:
            return None
        addrs = nl.addr_list(link.index)
    return f"{addrs[0].address}/{addrs[0].prefixlen}" if addrs else None


def link_exists(name: str) -> bool:
    from minidock.net.kernel.netlink import Netlink
    with Netlink() as nl:
        return nl.link_get(name) is not None
