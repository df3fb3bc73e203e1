"""Network drivers that are Docker plugins (libnetwork's drivers/remote), spoken to over
Docker's plugin protocol (net/plugins), and the lookup hook that finds them.

`lookup(kind, name)` (driverapi.LOOKUPS) answers for any name that is no built-in
driver: it finds the plugin (net/plugins/discovery.py) and returns a RemoteDriver
(kind "driver"; IPAM plugins are net/ipams/remote.py's); None when there is no such
plugin, so that the registry says Docker's `plugin "NAME" not found`.

The verbs map one to one onto the plugin's calls, with Docker's bodies (plugins/api.py):

    create_network   /NetworkDriver.CreateNetwork   undo: DeleteNetwork
    create_endpoint  /NetworkDriver.CreateEndpoint  undo: DeleteEndpoint
    join             /NetworkDriver.Join            undo: Leave
    program_external_connectivity  /ProgramExternalConnectivity  undo: Revoke...
    leave            (the interface is moved back to the host under its SrcName, as
                     libnetwork does when a sandbox outlives the endpoint) /Leave
    delete_*, revoke_*  the inverse calls; a 404 on Program/Revoke counts as done
    sweep            nothing: `system prune` asks a plugin nothing it cannot undo

The plugin is activated (and asked GetCapabilities) on first use and again only when it
restarted (client.activate). Its answers are checked as libnetwork checks them: a
CreateEndpoint answer may supply the MAC or address the request left empty (and may not
change one it had: "driver modified interface ..."), a Join answer names the interface
(SrcName, DstPrefix), the gateway (a bare address) and static routes. A plugin error is
one line naming the plugin and the call; when the plugin's socket changed since the
network was created, the line says the plugin restarted and lost its state.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Internal, NotFound
from minidock.net import driverapi as da
from minidock.net.plugins import api

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.net.plugins.client import Client
    from minidock.pipeline import Pipeline


# Calls that take something back: skipped once the plugin was found dead in this process.
INVERSE = ("DeleteNetwork", "DeleteEndpoint", "Leave", "RevokeExternalConnectivity")


def lookup(kind: str, name: str) -> Any:
    """The plugin `name` as a network driver (kind "driver"), None if there is no
    such plugin (IPAM plugins: net/ipams/remote.py)."""
    from minidock.net.plugins import discovery
    if kind != "driver":
        return None
    try:
        discovery.find(name)
    except NotFound:
        return None
    return RemoteDriver(name)


class RemoteDriver:
    """One network plugin. The capability is asked at first use (GetCapabilities)."""

    leave_on_teardown = True    # the plugin hears Leave and DeleteEndpoint, as with Docker

    def __init__(self, name: str) -> None:
        self.name = name
        self._caps: da.Capability | None = None
        self._exec_root = ""

    # -- plumbing ----------------------------------------------------------------------
    def _activate(self, ctx: "Context | None") -> tuple["Client", dict[str, Any]]:
        from minidock.net.plugins import client
        self._exec_root = self._exec_root or client.exec_root(ctx)
        return client.activate(self._exec_root, self.name, api.NETWORK_DRIVER,
                               lambda c: c.call("NetworkDriver.GetCapabilities"))

    @property
    def capability(self) -> da.Capability:
        if self._caps is None:
            _client, answer = self._activate(None)
            try:
                scope, conn = api.capabilities(answer)
            except api.BadAnswer as err:
                raise Internal(f'plugin "{self.name}": NetworkDriver.GetCapabilities: {err}') from None
            self._caps = da.Capability(data_scope=scope, connectivity_scope=conn,
                                       external_connectivity=True)
        return self._caps

    def _client(self, ctx: "Context", nw: da.NetworkInfo | None = None) -> "Client":
        from minidock.net.plugins import client, discovery
        c, _answer = self._activate(ctx)
        if nw is not None and nw.state.get("plugin") is not None:
            now = discovery.identity(c.addr)
            if now is not None and now != nw.state["plugin"]:
                c.hint = (f"the plugin restarted since network {nw.name} was created and has "
                          "lost its state: remove and re-create the network")
            elif c.hint == client.RESTART_HINT:
                c.hint = ""
        return c

    def _call(self, ctx: "Context", nw: da.NetworkInfo | None, method: str,
              body: dict[str, Any], optional: bool = False) -> dict[str, Any]:
        from minidock.net.plugins.client import PluginError, unreachable
        c = self._client(ctx, nw)
        if method in INVERSE and unreachable(c.addr):
            return {}           # a dead plugin holds nothing: nothing to undo there
        try:
            return c.call(f"NetworkDriver.{method}", body)
        except PluginError as err:
            if optional and err.not_implemented:
                return {}
            raise

    # -- networks ----------------------------------------------------------------------
    def init(self, ctx: "Context", p: "Pipeline") -> None:
        """Nothing driver-wide: the plugin runs on its own."""

    def create_network(self, ctx: "Context", nw: da.NetworkInfo, p: "Pipeline") -> None:
        from minidock.net.plugins import discovery
        body = api.create_network(
            nw.id, api.network_options(nw.options, nw.enable_ipv6, nw.internal),
            [_ipam_data(d) for d in nw.ipv4_data], [_ipam_data(d) for d in nw.ipv6_data])
        self._call(ctx, None, "CreateNetwork", body)
        p.undo("create_network", self.delete_network, ctx, nw)
        nw.state["plugin"] = discovery.identity(self._client(ctx).addr)

    def delete_network(self, ctx: "Context", nw: da.NetworkInfo) -> None:
        self._call(ctx, nw, "DeleteNetwork", api.network_id(nw.id))

    # -- endpoints ---------------------------------------------------------------------
    def create_endpoint(self, ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo,
                        p: "Pipeline") -> None:
        mac = _requested_mac(ctx, nw, ep)
        opts = _endpoint_options(ctx, nw, ep, mac)
        body = api.create_endpoint(nw.id, ep.id, ep.address, ep.address_v6, mac, opts)
        answer = self._call(ctx, nw, "CreateEndpoint", body)
        try:
            given = api.endpoint_interface(answer)
            for key, mine, what in (("MacAddress", mac, "MAC address"),
                                    ("Address", ep.address, "address"),
                                    ("AddressIPv6", ep.address_v6, "address")):
                if key in given and mine:
                    raise api.BadAnswer(f"driver modified interface {what}: {mine} is already set")
        except api.BadAnswer as err:
            self._rollback(ctx, nw, "DeleteEndpoint", api.endpoint_ids(nw.id, ep.id))
            raise Internal(f'plugin "{self.name}": NetworkDriver.CreateEndpoint: {err}; '
                           "rolled back") from None
        ep.mac = given.get("MacAddress", mac)
        ep.address = given.get("Address", ep.address)
        ep.address_v6 = given.get("AddressIPv6", ep.address_v6)
        ep.state["mac"] = ep.mac

    def delete_endpoint(self, ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo) -> None:
        self._call(ctx, nw, "DeleteEndpoint", api.endpoint_ids(nw.id, ep.id))

    def join(self, ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo,
             sb: da.SandboxInfo, p: "Pipeline") -> da.JoinInfo:
        body = api.join(nw.id, ep.id, sb.key, _sandbox_options(ctx, ep))
        answer = self._call(ctx, nw, "Join", body)
        try:
            j = api.join_answer(answer)
            if not j["SrcName"]:
                raise api.BadAnswer("the answer names no interface (InterfaceName.SrcName)")
        except api.BadAnswer as err:
            self._rollback(ctx, nw, "Leave", api.endpoint_ids(nw.id, ep.id))
            raise Internal(f'plugin "{self.name}": NetworkDriver.Join: {err}; rolled back') from None
        ep.state.update(src_name=j["SrcName"], sandbox=sb.key)
        routes = [da.StaticRoute(r["Destination"], r["NextHop"] if r["RouteType"] == 0 else "")
                  for r in j["StaticRoutes"]]
        return da.JoinInfo(j["SrcName"], j["DstPrefix"] or "eth", gateway=j["Gateway"],
                           gateway_v6=j["GatewayIPv6"], static_routes=routes,
                           disable_gateway_service=j["DisableGatewayService"])

    def leave(self, ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo) -> None:
        """Give the interface back to the host under its SrcName (the sandbox lives on:
        network disconnect), then tell the plugin."""
        from minidock.pipeline import best_effort
        errors = best_effort([("move_back", lambda: _move_back(ep))])
        self._leave_call(ctx, nw, ep)
        if errors:
            raise Internal("; ".join(errors))

    def _rollback(self, ctx: "Context", nw: da.NetworkInfo, method: str,
                  body: dict[str, Any]) -> None:
        """libnetwork's errorWithRollback: undo a call whose answer is refused."""
        from minidock.net.plugins.client import PluginError
        try:
            self._call(ctx, nw, method, body)
        except PluginError:
            pass

    def _leave_call(self, ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo) -> None:
        self._call(ctx, nw, "Leave", api.endpoint_ids(nw.id, ep.id))

    def program_external_connectivity(self, ctx: "Context", nw: da.NetworkInfo,
                                      ep: da.EndpointInfo, p: "Pipeline") -> None:
        body = api.program_external_connectivity(nw.id, ep.id, _sandbox_options(ctx, ep))
        self._call(ctx, nw, "ProgramExternalConnectivity", body, optional=True)

    def revoke_external_connectivity(self, ctx: "Context", nw: da.NetworkInfo,
                                     ep: da.EndpointInfo) -> None:
        self._call(ctx, nw, "RevokeExternalConnectivity", api.endpoint_ids(nw.id, ep.id),
                   optional=True)

    def endpoint_oper_info(self, ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo
                           ) -> dict[str, Any]:
        answer = self._call(ctx, nw, "EndpointOperInfo", api.endpoint_ids(nw.id, ep.id))
        return answer.get("Value") or {}

    # -- repair --------------------------------------------------------------------------
    def expected_rules(self, ctx: "Context", nw: da.NetworkInfo | None,
                       endpoints: list[da.EndpointInfo]) -> tuple[list[Any], list[Any]]:
        return [], []       # the plugin's rules are its own business

    def sweep(self, ctx: "Context", networks: list[da.NetworkInfo],
              endpoints: list[da.EndpointInfo]) -> list[str]:
        """Nothing: a plugin's objects are its own, and a call that deletes cannot be
        taken back (libnetwork's cleanup after a crash asks no plugin either)."""
        return []


