"""The network driver API and the IPAM driver API (libnetwork's driverapi and ipamapi),
and the registry through which the controller finds a driver without importing one.

The controller (net/controller.py), the endpoint pipeline (net/attach.py) and the
sandbox (net/sandbox.py) talk to drivers only through the verbs below, each with its
named inverse:

    init                          once per boot, driver-wide setup (idempotent)
    create_network / delete_network
    create_endpoint / delete_endpoint
    join / leave                  the endpoint's interface in a sandbox; join answers
                                  with a JoinInfo, which the sandbox applies
    program_external_connectivity / revoke_external_connectivity   published ports
    expected_rules                rebuild after a crash or a flushed firewall
    sweep                         `system prune`: remove what no record owns

minidock has no daemon: every CLI call is a new process, so a driver keeps nothing in
memory between calls. What it must remember about a network or an endpoint (its
rules, a veth name, a VNI) is an opaque JSON-able dict, `NetworkInfo.state` and
`EndpointInfo.state`, that the driver writes and reads; the controller stores it with
the network's or endpoint's record, in the store of the driver's data scope
(`store_for`), and hands it back on every later call. It never interprets it. The
verbs that may change it are create_network, create_endpoint, join and
program_external_connectivity; the controller persists it after each.

Every verb that builds registers its undo in the caller's Pipeline `p`
(minidock/pipeline.py), so a failure anywhere later rolls it back. Every verb that
tears down is idempotent and best-effort: an object already gone counts as removed,
and state may be partial (a create killed half-way): the driver then removes what it
*would* have made.

The join protocol. The sandbox chooses the interface's final name (`ep.ifname`,
eth0, eth1, ...) and opens the sandbox's netns (`SandboxInfo.fd`). A driver either
creates an interface in the host's netns and answers `JoinInfo(src_name=...)`: the
sandbox moves it into the netns and renames it to `ep.ifname`; or it creates the
interface directly inside the netns under its final name (the bridge's fast path:
the veth's peer is made there by netns fd, one netlink message, no move, no rename)
and answers `JoinInfo(src_name=ep.ifname, in_sandbox=True)`. Either way the sandbox
then sets the MAC (when moved), the addresses, brings the link up, adds the static
routes and, on the sandbox's gateway endpoint, the default route(s) through
`JoinInfo.gateway` / `gateway_v6`.

The gateway endpoint. Of a container's networks, the one whose driver declares
`Capability.external_connectivity` (and whose JoinInfo does not disable the gateway
service) gets the default route and the published ports; Docker's order: not
internal first, then with a gateway, then by name (attach.gateway_network). A driver
that cannot reach the outside itself declares `gateway_network=True` (Docker's overlay
and its docker_gwbridge): a container none of whose networks has external
connectivity is then to be connected to a local gateway network as well; that step
belongs with the first such driver (the overlay), next to attach.gateway_network.

IPAM. Address management is a second kind of driver (`IPAM` below, libnetwork's
ipamapi): pools per address space, addresses per pool. The built-in one is `default`
(net/ipams/default.py): addresses are claims in the local store. IPAM drivers live in
`minidock/net/ipams/<name>.py`, each exposing `IPAM_DRIVER`; network drivers live in
`minidock/net/drivers/<name>.py` or `minidock/net/drivers/<name>/__init__.py`, each
exposing `DRIVER`.

Registering a driver. A built-in driver is one line in `DRIVERS` (or `IPAMS`):
name -> module; the module is imported on first use, so a `run` on the default bridge
imports only the bridge driver. Every name in `DRIVERS` is initialised at network
initialisation (`init`). A name not there goes to the lookup hooks: each module named
in `LOOKUPS` has `lookup(kind, name)` ("driver" or "ipam") returning a driver or None
(plugin discovery, net/drivers/remote.py). Tests and embedders call `register` /
`register_ipam` with an object.

This module imports nothing of minidock beyond errors and is cheap: plain classes
with __slots__ (a dataclass costs milliseconds of import on the start path).
"""

from __future__ import annotations

import importlib
from minidock.hints import TYPE_CHECKING, Any, Callable, Protocol

from minidock.errors import NotFound

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.pipeline import Pipeline

SCOPE_LOCAL = "local"
SCOPE_GLOBAL = "global"

