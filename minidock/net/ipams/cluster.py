"""The `cluster` IPAM driver: addresses of global-scope networks, claimed in etcd.

A pool is claimed with its network, in the transaction of `network create` (net/
globalnet.py, cluster/gstore.py); its id is "GlobalDefault/<network id>". An address is
the key `ip/<network id>/<address>` (value: the endpoint id), taken by a
compare-and-swap and put on this host's lease (overlay agent), so a host that dies
gives its addresses back when the lease expires.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import InvalidArgument

if TYPE_CHECKING:
    from minidock.context import Context

GLOBAL_SPACE = "GlobalDefault"


def network_of(pool_id: str) -> str:
    return pool_id.split("/", 1)[1]


class ClusterIPAM:
    name = "cluster"
    requires_mac_address = False

    def get_default_address_spaces(self, ctx: "Context") -> tuple[str, str]:
        return GLOBAL_SPACE, GLOBAL_SPACE

    def request_pool(self, ctx: "Context", address_space: str, pool: str = "",
                     sub_pool: str = "", options: dict[str, str] | None = None,
                     v6: bool = False) -> tuple[str, str, dict[str, str]]:
        raise InvalidArgument("pools of the cluster IPAM are claimed by `network create` "
                              "of a global-scope driver")

    def release_pool(self, ctx: "Context", pool_id: str) -> None:
        """Given back with the network (cluster/gstore.delete_network)."""

    def request_address(self, ctx: "Context", pool_id: str, owner: str, address: str = "",
                        options: dict[str, str] | None = None) -> str:
        from minidock.cluster import agent, gstore
        from minidock.net import ipam
        nid = network_of(pool_id)
        doc = ctx.store.get("network", nid)     # the local copy of the global record
        if doc is None:
            raise InvalidArgument(f"network {nid} not found")
        p = doc["_net"]
        pool = ipam.make_pool(p["subnet"], p["gateway"], p.get("ip_range") or None)
        addr = gstore.claim_address(gstore.open_gstore(ctx), nid, pool, owner, address,
                                    agent.lease(ctx), doc["Name"])
        return f"{addr}/{pool.subnet.prefixlen}"

    def release_address(self, ctx: "Context", pool_id: str, address: str) -> None:
        from minidock.cluster import gstore
        gs = gstore.open_gstore(ctx)
        gs.etcd.delete(gs.keys.ip(network_of(pool_id), address.split("/", 1)[0]))


IPAM_DRIVER: Any = ClusterIPAM()
