"""A sandbox: a container's network namespace, pinned on its key.

Lifecycle (the article's names):
    new_sandbox                    an id (64 hex) and a key path
                                   `<exec-root>/netns/<id[:12]>`; nothing in the kernel yet
    set_network_namespace_key(pid) bind-mount /proc/<pid>/ns/net on the key (the
                                   container's process made the netns, held on its sync
                                   pipe), and a /run/netns/<name> symlink for `ip netns`
    populate_network_resources     IPv6 off by default (IPv4-only networks), lo up;
                                   each endpoint's driver joins it (JoinInfo) and
                                   configure_interface moves the interface in (unless
                                   the driver made it inside: the bridge creates the
                                   veth peer there by fd), names, addresses it; routes
                                   and the default gateway
    destroy                        unmount the key, unlink it and the symlink: the kernel
                                   then deletes the netns and every veth in it at once

All kernel work of populate goes through two netlink sockets: one in the host netns and
one opened inside the sandbox (a socket stays in the netns it was created in), so the
thread enters the sandbox only once, for a few microseconds.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from minidock.context import Context

RUN_NETNS = "/run/netns"


class Sandbox(NamedTuple):
    id: str
    key: str
    link_name: str   # /run/netns/<link_name>

    @classmethod
    def new(cls, ctx: Context, sandbox_id: str, container_name: str) -> "Sandbox":
        return cls(sandbox_id, os.path.join(ctx.netns_dir(), sandbox_id[:12]),
                   link_name_for(ctx, container_name))


def link_name_for(ctx: Context, container_name: str) -> str:
    """The sandbox's name in /run/netns (one directory for the whole machine): the
    container's name under the default --root and --exec-root, `<name>@<8 hex>` under
    any other, the hex a CRC-32 of the two paths, so that two roots with a container of
    the same name never overwrite each other's link ("@" is not allowed in names)."""
    from minidock.context import DEFAULT_EXEC_ROOT, DEFAULT_ROOT
    if ctx.root == DEFAULT_ROOT and ctx.exec_root == DEFAULT_EXEC_ROOT:
        return container_name
    return f"{container_name}@{root_tag(ctx.root, ctx.exec_root)}"


def root_tag(root: str, exec_root: str) -> str:
    import binascii     # its crc32 is zlib's, without loading libz
    return "%08x" % binascii.crc32(root.encode() + b"\0" + exec_root.encode())


def reachable_netns(ctr: dict[str, Any]) -> str:
    """A path through which this process can enter a running container's netns.

    Its key, normally. A command run under `ip netns exec` has a private mount
    namespace where the key mounted by an earlier `run` (in another private one) is a
    plain empty file; then the container's own /proc/<pid>/ns/net, once the pid is
    checked to be the container's (the start time recorded with it). Otherwise a
    one-line Conflict that says why."""
    from minidock.errors import Conflict
    from minidock.identity import proc_start
    from minidock.net.kernel import netns
    key = (ctr.get("NetworkSettings") or {}).get("SandboxKey") or ""
    if key and netns.is_key(key):
        return key
    pid, start = ctr["State"].get("Pid") or 0, ctr.get("_PidStart")
    if pid and start is not None and proc_start(pid) == start:
        return f"/proc/{pid}/ns/net"
    raise Conflict(f"cannot reach the network namespace of container {ctr['Name'].lstrip('/')}: "
                   f"its key {key or '(none)'} is not mounted in this mount namespace (under "
                   "'ip netns exec' each command has its own; use 'nsenter --net=') and its "
                   "process is not running")


def set_network_namespace_key(sb: Sandbox, pid: int) -> None:
    """Pin the netns of `pid` on the sandbox key; link it under /run/netns."""
    from minidock.net.kernel import netns
    netns.bind_key(pid, sb.key)
    if sb.link_name:
        try:
            netns.link_name(sb.link_name, sb.key, RUN_NETNS)
        except OSError:
            pass  # only a convenience for `ip netns`; never fail a start for it


def destroy(sb: Sandbox) -> None:
    """Unpin and forget the sandbox (idempotent: missing pieces count as removed)."""
    from minidock.net.kernel import netns
    if sb.link_name:
        netns.unlink_name(sb.link_name, sb.key, RUN_NETNS)
    netns.unbind_key(sb.key)


