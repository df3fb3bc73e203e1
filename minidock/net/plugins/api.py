"""The request bodies of Docker's network and IPAM plugin protocols, byte for byte as
Docker 20.10 sends them, and the checks Docker applies to the answers.

Pure: values in, bytes or values out. Docker encodes with Go's encoding/json
(`json.NewEncoder(&buf).Encode(v)`): struct fields in declaration order and every one
of them (none of these structs uses `omitempty`), map keys sorted, nil maps and slices
as `null`, empty ones as `{}` / `[]`, `<`, `>`, `&`, U+2028/9 and control characters
as `\\u00xx` (`\\n`, `\\r`, `\\t` short), other characters raw UTF-8, `[]byte` as
base64, and a trailing newline. `go_json` does the same; builders return dicts whose
key order is already Go's (maps sorted by `gomap`).

The bodies (recorded from dockerd 20.10.24 in tests/reference/docker-plugin-calls.jsonl;
each call is `POST /<Method>` with headers `Host: `, `User-Agent: Go-http-client/1.1`,
`Content-Length`, `Accept: application/vnd.docker.plugins.v1.2+json` and no
Content-Type):

    Plugin.Activate, NetworkDriver.GetCapabilities, IpamDriver.GetCapabilities,
    IpamDriver.GetDefaultAddressSpaces              no body (Content-Length: 0)
    NetworkDriver.CreateNetwork  {"NetworkID":<64 hex>,"Options":{
                                  "com.docker.network.enable_ipv6":false,
                                  "com.docker.network.generic":{<-o k=v, sorted>}
                                  [,"com.docker.network.internal":true]},
                                  "IPv4Data":[{"AddressSpace":S,["AuxAddresses":
                                  {name:"ip/len"},]"Gateway":"ip/len","Pool":"net/len"}],
                                  "IPv6Data":[]}
    NetworkDriver.DeleteNetwork  {"NetworkID":N}
    NetworkDriver.CreateEndpoint {"NetworkID":N,"EndpointID":E,"Interface":{"Address":
                                  "ip/len","AddressIPv6":"","MacAddress":"" or the MAC},
                                  "Options":{<endpoint options>}}
    NetworkDriver.Join           {"NetworkID":N,"EndpointID":E,"SandboxKey":<netns path>,
                                  "Options":{<sandbox options>}}
    NetworkDriver.ProgramExternalConnectivity  {"NetworkID":N,"EndpointID":E,
                                  "Options":{<sandbox options>}}
    NetworkDriver.RevokeExternalConnectivity, Leave, DeleteEndpoint, EndpointOperInfo
                                 {"NetworkID":N,"EndpointID":E}
    NetworkDriver.DiscoverNew / DiscoverDelete  {"DiscoveryType":1,"DiscoveryData":{...}}
    IpamDriver.RequestPool       {"AddressSpace":S,"Pool":"" or --subnet,"SubPool":"" or
                                  --ip-range,"Options":{<--ipam-opt>},"V6":false}
    IpamDriver.RequestAddress    {"PoolID":P,"Address":"" or a bare IP,"Options":O}; O is
                                  {"RequestAddressType":"com.docker.network.gateway"} for
                                  the gateway, null for aux addresses and containers, or
                                  {"com.docker.network.endpoint.macaddress":MAC} when the
                                  IPAM requires MAC addresses
    IpamDriver.ReleaseAddress    {"PoolID":P,"Address":<bare IP>}
    IpamDriver.ReleasePool       {"PoolID":P}

Sandbox options (Join, ProgramExternalConnectivity) are always
`{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80},...],
"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,
"HostPortEnd":8080},...]}`. Endpoint options (CreateEndpoint) are the same two keys,
except `{}` on an internal network or when another endpoint of the container already
carries the port mappings, plus `"com.docker.network.endpoint.macaddress":<base64 of the
6 bytes>` for `--mac-address` on the container's own network.
"""

from __future__ import annotations

import base64
from minidock.hints import Any