# Docker's generic option key (`-o` on network create) and the endpoint's MAC option.
OPT_GENERIC = "com.docker.network.generic"
OPT_MAC_ADDRESS = "com.docker.network.endpoint.macaddress"
# ipamapi: request_address(options={REQUEST_ADDRESS_TYPE: GATEWAY}) asks for a
# network's gateway (the given address, or the IPAM's choice: the pool's first).
REQUEST_ADDRESS_TYPE = "RequestAddressType"
GATEWAY = "com.docker.network.gateway"
# request_pool(options={OPT_FROM_START: "1"}): pick from the first predefined pool, not
# after the last one handed out (the default bridge's pool, as dockerd picks it).
OPT_FROM_START = "com.minidock.ipam.from_start"

State = dict[str, Any]


class Capability:
    """What a driver declares about itself (libnetwork's driverapi.Capability)."""

    __slots__ = ("data_scope", "connectivity_scope", "gateway_network",
                 "external_connectivity", "needs_addresses", "creatable")

    def __init__(self, data_scope: str = SCOPE_LOCAL, connectivity_scope: str = "",
                 gateway_network: bool = False, external_connectivity: bool = False,
                 needs_addresses: bool = True, creatable: bool = True) -> None:
        self.data_scope = data_scope              # where networks/endpoints are stored
        self.connectivity_scope = connectivity_scope or data_scope  # how far it reaches
        self.gateway_network = gateway_network    # wants a local gateway network
        self.external_connectivity = external_connectivity  # default route + ports
        self.needs_addresses = needs_addresses    # IPAM pools (not for host / null)
        self.creatable = creatable                # `network create -d <name>` allowed


class IPAMData:
    """One pool of a network as the driver sees it (libnetwork's IPAMData): CIDRs."""

    __slots__ = ("address_space", "pool", "gateway", "aux_addresses")

    def __init__(self, pool: str, gateway: str = "", address_space: str = "",
                 aux_addresses: dict[str, str] | None = None) -> None:
        self.address_space = address_space
        self.pool = pool                          # "172.18.0.0/16"
        self.gateway = gateway                    # "172.18.0.1/16" ("" if none)
        self.aux_addresses = aux_addresses or {}  # name -> "172.18.0.5/16"

    def __repr__(self) -> str:
        return f"IPAMData(pool={self.pool!r}, gateway={self.gateway!r})"


class NetworkInfo:
    """A network as a driver sees it. `options` are the generic `-o` options;
    `state` is the driver's own record (see module doc)."""

    __slots__ = ("id", "name", "options", "internal", "enable_ipv6", "ipv4_data",
                 "ipv6_data", "state")

    def __init__(self, id: str, name: str, options: dict[str, str] | None = None,
                 internal: bool = False, enable_ipv6: bool = False,
                 ipv4_data: list[IPAMData] | None = None,
                 ipv6_data: list[IPAMData] | None = None,
                 state: State | None = None) -> None:
        self.id = id
        self.name = name
        self.options = options or {}
        self.internal = internal
        self.enable_ipv6 = enable_ipv6
        self.ipv4_data = ipv4_data or []
        self.ipv6_data = ipv6_data or []
        self.state = state if state is not None else {}

    def __repr__(self) -> str:
        return f"NetworkInfo(id={self.id[:12]!r}, name={self.name!r})"


class EndpointInfo:
    """An endpoint as a driver sees it (libnetwork's InterfaceInfo + the endpoint's
    identity). Addresses are CIDRs ("172.18.0.2/16"). In create_endpoint the driver
    may replace `mac`, `address` or `address_v6` with its own (a remote driver may
    answer them); the controller records what it finds there afterwards."""

    __slots__ = ("id", "network_id", "container_id", "name", "ifname", "address",
                 "address_v6", "mac", "ports", "options", "state")

    def __init__(self, id: str, network_id: str, container_id: str = "", name: str = "",
                 ifname: str = "", address: str = "", address_v6: str = "", mac: str = "",
                 ports: tuple[Any, ...] = (),
                 options: dict[str, Any] | None = None, state: State | None = None) -> None:
        self.id = id
        self.network_id = network_id
        self.container_id = container_id
        self.name = name                  # the container's name (endpoint name)
        self.ifname = ifname              # final name inside the sandbox: eth<N>
        self.address = address
        self.address_v6 = address_v6
        self.mac = mac
        self.ports = ports                # allocated bindings (portspec.PortBinding)
        self.options = options or {}      # per-endpoint driver options (--driver-opt)
        self.state = state if state is not None else {}

    @property
    def ip(self) -> str:
        """The IPv4 address without its prefix length."""
        return self.address.split("/", 1)[0]

    def __repr__(self) -> str:
        return f"EndpointInfo(id={self.id[:12]!r}, address={self.address!r})"