class Plumbing:
    """The two netlink sockets populate uses: host side and sandbox side, and an fd
    of the sandbox's netns (what a driver's join gets: driverapi.SandboxInfo)."""

    def __init__(self, key: str) -> None:
        from minidock.net.kernel.netlink import Netlink
        from minidock.net.kernel.netns import in_netns_fd
        self.key = key
        self.fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
        self.host = Netlink()
        with in_netns_fd(self.fd):      # the one visit: a socket, and sysctl defaults
            self.inner = Netlink()
            ipv4_only_defaults()

    def close(self) -> None:
        self.host.close()
        self.inner.close()
        os.close(self.fd)

    def __enter__(self) -> "Plumbing":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ipv4_only_defaults() -> None:
    """In the current netns: interfaces made from now on have IPv6 off and ignore
    router advertisements (every minidock network is IPv4-only; a rogue RA from a
    neighbour must not give a container an IPv6 route around the IPv4 rules)."""
    for knob, value in (("accept_ra", b"0"), ("disable_ipv6", b"1")):
        try:
            fd = os.open(f"/proc/sys/net/ipv6/conf/default/{knob}", os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return      # a kernel without IPv6
        try:
            os.write(fd, value)
        finally:
            os.close(fd)


def loopback_up(pl: Plumbing) -> None:
    lo = pl.inner.link_get("lo")
    if lo is not None and not lo.up:
        pl.inner.link_set(lo.index, up=True)


def next_name(pl: Plumbing, prefix: str) -> str:
    """`prefix` + the lowest index no interface of the sandbox has (libnetwork names a
    driver's interface DstPrefix + index; the sandbox's own choice is eth<N>)."""
    n = 0
    while pl.inner.link_get(f"{prefix}{n}") is not None:
        n += 1
    return f"{prefix}{n}"


def configure_interface(pl: Plumbing, ep: Any, ji: Any, gateway: bool) -> None:
    """Apply a driver's JoinInfo (driverapi) to endpoint `ep` (an EndpointInfo): the
    interface into the sandbox under `ep.ifname` (unless the driver made it there; a
    DstPrefix other than the name's own renames it `ep.ifname` = prefix + index),
    its MAC, its address, up, its static routes, and on the gateway endpoint the
    default route."""
    from minidock.errors import Internal
    if ji.in_sandbox:
        link = pl.inner.link_get(ep.ifname)
    else:
        outside = pl.host.link_get(ji.src_name)
        if outside is None:
            raise Internal(f"interface {ji.src_name} of endpoint {ep.id[:12]} does not exist")
        pl.host.link_set(outside.index, up=False, netns_fd=pl.fd)
        if ji.dst_prefix and not ep.ifname.startswith(ji.dst_prefix):
            ep.ifname = next_name(pl, ji.dst_prefix)
        moved = pl.inner.link_get(ji.src_name)
        if moved is not None:
            pl.inner.link_set(moved.index, name=ep.ifname, mac=ep.mac or None)
        link = pl.inner.link_get(ep.ifname)
    if link is None:
        raise Internal(f"interface {ep.ifname} missing in sandbox")
    if ep.address:
        ip, _, plen = ep.address.partition("/")
        pl.inner.addr_add(link.index, ip, int(plen))
    pl.inner.link_set(link.index, up=True)
    if ep.address_v6:
        configure_ipv6(pl, ep.ifname, link.index, ep.address_v6,
                       ji.gateway_v6 if gateway else "")
    for route in ji.static_routes:
        pl.inner.route_add(route.destination, route.next_hop or None,
                           oif=0 if route.next_hop else link.index)
    if gateway and ji.gateway:
        pl.inner.route_add("0.0.0.0/0", ji.gateway)


def configure_ipv6(pl: Plumbing, ifname: str, index: int, address: str, gateway: str) -> None:
    """IPv6 on for an interface of a network with IPv6 (the sandbox's default is off),
    router advertisements still ignored; its address without DAD (IPAM made it
    unique, as Docker's); the IPv6 default route on the gateway endpoint."""
    from minidock.net.kernel.netns import in_netns_fd
    from minidock.net.kernel.sysctl import PROC_NET, write
    with in_netns_fd(pl.fd):
        write(f"{PROC_NET}/ipv6/conf/{ifname}/accept_ra", "0")
        write(f"{PROC_NET}/ipv6/conf/{ifname}/disable_ipv6", "0")
    ip, _, plen = address.partition("/")
    pl.inner.addr6_add(index, ip, int(plen))
    if gateway:
        pl.inner.route6_add("::/0", gateway)
