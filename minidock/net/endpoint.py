"""An endpoint: one container's attachment to one network, and its address.

The endpoint record (store kind "endpoint", id = 64 hex, name = "<network id>/<container
name>" so that a second endpoint with the same name on one network is refused by the
store's unique index) holds what the driver made and what teardown must undo: the
address, MAC, interface names, published ports and the iptables rules of those ports.

Addresses are claims in the store (`space = "ip:<network id>"`, key = the address,
owner = the endpoint id), taken inside one transaction: the lowest free address (C's
`ipam.first_free` over the claimed set), so concurrent CLI calls never hand out the same
address, and a freed address is reused at once (Docker's behaviour).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from minidock.errors import Conflict, InvalidArgument
from minidock.net.network import Net

if TYPE_CHECKING:
    from ipaddress import IPv4Address


class Endpoint(NamedTuple):
    id: str
    network_id: str
    container_id: str
    name: str                 # the container's name (without "/")
    ip: str = ""
    prefixlen: int = 0
    mac: str = ""
    gateway: str = ""
    ifname: str = ""          # eth0, eth1... inside the sandbox
    host_veth: str = ""       # veth<7 hex> on the bridge
    aliases: tuple[str, ...] = ()
    requested_ip: str = ""
    ports: tuple[dict[str, Any], ...] = ()   # allocated bindings (portmap.Binding as dict)
    rules: tuple[tuple[str, str, tuple[str, ...], int | None], ...] = ()
    extra: dict[str, Any] = {}  # never mutated
    ip6: str = ""             # IPv6 address on a network with IPv6 ("" otherwise)
    prefixlen6: int = 0
    gateway6: str = ""        # the IPv6 default route's next hop
    rules6: tuple[tuple[str, str, tuple[str, ...], int | None], ...] = ()  # ip6tables

    def with_(self, **kw: Any) -> "Endpoint":
        return self._replace(**kw)


def record_name(network_id: str, container_name: str) -> str:
    return f"{network_id}/{container_name}"


def to_doc(ep: Endpoint) -> dict[str, Any]:
    return ep._asdict()


def from_doc(doc: dict[str, Any]) -> Endpoint:
    d = dict(doc)
    d["aliases"] = tuple(d.get("aliases", ()))
    d["ports"] = tuple(d.get("ports", ()))
    d["rules"] = tuple((r[0], r[1], tuple(r[2]), r[3]) for r in d.get("rules", ()))
    d["rules6"] = tuple((r[0], r[1], tuple(r[2]), r[3]) for r in d.get("rules6", ()))
    return Endpoint(**d)


def save(store: Any, ep: Endpoint, net: Net) -> None:
    """Insert/replace the record; a duplicate container name on the network conflicts."""
    try:
        store.put("endpoint", ep.id, to_doc(ep), name=record_name(ep.network_id, ep.name))
    except Conflict as err:
        raise Conflict(f"endpoint with name {ep.name} already exists in network {net.name}") from err


def of_network(store: Any, network_id: str) -> list[Endpoint]:
    return [from_doc(d) for _i, d in store.list("endpoint") if d["network_id"] == network_id]


def of_container(store: Any, container_id: str) -> list[Endpoint]:
    return [from_doc(d) for _i, d in store.list("endpoint") if d["container_id"] == container_id]


def pool_of(net: Net) -> Any:
    from minidock.net import ipam
    return ipam.make_pool(net.subnet, net.gateway, net.ip_range or None)


def allocate_address(store: Any, net: Net, owner: str, requested: str = "") -> "IPv4Address":
    """Claim `requested` or the lowest free address of `net` for `owner` (one txn)."""
    from ipaddress import IPv4Address

    from minidock.net import ipam
    pool = pool_of(net)
    space = f"ip:{net.id}"
    with store.transaction():
        taken = {IPv4Address(k) for k in store.claimed(space)}
        if requested:
            addr = ipam.check_requested(pool, requested, taken)
        else:
            addr = ipam.first_free(pool, taken)
            if addr is None:
                raise InvalidArgument("no available IPv4 addresses on this network's "
                                      f"address pools: {net.name} ({net.id})")
        if not store.claim(space, str(addr), owner):
            raise Conflict(f"Address already in use: {addr}")
    return addr


def allocate_address6(store: Any, net: Net, owner: str, mac: str, requested: str = ""
                      ) -> str:
    """Claim the endpoint's IPv6 address on a network with IPv6 ("" otherwise): the
    requested one, the MAC-derived one on the default bridge (as Docker's), else the
    lowest free (claims `ip6:<network id>`, inside the caller's transaction)."""
    if not net.enable_ipv6 or not net.subnet6:
        return ""
    from minidock.net import ipam6
    pool = ipam6.make_pool6(net.subnet6, net.gateway6, net.ip_range6)
    space = f"ip6:{net.id}"
    taken = store.claimed(space)
    derived = ipam6.mac_address6(pool.ip_range or pool.subnet, mac) if net.default else None
    if requested:
        addr = ipam6.check_requested6(pool, requested, taken)
    elif derived is not None:
        addr = ipam6.check_requested6(pool, str(derived), taken)
    else:
        addr = ipam6.first_free6(pool, taken)
        if addr is None:
            raise ipam6.exhausted6(net.name, net.id)
    if not store.claim(space, str(addr), owner):
        raise Conflict(f"Address already in use: {addr}")
    return str(addr)


def release_address(store: Any, network_id: str, owner: str) -> None:
    """Give back every address `owner` holds on the network (idempotent)."""
    store.release_owner(owner, f"ip:{network_id}")
    store.release_owner(owner, f"ip6:{network_id}")