class SandboxInfo:
    """The sandbox a join targets: its key (the pinned netns path) and an fd of that
    netns, open for the duration of the join."""

    __slots__ = ("key", "fd")

    def __init__(self, key: str, fd: int) -> None:
        self.key = key
        self.fd = fd


class StaticRoute:
    """A route the sandbox adds for an endpoint (libnetwork's types.StaticRoute)."""

    __slots__ = ("destination", "next_hop")

    def __init__(self, destination: str, next_hop: str = "") -> None:
        self.destination = destination   # CIDR
        self.next_hop = next_hop         # "" = directly connected on the interface

    def __repr__(self) -> str:
        return f"StaticRoute({self.destination!r}, {self.next_hop!r})"


class JoinInfo:
    """What the sandbox must do for a joined endpoint (libnetwork's JoinInfo)."""

    __slots__ = ("src_name", "dst_prefix", "in_sandbox", "gateway", "gateway_v6",
                 "static_routes", "disable_gateway_service")

    def __init__(self, src_name: str, dst_prefix: str = "eth", in_sandbox: bool = False,
                 gateway: str = "", gateway_v6: str = "",
                 static_routes: list[StaticRoute] | None = None,
                 disable_gateway_service: bool = False) -> None:
        self.src_name = src_name          # the interface the driver made
        self.dst_prefix = dst_prefix      # its name prefix inside the sandbox
        self.in_sandbox = in_sandbox      # made inside the netns under its final name
        self.gateway = gateway            # IPv4 default gateway (bare address)
        self.gateway_v6 = gateway_v6
        self.static_routes = static_routes or []
        self.disable_gateway_service = disable_gateway_service

    def __repr__(self) -> str:
        return (f"JoinInfo(src_name={self.src_name!r}, in_sandbox={self.in_sandbox}, "
                f"gateway={self.gateway!r})")


class Driver(Protocol):
    """A network driver. `ctx` is the CLI call's Context; `p` the caller's Pipeline."""

    name: str
    capability: Capability

    def init(self, ctx: "Context", p: "Pipeline") -> None:
        """Driver-wide setup for this boot (chains, sysctls); idempotent."""

    def create_network(self, ctx: "Context", nw: NetworkInfo, p: "Pipeline") -> None:
        """Make (or verify: idempotent) the network's objects; may write nw.state.
        Validates nw.options before its first side effect."""

    def delete_network(self, ctx: "Context", nw: NetworkInfo) -> None:
        """Remove the network's objects (idempotent, also for a partial state)."""

    def create_endpoint(self, ctx: "Context", nw: NetworkInfo, ep: EndpointInfo,
                        p: "Pipeline") -> None:
        """Prepare an endpoint before its sandbox exists (cheap: the start path); may
        write ep.state and answer its own ep.mac / ep.address / ep.address_v6."""

    def delete_endpoint(self, ctx: "Context", nw: NetworkInfo, ep: EndpointInfo) -> None:
        """Inverse of create_endpoint (idempotent); runs after leave, or without it
        when the sandbox's netns went away with its interfaces."""

    def join(self, ctx: "Context", nw: NetworkInfo, ep: EndpointInfo, sb: SandboxInfo,
             p: "Pipeline") -> JoinInfo:
        """Make the endpoint's interface for sandbox `sb` (see the join protocol)."""

    def leave(self, ctx: "Context", nw: NetworkInfo, ep: EndpointInfo) -> None:
        """Remove the endpoint's interface (the sandbox outlives the endpoint). When the
        whole sandbox goes, leave is skipped (its interfaces go with the netns) unless
        the driver has `leave_on_teardown = True` (a plugin must hear Leave, then
        DeleteEndpoint, before the address is released: libnetwork's order)."""

    def program_external_connectivity(self, ctx: "Context", nw: NetworkInfo,
                                      ep: EndpointInfo, p: "Pipeline") -> None:
        """Publish ep.ports (the gateway endpoint only); may write ep.state."""

    def revoke_external_connectivity(self, ctx: "Context", nw: NetworkInfo,
                                     ep: EndpointInfo) -> None:
        """Inverse of program_external_connectivity (idempotent)."""

    def expected_rules(self, ctx: "Context", nw: NetworkInfo | None,
                       endpoints: list[EndpointInfo]) -> tuple[list[Any], list[Any]]:
        """The firewall rules the driver's state says exist, as (network-wide,
        per-endpoint) lists of net/firewall Rules; `nw` None asks for driver-wide
        rules. The firewall check re-adds whichever are missing."""

    def sweep(self, ctx: "Context", networks: list[NetworkInfo],
              endpoints: list[EndpointInfo]) -> list[str]:
        """`system prune`: remove this driver's kernel objects that none of these
        records owns; one line per removal."""


