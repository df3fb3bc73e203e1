"""Validate, then act: every network flag of `create`, checked before anything happens.

Messages are Docker's (runconfig/errors.go, daemon/container_operations.go; see
docker-facts section 6). Reads the store, writes nothing.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import InvalidArgument

if TYPE_CHECKING:
    from minidock.context import Container, Context


_CONFLICT = "conflicting options: {} and the network mode"


def validate_container(ctx: Context, ctr: Container, kind: str) -> None:
    hc, cfg = ctr["HostConfig"], ctr["Config"]
    if kind == "container":
        _validate_container_mode(ctx, ctr)
    elif kind == "host" and hc.get("Links"):
        raise InvalidArgument("conflicting options: host type networking can't be used with "
                              "links. This would result in undefined behavior")
    for name, wish in (ctr.get("NetworkSettings", {}).get("Networks") or {}).items():
        _validate_wish(ctx, name, wish or {})
    _validate_ports(ctx, hc)
    for server in hc.get("Dns") or []:
        _ip(server, f"{server} is not an ip address")
    if hc.get("ExtraHosts"):
        from minidock.net.dns.etchosts import parse_add_host
        for v in hc["ExtraHosts"]:
            parse_add_host(v)
    mac = cfg.get("MacAddress")
    if mac and not _is_mac(mac):
        raise InvalidArgument(f"{mac} is not a valid mac address")


def _validate_container_mode(ctx: Context, ctr: Container) -> None:
    hc, cfg = ctr["HostConfig"], ctr["Config"]
    checks = [
        (cfg.get("Hostname") not in ("", ctr["Id"][:12]), _CONFLICT.format("hostname")),
        (bool(hc.get("Links")), "conflicting options: container type network can't be used "
                                "with links. This would result in undefined behavior"),
        (bool(hc.get("Dns")), _CONFLICT.format("dns")),
        (bool(hc.get("ExtraHosts")), _CONFLICT.format("custom host-to-IP mapping")),
        (bool(cfg.get("MacAddress")), _CONFLICT.format("mac-address")),
        (bool(hc.get("PortBindings")) or bool(hc.get("PublishAllPorts")),
         "conflicting options: port publishing and the container type network mode"),
    ]
    for bad, msg in checks:
        if bad:
            raise InvalidArgument(msg)
    ref = hc["NetworkMode"].split(":", 1)[1]
    if not ref:
        raise InvalidArgument("--net: invalid net mode: invalid container format container:<name|id>")
    did, _doc = ctx.store.lookup("container", ref, "container")
    if did == ctr["Id"]:
        raise InvalidArgument("cannot join own network")


def _validate_wish(ctx: Context, name: str, wish: dict[str, Any]) -> None:
    from minidock.net import network as nw
    requested = (wish.get("IPAMConfig") or {}).get("IPv4Address")
    if name in nw.PREDEFINED:
        if wish.get("Aliases"):
            raise InvalidArgument("network-scoped alias is supported only for containers "
                                  "in user defined networks")
        if requested:
            raise InvalidArgument("user specified IP address is supported on user defined "
                                  "networks only")
        return
    _nid, doc = nw.lookup_ctx(ctx, name)
    net = nw.from_doc(doc)
    if requested:
        if not net.user_subnet:
            raise InvalidArgument("user specified IP address is supported only when "
                                  "connecting to networks with user configured subnets")
        from minidock.net import ipam
        ipam.check_requested(ipam.make_pool(net.subnet, net.gateway, net.ip_range or None),
                             requested, ())


def _validate_ports(ctx: Context, hc: dict[str, Any]) -> None:
    from minidock.net.ports.portspec import PROTOS, from_port_bindings
    for b in from_port_bindings(hc.get("PortBindings")):
        if b.proto not in PROTOS:
            raise InvalidArgument(f"invalid proto: {b.proto}")
        if b.host_ip:
            _ip(b.host_ip, f"invalid IP address: {b.host_ip}")


def _ip(text: str, msg: str) -> None:
    from ipaddress import ip_address
    try:
        ip_address(text)
    except ValueError:
        raise InvalidArgument(msg) from None


def _is_mac(mac: str) -> bool:
    parts = mac.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                   for p in parts)
