"""IPAM arithmetic: address pools, pool picking, and the lowest free address.

Pure: values in, values out. The store-backed part (claiming an address atomically)
belongs to the controller, which calls `first_free` with the set of addresses already
claimed inside its transaction. Behaviour follows libnetwork's default IPAM
(docker-facts section 3): predefined local pools 172.17-172.31/16 then 192.168.0.0/16
as /20s, picked skipping anything that overlaps a network in use, a host route or a
resolv.conf nameserver; container addresses lowest free first, never the subnet's
network, broadcast or gateway address.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from minidock.hints import Any, Iterable, NamedTuple

from minidock.errors import Conflict, InvalidArgument

NO_POOL = ("could not find an available, non-overlapping IPv4 address pool among the "
           "defaults to assign to the network")


class Subnets(Sequence[IPv4Network]):
    """The /`size` subnets of `base`, in order, computed on demand (10.0.0.0/8 as /24s
    is 65,536 networks: too many to build on every call)."""

    def __init__(self, base: IPv4Network, size: int) -> None:
        self.base, self.size = base, size
        self._step = 1 << (32 - size)
        self._count = 1 << (size - base.prefixlen)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        return IPv4Network((int(self.base.network_address) + i * self._step, self.size))

    def index(self, net: Any, start: int = 0, stop: Any = None) -> int:
        off = int(net.network_address) - int(self.base.network_address)
        if net.prefixlen != self.size or off < 0 or off % self._step or off // self._step >= self._count:
            raise ValueError(f"{net} is not in {self.base} as /{self.size}")
        return off // self._step


class PoolList(Sequence[IPv4Network]):
    """Several `Subnets` end to end, as one sequence."""

    def __init__(self, parts: list[Subnets]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        for part in self.parts:
            if i < len(part):
                return part[i]
            i -= len(part)
        raise IndexError(i)

    def index(self, net: Any, start: int = 0, stop: Any = None) -> int:
        offset = 0
        for part in self.parts:
            try:
                return offset + part.index(net)
            except ValueError:
                offset += len(part)
        raise ValueError(f"{net} is not a default pool")


def _local_pools() -> PoolList:
    return PoolList([Subnets(IPv4Network("172.17.0.0/16"), 16),
                     Subnets(IPv4Network("172.18.0.0/15"), 16),
                     Subnets(IPv4Network("172.20.0.0/14"), 16),
                     Subnets(IPv4Network("172.24.0.0/13"), 16),
                     Subnets(IPv4Network("192.168.0.0/16"), 20)])


LOCAL_POOLS: list[IPv4Network] = list(_local_pools())  # 31 networks


def default_pools(cfg_pools: tuple = ()) -> Sequence[IPv4Network]:
    """The predefined pools: daemon `default-address-pools` ((base, size), ...) if set,
    else LOCAL_POOLS. Large expansions are lazy sequences, not lists."""
    if not cfg_pools:
        return LOCAL_POOLS
    return PoolList([Subnets(ip_network(base, strict=False), size) for base, size in cfg_pools])


def overlaps(a: Any, b: Any) -> bool:
    """Whether two networks overlap, or an address lies in a network (either order)."""
    a, b = _as_net(a), _as_net(b)
    return a.overlaps(b)


def _as_net(x: Any) -> IPv4Network:
    if isinstance(x, IPv4Network):
        return x
    if isinstance(x, IPv4Address):
        return IPv4Network((int(x), 32))
    return ip_network(str(x), strict=False)  # type: ignore[return-value]


def pick_pool(candidates: Sequence[IPv4Network], in_use: list[IPv4Network],
              host_routes: list[IPv4Network], nameservers: list[IPv4Address],
              start_after: IPv4Network | None = None) -> IPv4Network:
    """The first candidate overlapping nothing in use, no host route, no nameserver.

    With start_after, the search starts right after that pool and wraps around
    (libnetwork hands pools out round-robin). Default routes (0.0.0.0/0) are ignored,
    as libnetwork ignores routes without a destination.
    """
    blockers = [_as_net(n) for n in in_use]
    blockers += [_as_net(r) for r in host_routes if _as_net(r).prefixlen > 0]
    blockers += [_as_net(ns) for ns in nameservers if _as_ipv4(ns)]
    total = len(candidates)
    start = 0
    if start_after is not None:
        try:
            start = candidates.index(start_after) + 1
        except ValueError:
            start = 0
    for k in range(total):
        cand = candidates[(start + k) % total]
        if not any(cand.overlaps(b) for b in blockers):
            return cand
    raise Conflict(NO_POOL)


def _as_ipv4(x: Any) -> bool:
    try:
        return ip_address(str(x)).version == 4
    except ValueError:
        return False


class Pool(NamedTuple):
    """A network's IPv4 address pool: subnet, gateway, optional dynamic range and
    auxiliary (reserved) addresses."""

    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None
    aux: tuple[IPv4Address, ...] = ()


def _parse_cidr(text: str) -> IPv4Network:
    try:
        if "/" not in text:
            raise ValueError(text)
        net = ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    if net.version != 4:
        raise InvalidArgument(f"invalid CIDR address: {text}")
    return net  # type: ignore[return-value]


def _parse_ip(text: str, what: str) -> IPv4Address:
    try:
        addr = ip_address(text)
    except ValueError:
        raise InvalidArgument(f"no matching subnet for {what} {text}") from None
    if addr.version != 4:
        raise InvalidArgument(f"no matching subnet for {what} {text}")
    return addr  # type: ignore[return-value]


def make_pool(subnet: str, gateway: str | None = None, ip_range: str | None = None,
              aux: Iterable[str] = ()) -> Pool:
    """Validate `network create --subnet/--gateway/--ip-range/--aux-address` values.

    Messages are the docker CLI's ("no matching subnet for gateway x", ...). The
    gateway defaults to the subnet's first host address.
    """
    net = _parse_cidr(subnet)
    rng = None
    if ip_range:
        rng = _parse_cidr(ip_range)
        if not rng.subnet_of(net):
            raise InvalidArgument(f"no matching subnet for range {ip_range}")
    aux_addrs = []
    for a in aux:
        addr = _parse_ip(a, "aux-address")
        if addr not in net:
            raise InvalidArgument(f"no matching subnet for aux-address {a}")
        aux_addrs.append(addr)
    if gateway:
        gw = _parse_ip(gateway, "gateway")
        if gw not in net:
            raise InvalidArgument(f"no matching subnet for gateway {gateway}")
        if net.prefixlen < 31 and gw in (net.network_address, net.broadcast_address):
            raise InvalidArgument(f"failed to allocate gateway ({gateway}): Address already in use")
    else:
        gw = net.network_address + 1 if net.prefixlen < 31 else net.network_address
    return Pool(net, gw, rng, tuple(aux_addrs))


def pool_from_bip(bip: str, fixed_cidr: str = "") -> Pool:
    """The default bridge's pool from daemon `bip` ("192.168.100.1/24": subnet .0/24,
    gateway .1) and `fixed-cidr` (the container sub-range)."""
    net = _parse_cidr(bip)
    gw = ip_address(bip.split("/", 1)[0])
    rng = None
    if fixed_cidr:
        rng = _parse_cidr(fixed_cidr)
        if not rng.subnet_of(net):
            raise InvalidArgument(
                f"invalid fixed-cidr {fixed_cidr}: container subnet must be a subset of "
                f"bridge network {bip}")
    return Pool(net, gw, rng)  # type: ignore[arg-type]


def _bounds(pool: Pool) -> tuple[int, int]:
    """Lowest and highest candidate address as ints (inclusive)."""
    net = pool.ip_range or pool.subnet
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if pool.subnet.prefixlen < 31:
        lo = max(lo, int(pool.subnet.network_address) + 1)
        hi = min(hi, int(pool.subnet.broadcast_address) - 1)
    return lo, hi


def _ints(addrs: Iterable[Any]) -> set[int]:
    """Addresses (IPv4Address or str) as ints."""
    return {int(a) if isinstance(a, (int, IPv4Address)) else int(IPv4Address(a)) for a in addrs}


def _reserved(pool: Pool) -> set[int]:
    return {int(pool.gateway)} | {int(a) for a in pool.aux}


def candidates(pool: Pool) -> Iterator[IPv4Address]:
    """Assignable addresses, lowest first: inside ip_range if set, never the subnet's
    network or broadcast address, the gateway, or an aux address."""
    lo, hi = _bounds(pool)
    reserved = _reserved(pool)
    for n in range(lo, hi + 1):
        if n not in reserved:
            yield IPv4Address(n)


def first_free(pool: Pool, taken: Iterable[IPv4Address]) -> IPv4Address | None:
    """The lowest candidate not in `taken` (IPv4Address or str items), so a freed
    address is reused at once; None when the pool is full."""
    lo, hi = _bounds(pool)
    skip = _reserved(pool) | _ints(taken)
    for n in range(lo, hi + 1):
        if n not in skip:
            return IPv4Address(n)
    return None


def check_requested(pool: Pool, addr: str, taken: Iterable[IPv4Address]) -> IPv4Address:
    """Validate a user's `--ip` against the pool. As libnetwork, a requested address
    may lie outside ip_range as long as it is inside the subnet."""
    try:
        ip = ip_address(addr)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {addr}") from None
    if ip.version != 4:
        raise InvalidArgument(f"invalid IPv4 address: {addr}")
    if ip not in pool.subnet:
        raise InvalidArgument(
            f"Invalid address {addr}: It does not belong to any of this network's subnets")
    net = pool.subnet
    edges = (net.network_address, net.broadcast_address) if net.prefixlen < 31 else ()
    if ip in edges or int(ip) in _reserved(pool) | _ints(taken):
        raise Conflict(f"Address already in use: {addr}")
    return ip  # type: ignore[return-value]


def mac_for(ip: IPv4Address) -> str:
    """Docker's container MAC: 02:42 followed by the four IPv4 bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in IPv4Address(ip).packed)


def exhausted(network_name: str, network_id: str) -> Conflict:
    """The error for a full pool (raise it): libnetwork's wording."""
    return Conflict(f"no available IPv4 addresses on this network's address pools: "
                    f"{network_name} ({network_id})")