NETWORK_DRIVER = "NetworkDriver"
IPAM_DRIVER = "IpamDriver"
MIME = "application/vnd.docker.plugins.v1.2+json"
OPT_GENERIC = "com.docker.network.generic"
OPT_ENABLE_IPV6 = "com.docker.network.enable_ipv6"
OPT_INTERNAL = "com.docker.network.internal"
OPT_EXPOSED = "com.docker.network.endpoint.exposedports"
OPT_PORTMAP = "com.docker.network.portmap"
OPT_MAC = "com.docker.network.endpoint.macaddress"
GATEWAY_REQUEST = {"RequestAddressType": "com.docker.network.gateway"}
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}
NODE_DISCOVERY = 1

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_string(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif code < 0x20 or ch in "<>&" or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_value(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _go_string(v)
    if isinstance(v, bytes):
        return _go_string(base64.b64encode(v).decode())
    if isinstance(v, dict):
        return "{" + ",".join(f"{_go_string(k)}:{_go_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_go_value(x) for x in v) + "]"
    raise TypeError(f"cannot encode {type(v).__name__} as Go JSON")


def go_json(v: Any) -> bytes:
    """`v` as Go's json.Encoder writes it (key order as given, trailing newline)."""
    return (_go_value(v) + "\n").encode()


def gomap(d: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Go map: keys sorted (nested dicts are the caller's business); None stays nil."""
    return None if d is None else {k: d[k] for k in sorted(d)}


# -- network driver -----------------------------------------------------------------
def ipam_data(address_space: str, pool: str, gateway: str = "",
              aux: dict[str, str] | None = None) -> dict[str, Any]:
    """driverapi.IPAMData as its MarshalJSON writes it: a map, so keys sorted;
    Gateway (CIDR) and AuxAddresses (name -> CIDR) only when set."""
    m: dict[str, Any] = {"AddressSpace": address_space, "Pool": pool}
    if gateway:
        m["Gateway"] = gateway
    if aux is not None:
        m["AuxAddresses"] = gomap(aux)
    return gomap(m)  # type: ignore[return-value]


def network_options(generic: dict[str, str], enable_ipv6: bool = False,
                    internal: bool = False) -> dict[str, Any]:
    opts: dict[str, Any] = {OPT_ENABLE_IPV6: enable_ipv6, OPT_GENERIC: gomap(generic)}
    if internal:
        opts[OPT_INTERNAL] = True
    return gomap(opts)  # type: ignore[return-value]


def create_network(nid: str, options: dict[str, Any], ipv4: list[dict[str, Any]],
                   ipv6: list[dict[str, Any]]) -> dict[str, Any]:
    return {"NetworkID": nid, "Options": options, "IPv4Data": list(ipv4),
            "IPv6Data": list(ipv6)}


def network_id(nid: str) -> dict[str, Any]:
    """DeleteNetwork (and FreeNetwork)."""
    return {"NetworkID": nid}


def endpoint_ids(nid: str, eid: str) -> dict[str, Any]:
    """DeleteEndpoint, EndpointOperInfo, Leave, RevokeExternalConnectivity."""
    return {"NetworkID": nid, "EndpointID": eid}


def create_endpoint(nid: str, eid: str, address: str, address_v6: str, mac: str,
                    options: dict[str, Any] | None) -> dict[str, Any]:
    return {"NetworkID": nid, "EndpointID": eid,
            "Interface": {"Address": address, "AddressIPv6": address_v6, "MacAddress": mac},
            "Options": options}


def join(nid: str, eid: str, sandbox_key: str, options: dict[str, Any] | None
         ) -> dict[str, Any]:
    return {"NetworkID": nid, "EndpointID": eid, "SandboxKey": sandbox_key,
            "Options": options}


def program_external_connectivity(nid: str, eid: str, options: dict[str, Any] | None
                                  ) -> dict[str, Any]:
    return {"NetworkID": nid, "EndpointID": eid, "Options": options}


def discovery(data: dict[str, Any]) -> dict[str, Any]:
    """DiscoverNew / DiscoverDelete of a node (Address, BindAddress, Self)."""
    return {"DiscoveryType": NODE_DISCOVERY, "DiscoveryData": data}


def exposed_port(port: int, proto: str) -> dict[str, Any]:
    return {"Proto": PROTOCOLS.get(proto, 0), "Port": port}


def port_binding(port: int, proto: str, host_ip: str = "", host_port: int = 0,
                 host_port_end: int = 0) -> dict[str, Any]:
    """types.PortBinding as the sandbox options carry it (IP: the container's, unset)."""
    return {"Proto": PROTOCOLS.get(proto, 0), "IP": "", "Port": port, "HostIP": host_ip,
            "HostPort": host_port, "HostPortEnd": host_port_end}


def sandbox_options(exposed: list[dict[str, Any]], portmap: list[dict[str, Any]]
                    ) -> dict[str, Any]:
    return {OPT_EXPOSED: list(exposed), OPT_PORTMAP: list(portmap)}


def endpoint_options(exposed: list[dict[str, Any]], portmap: list[dict[str, Any]],
                     internal: bool, ports_elsewhere: bool, mac: str = "") -> dict[str, Any]:
    """CreateEndpoint's Options (moby's buildCreateEndpointOptions, see module doc)."""
    opts: dict[str, Any] = {}
    if mac:
        opts[OPT_MAC] = bytes(int(b, 16) for b in mac.split(":"))
    if not internal and not ports_elsewhere:
        opts.update(sandbox_options(exposed, portmap))
    return gomap(opts)  # type: ignore[return-value]


# -- IPAM driver ----------------------------------------------------------------------
def request_pool(address_space: str, pool: str, sub_pool: str,
                 options: dict[str, str] | None, v6: bool = False) -> dict[str, Any]:
    return {"AddressSpace": address_space, "Pool": pool, "SubPool": sub_pool,
            "Options": gomap(options), "V6": v6}


def pool_id(pid: str) -> dict[str, Any]:
    """ReleasePool."""
    return {"PoolID": pid}


def request_address(pid: str, address: str, options: dict[str, str] | None
                    ) -> dict[str, Any]:
    return {"PoolID": pid, "Address": address, "Options": gomap(options)}


def release_address(pid: str, address: str) -> dict[str, Any]:
    return {"PoolID": pid, "Address": address}


# -- answers ---------------------------------------------------------------------------
class BadAnswer(ValueError):
    """An answer Docker would refuse (its message)."""


def capabilities(answer: dict[str, Any]) -> tuple[str, str]:
    """NetworkDriver.GetCapabilities -> (data scope, connectivity scope)."""
    scope = answer.get("Scope")
    if scope not in ("local", "global"):
        raise BadAnswer(f"invalid capability: expecting 'local' or 'global', got {scope}")
    conn = answer.get("ConnectivityScope") or scope
    if conn not in ("local", "global"):
        raise BadAnswer(f"invalid capability: expecting 'local' or 'global', got {scope}")
    return scope, conn


def _cidr(text: str) -> str:
    from ipaddress import ip_interface
    try:
        return str(ip_interface(text))
    except ValueError:
        raise BadAnswer(f"invalid CIDR address: {text}") from None


def endpoint_interface(answer: dict[str, Any]) -> dict[str, str]:
    """CreateEndpoint's answer: the fields the driver set ({} if none), validated."""
    iface = answer.get("Interface") or {}
    if not isinstance(iface, dict):
        raise BadAnswer("Interface is not an object")
    out = {}
    for key in ("Address", "AddressIPv6"):
        if iface.get(key):
            out[key] = _cidr(str(iface[key]))
    mac = iface.get("MacAddress")
    if mac:
        parts = str(mac).split(":")
        if len(parts) != 6 or not all(len(p) == 2 and _hex(p) for p in parts):
            raise BadAnswer(f"address {mac}: invalid MAC address")
        out["MacAddress"] = str(mac).lower()
    return out


def _hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


def _ip(text: str, what: str) -> str:
    from ipaddress import ip_address
    try:
        return str(ip_address(text))
    except ValueError:
        raise BadAnswer(f'unable to parse {what} "{text}"') from None


def join_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """Join's answer, validated as libnetwork does: InterfaceName {SrcName,
    DstPrefix}, Gateway / GatewayIPv6 bare addresses (or CIDRs), StaticRoutes
    {Destination CIDR, RouteType 0 next hop / 1 connected, NextHop},
    DisableGatewayService."""
    name = answer.get("InterfaceName") or {}
    routes = []
    for r in answer.get("StaticRoutes") or []:
        dest = _cidr(str(r.get("Destination") or "")) if r.get("Destination") else ""
        hop = r.get("NextHop") or ""
        if hop:
            try:
                hop = _ip(str(hop), "nexthop IP")
            except BadAnswer:
                raise BadAnswer(f"failed to parse nexthop IP {hop}") from None
        routes.append({"Destination": dest, "RouteType": int(r.get("RouteType") or 0),
                       "NextHop": hop})
    gw = str(answer.get("Gateway") or "").split("/")[0]
    gw6 = str(answer.get("GatewayIPv6") or "").split("/")[0]
    return {"SrcName": str(name.get("SrcName") or ""),
            "DstPrefix": str(name.get("DstPrefix") or ""),
            "Gateway": _ip(gw, "Gateway") if gw else "",
            "GatewayIPv6": _ip(gw6, "GatewayIPv6") if gw6 else "",
            "StaticRoutes": routes,
            "DisableGatewayService": bool(answer.get("DisableGatewayService"))}
