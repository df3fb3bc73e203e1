"""The local gateway network of drivers that cannot reach the outside themselves
(a driver that declares `gateway_network`, as the overlay): libnetwork's
docker_gwbridge, here the network `minidock_gwbridge` on the bridge `md_gwbridge` (an
interface name has at most 15 bytes). A container on such a network also gets an
endpoint here, which is its gateway endpoint: default route, NAT out, published ports.
"""

from __future__ import annotations

from minidock.hints import Any

from minidock.errors import Conflict

NAME = "minidock_gwbridge"
DEVICE = "md_gwbridge"
SUBNET = "172.18.0.0/16"


def wanted(nets: list[Any]) -> bool:
    """True if one of `nets` needs the gateway network and none gives a way out."""
    from minidock.net.driverapi import get_driver
    from minidock.net import attach
    return (any(get_driver(n.driver).capability.gateway_network for n in nets)
            and attach.gateway_network(nets) is None)


def ensure(ctx: Any) -> Any:
    """The gateway network, made on first use: a bridge with icc off and masquerading
    on, 172.18.0.0/16 unless that pool is taken (then the next free one)."""
    from minidock.net import controller
    from minidock.net import network as nw
    hit = ctx.store.get_by_name("network", NAME)
    if hit is None:
        opts = {nw.OPT_BRIDGE_NAME: DEVICE, nw.OPT_ICC: "false", nw.OPT_MASQ: "true"}
        try:
            try:
                controller.create_network(ctx, NAME, "bridge", subnet=SUBNET, options=opts)
            except Conflict as err:
                if "already exists" in str(err):
                    raise
                controller.create_network(ctx, NAME, "bridge", options=opts)
        except Conflict as err:
            if "already exists" not in str(err):
                raise
        hit = ctx.store.get_by_name("network", NAME)
    return nw.from_doc(hit[1])
