"""The overlay driver's verbs, run by the CLI (cheap imports: no pyroute2, no etcd3gw).

    create_network   the network lives in etcd (controller: gstore.create_network);
                     nothing in this host's kernel until a container joins
    join             ask the agent for the network's namespace (br0 + vxlan0, made on
                     first use on this host), then one veth: host end on br0 inside that
                     namespace, peer made directly inside the sandbox as eth<N>, MTU
                     1450, MAC 02:42+IPv4; then the endpoint record goes to etcd on
                     this host's lease (the other hosts' agents program their peers)
    leave            delete the veth (the sandbox outlives the endpoint)
    delete_network   drop this host's namespace of the network, if any

Addresses come from etcd (`claim_address`, `release_endpoint`), not the local claims.
The driver declares `gateway_network`: a container on an overlay network also joins
the local gateway bridge (net/gwbridge.py) for the outside world and published ports.
"""

from __future__ import annotations

import os
from typing import Any

from minidock.errors import Internal
from minidock.net.drivers.overlay import agent



class OverlayDriver:
    name = "overlay"
    creatable = True
    has_sandbox_iface = True
    data_scope = "global"
    gateway_network = True

    def init_driver(self, ctx: Any, p: Any) -> None:
        """Nothing host-wide: the agent starts with the first endpoint."""

    def create_network(self, ctx: Any, net: Any, p: Any) -> list[Any]:
        return []

    def delete_network(self, ctx: Any, net: Any, rules: list[Any]) -> None:
        """Remove this host's namespace of the network (idempotent)."""
        from minidock.net.netns import unbind_key
        unbind_key(agent.Paths(ctx.exec_root).netns(net.id))
        agent.sync(ctx)

    def join(self, ctx: Any, net: Any, ep: Any, pl: Any, gateway: bool) -> None:
        from minidock.net.netlink import Netlink
        path = agent.ensure_network(ctx, net.id)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with Netlink(netns_fd=fd) as ov:
                br = ov.link_get("br0")
                if br is None:
                    raise Internal(f"bridge br0 of overlay network {net.name} does not exist")
                ov.veth_add(ep.host_veth, ep.ifname, mtu=net.mtu, master=br.index, up=True,
                            peer_netns_fd=pl.fd, peer_mac=ep.mac)
        finally:
            os.close(fd)
        inner = pl.inner.link_get(ep.ifname)
        if inner is None:
            raise Internal(f"interface {ep.ifname} missing in sandbox")
        pl.inner.addr_add(inner.index, ep.ip, ep.prefixlen)
        pl.inner.link_set(inner.index, up=True)
        publish_endpoint(ctx, ep)

    def leave(self, ctx: Any, net: Any, ep: Any) -> None:
        from minidock.net.netlink import Netlink
        path = agent.Paths(ctx.exec_root).netns(net.id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            with Netlink(netns_fd=fd) as ov:
                ov.link_del_name(ep.host_veth)
        finally:
            os.close(fd)

    def program_external_connectivity(self, ctx: Any, net: Any, ep: Any) -> list[Any]:
        return []     # through the gateway bridge's endpoint

    def revoke_external_connectivity(self, ctx: Any, net: Any, ep: Any) -> None:
        return None


# -- the global-scope store side ---------------------------------------------------------
def claim_address(ctx: Any, net: Any, ep_id: str, requested: str) -> Any:
    """An address of `net` in etcd for endpoint `ep_id`, on this host's lease."""
    from minidock.cluster import gstore
    from minidock.net import endpoint as eps
    gs = gstore.open_gstore(ctx)
    lease = agent.lease(ctx)
    return gstore.claim_address(gs, net.id, eps.pool_of(net), ep_id, requested, lease, net.name)


def publish_endpoint(ctx: Any, ep: Any) -> None:
    """The endpoint's record on this host's lease (its address claim already is): the
    other hosts' agents see it through their watch."""
    from minidock.cluster import gstore
    from minidock.net.drivers.overlay import records
    gs = gstore.open_gstore(ctx)
    rec = records.endpoint_record(ctx, ep, records.advertise_address(ctx.config))
    gstore.put_endpoint(gs, ep.network_id, ep.id, rec, agent.lease(ctx))


def release_endpoint(ctx: Any, network_id: str, ep_id: str) -> None:
    """Drop the endpoint's record and address from etcd (idempotent)."""
    from minidock.cluster import gstore
    gstore.release_endpoint(gstore.open_gstore(ctx), network_id, ep_id)


DRIVER = OverlayDriver()
