"""The overlay driver's verbs (driverapi), run by the CLI (cheap imports: no pyroute2,
no etcd3gw).

    capability       data scope global (networks, addresses and endpoints in etcd:
                     net/globalnet.py, net/ipams/cluster.py), wants a gateway network
                     (net/gwbridge.py: default route and published ports go there)
    create_network   nothing in this host's kernel until a container joins
    create_endpoint  names the host end of the veth
    join             ask the agent for the network's namespace (br0 + vxlan0, made on
                     first use on this host), then one veth: host end on br0 inside that
                     namespace, peer made directly inside the sandbox as eth<N>, MTU
                     1450, MAC 02:42+IPv4; then the endpoint record goes to etcd on
                     this host's lease (the other hosts' agents program their peers)
    leave            delete the veth (the sandbox outlives the endpoint)
    delete_endpoint  the endpoint record leaves etcd
    delete_network   drop this host's namespace of the network, if any

State: the network's {"vni", "mtu"}; the endpoint's {"host_veth"}.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Internal
from minidock.net.driverapi import SCOPE_GLOBAL, Capability, JoinInfo
from minidock.cluster import agent

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.net.driverapi import EndpointInfo, NetworkInfo, SandboxInfo
    from minidock.pipeline import Pipeline

MTU = 1450


class OverlayDriver:
    name = "overlay"
    capability = Capability(data_scope=SCOPE_GLOBAL, gateway_network=True)

    def init(self, ctx: "Context", p: "Pipeline") -> None:
        """Nothing host-wide: the agent starts with the first endpoint."""

    def create_network(self, ctx: "Context", nw: "NetworkInfo", p: "Pipeline") -> None:
        """Nothing here: the namespace is made on this host at the first join."""

    def delete_network(self, ctx: "Context", nw: "NetworkInfo") -> None:
        """Remove this host's namespace of the network (idempotent)."""
        from minidock.net.kernel.netns import unbind_key
        unbind_key(agent.Paths(ctx.exec_root).netns(nw.id))
        agent.sync(ctx)

    def create_endpoint(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo",
                        p: "Pipeline") -> None:
        ep.state["host_veth"] = "veth" + os.urandom(4).hex()[:7]

    def delete_endpoint(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> None:
        """The endpoint's record leaves etcd (its address: the cluster IPAM)."""
        from minidock.cluster import gstore
        gs = gstore.open_gstore(ctx)
        gs.etcd.delete(gs.keys.endpoint(nw.id, ep.id))

    def join(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo", sb: "SandboxInfo",
             p: "Pipeline") -> JoinInfo:
        from minidock.net.kernel.netlink import Netlink
        path = agent.ensure_network(ctx, nw.id)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with Netlink(netns_fd=fd) as ov:
                br = ov.link_get("br0")
                if br is None:
                    raise Internal(f"bridge br0 of overlay network {nw.name} does not exist")
                ov.veth_add(ep.state["host_veth"], ep.ifname, mtu=nw.state.get("mtu", MTU),
                            master=br.index, up=True, peer_netns_fd=sb.fd, peer_mac=ep.mac)
        finally:
            os.close(fd)
        publish_endpoint(ctx, nw.id, ep)
        return JoinInfo(ep.ifname, in_sandbox=True)

    def leave(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> None:
        from minidock.net.kernel.netlink import Netlink
        path = agent.Paths(ctx.exec_root).netns(nw.id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            with Netlink(netns_fd=fd) as ov:
                ov.link_del_name(ep.state.get("host_veth", ""))
        finally:
            os.close(fd)

    def program_external_connectivity(self, ctx: "Context", nw: "NetworkInfo",
                                      ep: "EndpointInfo", p: "Pipeline") -> None:
        """Never the gateway endpoint: the gateway network's driver publishes ports."""

    def revoke_external_connectivity(self, ctx: "Context", nw: "NetworkInfo",
                                     ep: "EndpointInfo") -> None:
        return None

    def expected_rules(self, ctx: "Context", nw: "NetworkInfo | None",
                       endpoints: list["EndpointInfo"]) -> tuple[list[Any], list[Any]]:
        return [], []      # no firewall rules of its own

    def sweep(self, ctx: "Context", networks: list["NetworkInfo"],
              endpoints: list["EndpointInfo"]) -> list[str]:
        """Namespaces of networks no record names (the agent does the same while up)."""
        from minidock.net.kernel.netns import unbind_key
        paths = agent.Paths(ctx.exec_root)
        known = {os.path.basename(paths.netns(n.id)) for n in networks}
        out = []
        for name in _listdir(paths.netns_dir):
            if name not in known:
                unbind_key(os.path.join(paths.netns_dir, name))
                out.append(f"overlay namespace {name}: no network")
        return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def publish_endpoint(ctx: "Context", nid: str, ep: Any) -> None:
    """The endpoint's record on this host's lease (its address claim already is): the
    other hosts' agents see it through their watch."""
    from minidock.cluster import gstore
    from minidock.net.drivers.overlay import records
    gs = gstore.open_gstore(ctx)
    rec = records.endpoint_record(ctx, ep, records.advertise_address(ctx.config))
    gstore.put_endpoint(gs, nid, ep.id, rec, agent.lease(ctx))


DRIVER = OverlayDriver()
