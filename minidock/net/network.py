"""A network: the record in the store, and how it looks to users.

The store keeps one document per network (kind "network", id = 64 hex, name unique),
in Docker's `network inspect` shape, with minidock's private fields under `_net`
(the pool and its IPAM id, and the driver's opaque state: for a bridge its name and
applied rules) so that every CLI call can rebuild the `Net` value without asking the
kernel. `Containers` is not stored: inspect computes
it from the endpoint records, so it cannot go stale.
"""

from __future__ import annotations

import time
from minidock.hints import Any, NamedTuple

from minidock.errors import Conflict, NotFound

PREDEFINED = ("bridge", "host", "none")
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
OPT_DEFAULT = "com.docker.network.bridge.default_bridge"


class Net(NamedTuple):
    """What the controller knows about one network (a NamedTuple: a frozen dataclass
    costs milliseconds of import on the start path). `state` is the driver's own
    record (driverapi), stored here and never read by the controller."""

    id: str
    name: str
    driver: str
    subnet: str = ""          # "172.17.0.0/16" ("" for host/null)
    gateway: str = ""         # "172.17.0.1"
    ip_range: str = ""
    user_subnet: bool = False  # --subnet given: --ip is allowed
    internal: bool = False
    host_ip: str = "0.0.0.0"  # default host address of published ports
    default: bool = False     # the default bridge network
    options: dict[str, str] = {}  # the generic `-o` options; never mutated
    pool_id: str = ""         # the IPAM driver's name for the IPv4 pool
    ipam_driver: str = "default"
    state: dict[str, Any] = {}    # the driver's record; never mutated here
    address_space: str = ""   # the IPAM driver's address space of the pool
    aux_addresses: dict[str, str] = {}   # --aux-address name -> CIDR the IPAM reserved
    ipam_options: dict[str, str] = {}    # --ipam-opt; never mutated
    enable_ipv6: bool = False  # containers get IPv6 addresses (needs subnet6)
    subnet6: str = ""         # "2001:db8:1::/64" (may be set without enable_ipv6)
    gateway6: str = ""        # the bridge's IPv6 address
    ip_range6: str = ""
    default_gw: str = ""      # daemon default-gateway: the containers' IPv4 default route
    default_gw6: str = ""     # daemon default-gateway-v6

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1]) if self.subnet else 0

    @property
    def user_defined(self) -> bool:
        return self.name not in PREDEFINED

    def info(self) -> Any:
        """The network as its driver sees it (driverapi.NetworkInfo; a copy of state)."""
        from minidock.net.driverapi import IPAMData, NetworkInfo
        space = self.address_space or self.pool_id.split("/", 1)[0]
        v4 = [IPAMData(self.subnet, f"{self.gateway}/{self.prefixlen}" if self.gateway else "",
                       space, {**self.aux_addresses,
                               **_aux("DefaultGatewayIPv4", self.default_gw, self.prefixlen)})
              ] if self.subnet else []
        v6 = []
        if self.subnet6:
            plen6 = int(self.subnet6.split("/")[1])
            v6 = [IPAMData(self.subnet6, f"{self.gateway6}/{plen6}", "LocalDefault",
                           _aux("DefaultGatewayIPv6", self.default_gw6, plen6))]
        return NetworkInfo(self.id, self.name, dict(self.options), self.internal,
                           enable_ipv6=self.enable_ipv6, ipv4_data=v4, ipv6_data=v6,
                           state=dict(self.state))


def _aux(key: str, address: str, prefixlen: int) -> dict[str, str]:
    """libnetwork's auxiliary address of a daemon default gateway, if one is set."""
    return {key: f"{address}/{prefixlen}"} if address else {}


def new_doc(net: Net, ipam_config: list[dict[str, str]], labels: dict[str, str] | None = None
            ) -> dict[str, Any]:
    """The stored document for a new network (Docker's keys, `_net` private)."""
    return {
        "Name": net.name, "Id": net.id, "Created": now_rfc3339(),
        "Scope": "local", "Driver": net.driver, "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": net.ipam_driver,
                 "Options": None if net.default else dict(net.ipam_options),
                 "Config": ipam_config},
        "Internal": net.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Options": dict(net.options), "Labels": labels or {},
        "_net": private(net),
    }


def private(net: Net) -> dict[str, Any]:
    """The `_net` part of the record (what from_doc reads back)."""
    return {"subnet": net.subnet, "gateway": net.gateway, "ip_range": net.ip_range,
            "user_subnet": net.user_subnet, "host_ip": net.host_ip, "default": net.default,
            "pool_id": net.pool_id, "state": dict(net.state),
            "address_space": net.address_space, "aux": dict(net.aux_addresses),
            "enable_ipv6": net.enable_ipv6, "subnet6": net.subnet6, "gateway6": net.gateway6,
            "ip_range6": net.ip_range6, "default_gw": net.default_gw,
            "default_gw6": net.default_gw6}


def from_doc(doc: dict[str, Any]) -> Net:
    p = doc.get("_net", {})
    return Net(id=doc["Id"], name=doc["Name"], driver=doc["Driver"],
               subnet=p.get("subnet", ""), gateway=p.get("gateway", ""),
               ip_range=p.get("ip_range", ""), user_subnet=p.get("user_subnet", False),
               internal=doc.get("Internal", False), host_ip=p.get("host_ip", "0.0.0.0"),
               default=p.get("default", False), options=dict(doc.get("Options") or {}),
               pool_id=p.get("pool_id", ""),
               ipam_driver=(doc.get("IPAM") or {}).get("Driver") or "default",
               state=p.get("state") or {}, address_space=p.get("address_space", ""),
               aux_addresses=dict(p.get("aux") or {}),
               ipam_options=dict((doc.get("IPAM") or {}).get("Options") or {}),
               enable_ipv6=p.get("enable_ipv6", False), subnet6=p.get("subnet6", ""),
               gateway6=p.get("gateway6", ""), ip_range6=p.get("ip_range6", ""),
               default_gw=p.get("default_gw", ""), default_gw6=p.get("default_gw6", ""))


def public_doc(doc: dict[str, Any], containers: dict[str, Any]) -> dict[str, Any]:
    """Docker's inspect shape: private fields dropped, Containers filled in."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    ordered: dict[str, Any] = {}
    for key in ("Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly"):
        ordered[key] = out.pop(key, None)
    ordered["Containers"] = containers
    ordered.update(out)
    return ordered


def lookup(store: Any, ref: str) -> tuple[str, dict[str, Any]]:
    """Resolve a network by full id, name, or unique id prefix (Docker's messages)."""
    doc = store.get("network", ref)
    if doc is not None:
        return ref, doc
    hit = store.get_by_name("network", ref)
    if hit is not None:
        return hit
    ids = store.find_by_prefix("network", ref) if ref else []
    if len(ids) == 1:
        return ids[0], store.get("network", ids[0])
    if len(ids) > 1:
        raise Conflict(f"network {ref} is ambiguous ({len(ids)} matches found based on ID)")
    raise NotFound(f"network {ref} not found")


def lookup_ctx(ctx: Any, ref: str) -> tuple[str, dict[str, Any]]:
    """`lookup`, and with a cluster store a second try after copying the global
    networks from it (a network created on another host)."""
    try:
        return lookup(ctx.store, ref)
    except NotFound:
        if not ctx.config.cluster_store:
            raise
    from minidock.cluster import gstore
    gstore.sync_networks(ctx)
    return lookup(ctx.store, ref)


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
