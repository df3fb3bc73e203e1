"""IPv6 IPAM arithmetic, and the split of `network create` options by address family.

Pure: values in, values out (the store-backed claim is endpoint.allocate_address6).
Behaviour follows Docker 20.10 (tests/reference_data/docker-ipv6/):

- the default bridge takes its IPv6 subnet from `fixed-cidr-v6`; its gateway is the
  subnet's first address, and a container's address is the subnet prefix with the
  container's MAC in the low 48 bits (2001:db8:1:: + 02:42:ac:11:00:02 ->
  2001:db8:1::242:ac11:2), as libnetwork's deferred IPv6 allocation does when the
  prefix leaves 48 host bits; a longer prefix falls back to the lowest free address;
- user networks hand out the lowest free address, never the subnet's first (network)
  address, the gateway or an auxiliary address (IPv6 has no broadcast to skip);
- there are no predefined IPv6 pools: `--ipv6` needs a `--subnet` of that family.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from minidock.hints import Any, Iterable, NamedTuple

from minidock.config import check_default_gateway, parse_cidr6, parse_ip  # noqa: F401
from minidock.errors import Conflict, InvalidArgument

NO_POOL6 = ("could not find an available, non-overlapping IPv6 address pool among the "
            "defaults to assign to the network")
OVERLAP = "Pool overlaps with other one on this address space"
MULTIPLE = "bridge driver doesn't support multiple subnets"
UNMATCHED = "every ip-range or gateway must have a corresponding subnet"


class Pool6(NamedTuple):
    """A network's IPv6 pool. `subnet_text` keeps the user's spelling for inspect
    (Docker shows "2001:db8:f::1/64" as given)."""

    subnet: IPv6Network
    gateway: IPv6Address
    ip_range: IPv6Network | None = None
    aux: tuple[IPv6Address, ...] = ()
    subnet_text: str = ""


def _addr6(text: str, what: str, net: IPv6Network) -> IPv6Address:
    try:
        addr = ip_address(text)
    except ValueError:
        raise InvalidArgument(f"no matching subnet for {what} {text}") from None
    if addr.version != 6 or addr not in net:
        raise InvalidArgument(f"no matching subnet for {what} {text}")
    return addr  # type: ignore[return-value]


def make_pool6(subnet: str, gateway: str = "", ip_range: str = "",
               aux: Iterable[str] = ()) -> Pool6:
    """Validate a user network's IPv6 `--subnet/--gateway/--ip-range/--aux-address`
    (the docker CLI's and daemon's messages); the gateway defaults to the first host."""
    try:
        net = parse_cidr6(subnet)
    except InvalidArgument as err:
        raise InvalidArgument(f"Invalid subnet {subnet} : {err}") from None
    rng = None
    if ip_range:
        rng = parse_cidr6(ip_range)
        if not rng.subnet_of(net):
            raise InvalidArgument(f"no matching subnet for range {ip_range}")
    aux_addrs = tuple(_addr6(a, "aux-address", net) for a in aux)
    gw = _addr6(gateway, "gateway", net) if gateway else net.network_address + 1
    return Pool6(net, gw, rng, aux_addrs, subnet)


def split_families(subnets: list[str], gateways: list[str], ranges: list[str]
                   ) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """`network create` options -> ((v4 subnet, gateway, range), (v6 ...)).

    As the docker CLI (consolidateIpam) and the bridge driver: every gateway and
    range needs a subnet of its own, at most one subnet per family, and each gateway
    or range goes with the subnet that contains it.
    """
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise InvalidArgument(UNMATCHED)
    fam: dict[int, list[str]] = {4: ["", "", ""], 6: ["", "", ""]}
    for s in subnets:
        version = 6 if ":" in s else 4
        if fam[version][0]:
            raise InvalidArgument(MULTIPLE)
        fam[version][0] = s
    for slot, values, what in ((2, ranges, "range"), (1, gateways, "gateway")):
        for value in values:
            version = 6 if ":" in value else 4
            if not fam[version][0]:
                raise InvalidArgument(f"no matching subnet for {what} {value}")
            fam[version][slot] = value
    return (tuple(fam[4]), tuple(fam[6]))  # type: ignore[return-value]


def check_overlap(subnet: IPv6Network, in_use: Iterable[IPv6Network]) -> None:
    """Libnetwork refuses a pool overlapping another network's, whole or in part."""
    if any(subnet.overlaps(other) for other in in_use):
        raise Conflict(OVERLAP)


