"""The `default` IPAM driver (libnetwork's ipams/default): pools and addresses as
claims in the local store, the arithmetic in net/ipam.py.

    pools       space "pool:<address space>", key = the subnet, owner = the pool id;
                a requested pool overlapping a claimed one is refused; otherwise the
                first predefined pool overlapping no claimed pool, host route or
                nameserver, round-robin after the last one handed out (kept in the
                store, kind "netmeta"), or from the start with OPT_FROM_START
    addresses   space "ip:<pool id>", key = the address, owner = the endpoint id;
                lowest free first, so a freed address is reused at once
    gateways    space "gw:<pool id>", key = the address, owner = the network id

Pool ids are Docker's: "<address space>/<subnet>[/<sub-pool>]", so an address
request needs no lookup. Every claim is taken inside the caller's store transaction
(nested transactions join it): the record that owns a claim is written with it.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Conflict, InvalidArgument, NoAddress
from minidock.net.driverapi import GATEWAY, OPT_FROM_START, REQUEST_ADDRESS_TYPE

if TYPE_CHECKING:
    from minidock.context import Context

LOCAL_SPACE = "LocalDefault"
GLOBAL_SPACE = "GlobalDefault"


def parse_pool_id(pool_id: str) -> tuple[str, Any, Any]:
    """(address space, subnet, sub-pool or None) of a pool id."""
    from ipaddress import IPv4Network
    parts = pool_id.split("/")
    if len(parts) not in (3, 5):
        raise InvalidArgument(f"invalid pool id {pool_id}")
    subnet = IPv4Network("/".join(parts[1:3]))
    sub = IPv4Network("/".join(parts[3:5])) if len(parts) == 5 else None
    return parts[0], subnet, sub


class DefaultIPAM:
    name = "default"
    requires_mac_address = False

    def get_default_address_spaces(self, ctx: "Context") -> tuple[str, str]:
        return LOCAL_SPACE, GLOBAL_SPACE

    def request_pool(self, ctx: "Context", address_space: str, pool: str = "",
                     sub_pool: str = "", options: dict[str, str] | None = None,
                     v6: bool = False) -> tuple[str, str, dict[str, str]]:
        from ipaddress import IPv4Network
        if v6:
            raise InvalidArgument("the default IPAM driver has no IPv6 pools")
        store = ctx.store
        space = f"pool:{address_space}"
        with store.transaction():
            in_use = [IPv4Network(k) for k in store.claimed(space)]
            if pool:
                subnet = IPv4Network(pool, strict=False)
                if any(subnet.overlaps(other) for other in in_use):
                    raise Conflict(f"Pool overlaps with other one on this address space: {pool}")
            else:
                subnet = self._pick(ctx, in_use, bool((options or {}).get(OPT_FROM_START)))
            pool_id = f"{address_space}/{subnet}" + (f"/{sub_pool}" if sub_pool else "")
            if not store.claim(space, str(subnet), pool_id):
                raise Conflict(f"Pool overlaps with other one on this address space: {subnet}")
        return pool_id, str(subnet), {}

    def _pick(self, ctx: "Context", in_use: list[Any], from_start: bool) -> Any:
        from ipaddress import IPv4Network
        from minidock.net import ipam
        from minidock.net.kernel import hostinfo
        store = ctx.store
        last = None if from_start else store.get("netmeta", "last_pool")
        picked = ipam.pick_pool(ipam.default_pools(ctx.config.default_address_pools), in_use,
                                hostinfo.routes(), hostinfo.nameservers(),
                                start_after=IPv4Network(last["subnet"]) if last else None)
        if not from_start:
            store.put("netmeta", "last_pool", {"subnet": str(picked)}, name="last_pool")
        return picked

    def release_pool(self, ctx: "Context", pool_id: str) -> None:
        address_space, subnet, _sub = parse_pool_id(pool_id)
        store = ctx.store
        with store.transaction():
            store.release_space(f"ip:{pool_id}")
            store.release_space(f"gw:{pool_id}")
            store.release(f"pool:{address_space}", str(subnet), pool_id)

    def request_address(self, ctx: "Context", pool_id: str, owner: str, address: str = "",
                        options: dict[str, str] | None = None) -> str:
        from ipaddress import IPv4Address
        from minidock.net import ipam
        _space, subnet, sub = parse_pool_id(pool_id)
        store = ctx.store
        gateway = (options or {}).get(REQUEST_ADDRESS_TYPE) == GATEWAY
        space = f"{'gw' if gateway else 'ip'}:{pool_id}"
        with store.transaction():
            taken = {IPv4Address(k) for k in store.claimed(f"ip:{pool_id}")}
            taken |= {IPv4Address(k) for k in store.claimed(f"gw:{pool_id}")}
            if gateway:
                addr = IPv4Address(address) if address else (
                    subnet.network_address + 1 if subnet.prefixlen < 31 else subnet.network_address)
            elif address:
                addr = ipam.check_requested(ipam.Pool(subnet, subnet.network_address, sub),
                                            address, taken)
            else:
                free = ipam.first_free(ipam.Pool(subnet, subnet.network_address, sub), taken)
                if free is None:
                    raise NoAddress("no available addresses on this pool")
                addr = free
            if addr in taken or not store.claim(space, str(addr), owner):
                if gateway:
                    raise Conflict(f"failed to allocate gateway ({addr}): Address already in use")
                raise Conflict(f"Address already in use: {addr}")
        return f"{addr}/{subnet.prefixlen}"

    def release_address(self, ctx: "Context", pool_id: str, address: str) -> None:
        ctx.store.release(f"ip:{pool_id}", address.split("/", 1)[0])


IPAM_DRIVER = DefaultIPAM()
