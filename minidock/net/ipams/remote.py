"""IPAM drivers that are Docker plugins (libnetwork's ipams/remote), for any network
driver (`network create --ipam-driver NAME`, on a bridge too).

    activation            /Plugin.Activate, /IpamDriver.GetCapabilities
                          (RequiresMACAddress, RequiresRequestReplay; a plugin without
                          it counts as requiring nothing, as Docker registers it) and
                          /IpamDriver.GetDefaultAddressSpaces, once, as Docker does when
                          it registers the plugin (client.activate remembers them)
    request_pool          /IpamDriver.RequestPool -> (PoolID, Pool, Data). PoolID is
                          opaque (it may hold "/" and ":"): kept and sent back verbatim
    request_address       /IpamDriver.RequestAddress -> Address (CIDR); no address in
                          the answer is Docker's "No address returned"
    release_address / release_pool   the inverses (bare IP for the address)

Like libnetwork's requestPoolHelper, a pool the plugin picked itself that overlaps a
route of the host is kept while another one is asked for, then all such pools are
given back (last first). Errors name the plugin and the call (client.PluginError).
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Internal
from minidock.net.plugins import api

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.net.plugins.client import Client

MAX_OVERLAPPING = 64     # pools held aside before giving up (Docker: unbounded)


def _describe(c: "Client") -> dict[str, Any]:
    from minidock.net.plugins.client import PluginError
    try:
        caps = c.call("IpamDriver.GetCapabilities", err_key="Error")
    except PluginError as err:
        if not err.not_implemented:
            raise
        caps = {}
    spaces = c.call("IpamDriver.GetDefaultAddressSpaces", err_key="Error")
    return {"RequiresMACAddress": bool(caps.get("RequiresMACAddress")),
            "RequiresRequestReplay": bool(caps.get("RequiresRequestReplay")),
            "Local": str(spaces.get("LocalDefaultAddressSpace") or ""),
            "Global": str(spaces.get("GlobalDefaultAddressSpace") or "")}


def lookup(kind: str, name: str) -> Any:
    """The plugin `name` as an IPAM driver (kind "ipam"; driverapi.LOOKUPS), None if
    there is no such plugin."""
    from minidock.errors import NotFound
    from minidock.net.plugins import discovery
    if kind != "ipam":
        return None
    try:
        discovery.find(name)
    except NotFound:
        return None
    return RemoteIPAM(name)


class RemoteIPAM:
    def __init__(self, name: str) -> None:
        self.name = name
        self._info: dict[str, Any] | None = None
        self._exec_root = ""

    def _client(self, ctx: "Context | None") -> "Client":
        from minidock.net.plugins import client
        self._exec_root = self._exec_root or client.exec_root(ctx)
        c, self._info = client.activate(self._exec_root, self.name, api.IPAM_DRIVER, _describe)
        return c

    def _call(self, ctx: "Context", method: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._client(ctx).call(f"IpamDriver.{method}", body, err_key="Error")

    @property
    def requires_mac_address(self) -> bool:
        if self._info is None:
            self._client(None)
        return bool((self._info or {}).get("RequiresMACAddress"))

    def get_default_address_spaces(self, ctx: "Context") -> tuple[str, str]:
        self._client(ctx)
        info = self._info or {}
        return info.get("Local", ""), info.get("Global", "")

    def request_pool(self, ctx: "Context", address_space: str, pool: str = "",
                     sub_pool: str = "", options: dict[str, str] | None = None,
                     v6: bool = False) -> tuple[str, str, dict[str, str]]:
        held: list[str] = []
        try:
            while True:
                answer = self._call(ctx, "RequestPool", api.request_pool(
                    address_space, pool, sub_pool, options or {}, v6))
                pid, got = str(answer.get("PoolID") or ""), _cidr(self.name, answer.get("Pool"))
                data = {str(k): str(v) for k, v in (answer.get("Data") or {}).items()}
                if pool or v6 or not _overlaps_host(got):
                    return pid, got, data
                held.append(pid)
                if len(held) >= MAX_OVERLAPPING:
                    raise Internal(f'plugin "{self.name}": IpamDriver.RequestPool: every pool '
                                   "it offers overlaps a route of the host")
        finally:
            for pid in reversed(held):
                try:
                    self.release_pool(ctx, pid)
                except Internal:
                    pass

    def _take_back(self, ctx: "Context", method: str, body: dict[str, Any]) -> None:
        """A release: skipped once the plugin was found dead in this process (a dead
        plugin holds nothing)."""
        from minidock.net.plugins.client import unreachable
        c = self._client(ctx)
        if not unreachable(c.addr):
            c.call(f"IpamDriver.{method}", body, err_key="Error")

    def release_pool(self, ctx: "Context", pool_id: str) -> None:
        self._take_back(ctx, "ReleasePool", api.pool_id(pool_id))

    def request_address(self, ctx: "Context", pool_id: str, owner: str, address: str = "",
                        options: dict[str, str] | None = None) -> str:
        answer = self._call(ctx, "RequestAddress", api.request_address(
            pool_id, address.split("/")[0], options or None))
        if not answer.get("Address"):
            raise Internal(f'plugin "{self.name}": IpamDriver.RequestAddress: No address returned')
        return _cidr(self.name, answer["Address"])

    def release_address(self, ctx: "Context", pool_id: str, address: str) -> None:
        self._take_back(ctx, "ReleaseAddress", api.release_address(pool_id, address.split("/")[0]))


def _cidr(plugin: str, text: Any) -> str:
    from ipaddress import ip_interface
    try:
        return str(ip_interface(str(text)))
    except ValueError:
        raise Internal(f'plugin "{plugin}": answered an invalid CIDR address: {text}') from None


def _overlaps_host(pool: str) -> bool:
    from ipaddress import ip_network
    from minidock.net.kernel import hostinfo
    net = ip_network(pool, strict=False)
    return any(net.overlaps(r) for r in hostinfo.routes())