def plan_network6(net: Any, ipam_cfg: list[dict[str, str]], in_use: Iterable[IPv6Network],
                  ipv6: bool, subnet6: str, gateway6: str, ip_range6: str
                  ) -> tuple[Any, list[dict[str, str]]]:
    """The IPv6 half of `network create` (checks only): the planned Net (a network
    NamedTuple) and its IPAM.Config. A `--subnet` of that family is kept even without
    `--ipv6` (as Docker's IPAM config); addresses are handed out only with it."""
    if not subnet6:
        if ipv6:
            raise InvalidArgument(NO_POOL6)
        return net, ipam_cfg
    pool = make_pool6(subnet6, gateway6, ip_range6)
    check_overlap(pool.subnet, in_use)
    cfg6 = {"Subnet": subnet6}
    if ip_range6:
        cfg6["IPRange"] = ip_range6
    if gateway6:
        cfg6["Gateway"] = gateway6
    net = net._replace(enable_ipv6=ipv6, subnet6=str(pool.subnet), gateway6=str(pool.gateway),
                       ip_range6=str(pool.ip_range or ""))
    return net, [*ipam_cfg, cfg6]


def mac_address6(subnet: IPv6Network, mac: str) -> IPv6Address | None:
    """The default bridge's address for `mac`: the prefix with the MAC in its low 48
    bits; None when the prefix is longer than /80 (no room for a MAC)."""
    if subnet.prefixlen > 80:
        return None
    low = int(mac.replace(":", ""), 16)
    return IPv6Address(int(subnet.network_address) | low)


def _bounds(pool: Pool6) -> tuple[int, int]:
    net = pool.ip_range or pool.subnet
    lo, hi = int(net.network_address), int(net.broadcast_address)
    return max(lo, int(pool.subnet.network_address) + 1), hi


def first_free6(pool: Pool6, taken: Iterable[str | IPv6Address]) -> IPv6Address | None:
    """The lowest assignable address not in `taken` (a freed one is reused at once)."""
    lo, hi = _bounds(pool)
    skip = {int(pool.gateway)} | {int(a) for a in pool.aux}
    skip |= {int(IPv6Address(a)) if isinstance(a, str) else int(a) for a in taken}
    n = lo
    while n <= hi:
        if n not in skip:
            return IPv6Address(n)
        n += 1
    return None


def check_requested6(pool: Pool6, addr: str, taken: Iterable[str]) -> IPv6Address:
    """A user's `--ip6`: inside the subnet, not the network address, gateway or taken."""
    try:
        ip = ip_address(addr)
    except ValueError:
        raise InvalidArgument(f"invalid IPv6 address: {addr}") from None
    if ip.version != 6:
        raise InvalidArgument(f"invalid IPv6 address: {addr}")
    if ip not in pool.subnet:
        raise InvalidArgument(
            f"Invalid address {addr}: It does not belong to any of this network's subnets")
    reserved = {pool.subnet.network_address, pool.gateway, *pool.aux}
    if ip in reserved or str(ip) in {str(IPv6Address(t)) for t in taken}:
        raise Conflict(f"Address already in use: {addr}")
    return ip  # type: ignore[return-value]


def exhausted6(network_name: str, network_id: str) -> InvalidArgument:
    """The error for a full IPv6 pool (raise it): libnetwork's wording."""
    return InvalidArgument(f"no available IPv6 addresses on this network's address pools: "
                           f"{network_name} ({network_id})")