class IPAM(Protocol):
    """An IPAM driver (libnetwork's ipamapi.Ipam). Pools and addresses are CIDR
    strings; `pool_id` is the driver's opaque name for a pool. `owner` (the endpoint
    id) lets a store-backed IPAM tie each address to a record, so that an orphan can
    be found; a remote IPAM may ignore it."""

    name: str
    requires_mac_address: bool

    def get_default_address_spaces(self, ctx: "Context") -> tuple[str, str]:
        """(local address space, global address space)."""

    def request_pool(self, ctx: "Context", address_space: str, pool: str = "",
                     sub_pool: str = "", options: dict[str, str] | None = None,
                     v6: bool = False) -> tuple[str, str, dict[str, str]]:
        """A pool: the given one (conflicts refused) or one the IPAM picks; returns
        (pool_id, pool CIDR, data such as the gateway it reserves)."""

    def release_pool(self, ctx: "Context", pool_id: str) -> None:
        """Give back the pool and every address in it (idempotent)."""

    def request_address(self, ctx: "Context", pool_id: str, owner: str, address: str = "",
                        options: dict[str, str] | None = None) -> str:
        """An address of the pool for `owner` (`address` if given), as a CIDR;
        options may name the MAC (OPT_MAC_ADDRESS) when requires_mac_address."""

    def release_address(self, ctx: "Context", pool_id: str, address: str) -> None:
        """Give back one address (idempotent)."""


# -- registry -------------------------------------------------------------------------
DRIVERS = {"bridge": "minidock.net.drivers.bridge.driver", "host": "minidock.net.drivers.host",
           "null": "minidock.net.drivers.null", "overlay": "minidock.net.drivers.overlay"}
IPAMS = {"default": "minidock.net.ipams.default", "cluster": "minidock.net.ipams.cluster"}
# modules with lookup(kind, name) -> driver | None: Docker's plugins
LOOKUPS: list[str] = ["minidock.net.drivers.remote", "minidock.net.ipams.remote"]

_drivers: dict[str, Any] = {}
_ipams: dict[str, Any] = {}
_stores: dict[str, Callable[["Context"], Any]] = {}


def register(name: str, driver: Driver) -> None:
    """Make `driver` the network driver called `name` (replacing any)."""
    _drivers[name] = driver


def register_ipam(name: str, ipam: IPAM) -> None:
    _ipams[name] = ipam


def unregister(name: str) -> None:
    """Forget a registered driver or IPAM of that name (tests)."""
    _drivers.pop(name, None)
    _ipams.pop(name, None)


def driver_names() -> list[str]:
    """Every driver known without a lookup: built-in and registered."""
    return sorted(set(DRIVERS) | set(_drivers))


def get_driver(name: str) -> Driver:
    """The network driver called `name` (imported on first use; then the lookups)."""
    return _get("driver", name, _drivers, DRIVERS, "DRIVER")  # type: ignore[no-any-return]


def get_ipam(name: str) -> IPAM:
    """The IPAM driver called `name`."""
    return _get("ipam", name, _ipams, IPAMS, "IPAM_DRIVER")  # type: ignore[no-any-return]


def _get(kind: str, name: str, cache: dict[str, Any], builtin: dict[str, str],
         attr: str) -> Any:
    hit = cache.get(name)
    if hit is not None:
        return hit
    module = builtin.get(name)
    if module is not None:
        hit = getattr(importlib.import_module(module), attr)
    else:
        for lookup in LOOKUPS:
            hit = importlib.import_module(lookup).lookup(kind, name)
            if hit is not None:
                break
    if hit is None:
        raise NotFound(f'plugin "{name}" not found')
    cache[name] = hit
    return hit


def register_store(scope: str, opener: Callable[["Context"], Any]) -> None:
    """The store of data scope `scope` ("global": a cluster store)."""
    _stores[scope] = opener


def store_for(ctx: "Context", scope: str) -> Any:
    """Where records of a driver of data scope `scope` live (local: ctx.store)."""
    if scope == SCOPE_LOCAL:
        return ctx.store
    opener = _stores.get(scope)
    if opener is None:
        raise NotFound(f"no {scope} store configured")
    return opener(ctx)