def _ipam_data(d: da.IPAMData) -> dict[str, Any]:
    return api.ipam_data(d.address_space, d.pool, d.gateway, d.aux_addresses or None)


def _container(ctx: "Context", ep: da.EndpointInfo) -> dict[str, Any]:
    return ctx.store.get("container", ep.container_id) or {} if ep.container_id else {}


def _requested_mac(ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo) -> str:
    """The MAC Docker puts in CreateEndpoint's request: --mac-address on the container's
    own network, or one the controller chose for an IPAM that requires it; else ""."""
    ctr = _container(ctx, ep)
    wanted = (ctr.get("Config") or {}).get("MacAddress") or ""
    mode = (ctr.get("HostConfig") or {}).get("NetworkMode") or ""
    if wanted and mode in (nw.name, nw.id):
        return wanted.lower()
    doc = ctx.store.get("network", nw.id) or {}
    ipam_driver = (doc.get("IPAM") or {}).get("Driver") or "default"
    return ep.mac if da.get_ipam(ipam_driver).requires_mac_address else ""


def _endpoint_options(ctx: "Context", nw: da.NetworkInfo, ep: da.EndpointInfo,
                      mac: str) -> dict[str, Any]:
    from minidock.net.plugins.options import port_options
    ctr = _container(ctx, ep)
    exposed, portmap = port_options(ctr, _requested(ctr))
    mode = (ctr.get("HostConfig") or {}).get("NetworkMode") or ""
    wanted = ((ctr.get("Config") or {}).get("MacAddress") or "").lower()
    user_mac = wanted if wanted and mode in (nw.name, nw.id) else ""
    return api.endpoint_options(exposed, portmap, nw.internal,
                                _ports_elsewhere(ctx, ep, portmap), user_mac)


