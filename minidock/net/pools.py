"""A network's pools from its IPAM driver (libnetwork's network.ipamAllocate and
ipamRelease), in Docker's order of calls:

    allocate   request_pool (--subnet as the pool, --ip-range as the sub-pool,
               --ipam-opt as options), then the gateway (--gateway; else the one the
               IPAM named in the pool's data; else one it picks), then each
               --aux-address (by name); a failure gives back what was taken
    release    the gateway address, the aux addresses, the pool

Only the driver API is used (get_ipam), so a remote IPAM works as the default one.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any, NamedTuple

from minidock.net.driverapi import get_ipam

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.net.network import Net


class IpamRequest(NamedTuple):
    """What `network create` asks of the IPAM driver (--subnet ... --aux-address)."""

    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    options: dict[str, str] = {}
    aux: dict[str, str] = {}


class Pooled(NamedTuple):
    """What the IPAM driver gave a network."""

    pool_id: str = ""
    pool: str = ""
    gateway: str = ""          # bare address
    ip_range: str = ""
    space: str = ""
    aux: dict[str, str] = {}   # name -> CIDR
    config: list[dict[str, Any]] = []   # IPAM.Config of the inspect document


def allocate(ctx: "Context", ipam_driver: str, nid: str, req: IpamRequest) -> Pooled:
    """libnetwork's ipamAllocateVersion: the pool (--subnet, --ip-range as sub-pool,
    --ipam-opt), then the gateway (--gateway, the one the IPAM named in the pool's
    data, or one it picks), then each aux address; --subnet/--gateway/--ip-range/
    --aux-address validated first (the docker CLI's messages). A failure gives back
    what was taken."""
    from minidock.net import ipam
    from minidock.net.driverapi import GATEWAY, REQUEST_ADDRESS_TYPE
    allocator = get_ipam(ipam_driver)
    space = allocator.get_default_address_spaces(ctx)[0]
    rng = ""
    if req.subnet:
        checked = ipam.make_pool(req.subnet, req.gateway or None, req.ip_range or None,
                                 list(req.aux.values()))
        rng = str(checked.ip_range or "")
        pool_id, cidr, data = allocator.request_pool(ctx, space, req.subnet, rng, req.options)
    else:
        pool_id, cidr, data = allocator.request_pool(ctx, space, "", "", req.options)
    taken: list[str] = []
    try:
        if req.gateway or not data.get(GATEWAY):
            gw = allocator.request_address(ctx, pool_id, nid, req.gateway,
                                           {REQUEST_ADDRESS_TYPE: GATEWAY})
        else:
            gw = data[GATEWAY]
        gw = gw.split("/", 1)[0]
        taken.append(gw)
        aux = {}
        for name in sorted(req.aux):
            aux[name] = allocator.request_address(ctx, pool_id, nid, req.aux[name], None)
            taken.append(aux[name])
    except BaseException:
        for addr in reversed(taken):
            allocator.release_address(ctx, pool_id, addr)
        allocator.release_pool(ctx, pool_id)
        raise
    cfg: dict[str, Any] = {"Subnet": req.subnet or cidr}
    if req.ip_range:
        cfg["IPRange"] = req.ip_range
    if req.gateway or not req.subnet:
        cfg["Gateway"] = req.gateway or gw
    if req.aux:
        cfg["AuxiliaryAddresses"] = dict(req.aux)
    return Pooled(pool_id, cidr, gw, rng, space, aux, [cfg])


def release(ctx: "Context", net: Net) -> None:
    """libnetwork's ipamRelease: the gateway, the aux addresses (by name), the pool."""
    if not net.pool_id:
        return
    allocator = get_ipam(net.ipam_driver)
    if net.gateway:
        allocator.release_address(ctx, net.pool_id, net.gateway)
    for _name, cidr in sorted(net.aux_addresses.items()):
        allocator.release_address(ctx, net.pool_id, cidr)
    allocator.release_pool(ctx, net.pool_id)
