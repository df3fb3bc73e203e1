"""An endpoint: one container's attachment to one network, and its address.

The endpoint record (store kind "endpoint", id = 64 hex, name = "<network id>/<container
name>" so that a second endpoint with the same name on one network is refused by the
store's unique index) holds what teardown must undo: the address the network's IPAM
driver gave, the MAC, the interface name in the sandbox, the published ports, and the
driver's opaque state (for a bridge: its veth and the rules of its ports).
"""

from __future__ import annotations

from minidock.hints import Any, NamedTuple

from minidock.errors import Conflict
from minidock.net.network import Net
from minidock.net.ports import portmap
from minidock.net.ports.portspec import PortBinding


class Endpoint(NamedTuple):
    """One endpoint's record. `state` is the driver's own (driverapi), never read here."""

    id: str
    network_id: str
    container_id: str
    name: str                 # the container's name (without "/")
    ip: str = ""
    prefixlen: int = 0
    mac: str = ""
    gateway: str = ""
    ifname: str = ""          # eth0, eth1... inside the sandbox
    aliases: tuple[str, ...] = ()
    requested_ip: str = ""
    ports: tuple[PortBinding, ...] = ()      # allocated bindings
    extra: dict[str, Any] = {}  # starter and sandbox key; never mutated
    state: dict[str, Any] = {}  # the driver's record; never mutated here
    ip6: str = ""             # IPv6 address on a network with IPv6 ("" otherwise)
    prefixlen6: int = 0
    gateway6: str = ""        # the IPv6 default route's next hop

    def with_(self, **kw: Any) -> "Endpoint":
        return self._replace(**kw)

    def info(self) -> Any:
        """The endpoint as its driver sees it (driverapi.EndpointInfo; a copy of state)."""
        from minidock.net.driverapi import EndpointInfo
        return EndpointInfo(self.id, self.network_id, self.container_id, self.name,
                            self.ifname, f"{self.ip}/{self.prefixlen}" if self.ip else "",
                            address_v6=f"{self.ip6}/{self.prefixlen6}" if self.ip6 else "",
                            mac=self.mac, ports=self.ports, state=dict(self.state))


def record_name(network_id: str, container_name: str) -> str:
    return f"{network_id}/{container_name}"


def to_doc(ep: Endpoint) -> dict[str, Any]:
    d = ep._asdict()
    d["ports"] = portmap.to_record(ep.ports)
    return d


def from_doc(doc: dict[str, Any]) -> Endpoint:
    d = dict(doc)
    d["aliases"] = tuple(d.get("aliases", ()))
    d["ports"] = portmap.from_record(d.get("ports", ()))
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


def allocate_address6(store: Any, net: Net, owner: str, mac: str, requested: str = ""
                      ) -> str:
    """Claim the endpoint's IPv6 address on a network with IPv6 ("" otherwise): the
    requested one, the MAC-derived one on the default bridge (as Docker's), else the
    lowest free (claims `ip6:<network id>`, inside the caller's transaction; the
    endpoint's release_owner gives it back)."""
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


def legit(ep: Endpoint, ctr: dict[str, Any] | None) -> bool:
    """An endpoint in flight (live starter), or of a live container that names it."""
    from minidock.identity import container_live, mark_alive
    if mark_alive((ep.extra or {}).get("starter")):
        return True
    if ctr is None or not container_live(ctr):
        return False
    nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
    return any(e.get("EndpointID") == ep.id for e in nets.values())