def _ports_elsewhere(ctx: "Context", ep: da.EndpointInfo, portmap: list[Any]) -> bool:
    """Whether another endpoint of the container already carries the port mappings
    (moby: `len(getSandboxPortMapInfo(sb)) > 0`)."""
    if not portmap:
        return False
    for _i, doc in ctx.store.list("endpoint"):
        if doc.get("container_id") == ep.container_id and doc.get("id") != ep.id \
                and doc.get("ports"):
            return True
    return False


def _sandbox_options(ctx: "Context", ep: da.EndpointInfo) -> dict[str, Any]:
    from minidock.net.plugins.options import port_options
    ctr = _container(ctx, ep)
    return api.sandbox_options(*port_options(ctr, _requested(ctr)))


def _requested(ctr: dict[str, Any]) -> list[Any]:
    """The container's requested bindings, as the plugin options are built from."""
    from minidock.net.ports.portspec import from_port_bindings
    return from_port_bindings((ctr.get("HostConfig") or {}).get("PortBindings"))


def _move_back(ep: da.EndpointInfo) -> None:
    """Move the endpoint's interface out of a sandbox that still exists, back to the
    host under the name the plugin gave it (absent netns or link: nothing to do)."""
    import os
    key, src = ep.state.get("sandbox"), ep.state.get("src_name")
    if not key or not src or not ep.ifname:
        return
    from minidock.net.kernel.netlink import Netlink
    try:
        fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        from minidock.net.kernel.netns import is_key
        if not is_key(key):
            return
        host = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with Netlink(netns_fd=fd) as inner:
                link = inner.link_get(ep.ifname)
                if link is None:
                    return
                inner.link_set(link.index, up=False)
                inner.link_set(link.index, name=src, netns_fd=host)
        finally:
            os.close(host)
    finally:
        os.close(fd)
