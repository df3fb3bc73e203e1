"""Published ports: which host ports a container gets, and how inspect shows them.

Host ports are claims in the store (`space = "port:<proto>"`, key = "<host ip>:<port>",
owner = the endpoint id), decided in one transaction. `0.0.0.0` conflicts with every
address for the same port (and every address with `0.0.0.0`), so the check reads the
claimed set for that port before claiming. Ephemeral ports come from the kernel's
`ip_local_port_range` (fallback 49153-65535), lowest free first.

The kernel side (DNAT/ACCEPT/hairpin MASQUERADE rules, net/drivers/bridge/rules.py
`port_rules`, and the userland proxy, proxy.py) is applied by the bridge driver's
`program_external_connectivity`; this module only decides and formats.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Conflict
from minidock.net.ports.portspec import (PortBinding, from_port_bindings, port_key,
                                         split_port_key)

if TYPE_CHECKING:
    from minidock.context import Container



def requested_bindings(ctr: Container, default_ip: str) -> list[PortBinding]:
    """The container's wanted bindings (HostConfig.PortBindings, plus -P for exposed
    ports without one), the host IP defaulted to the network's."""
    hc = ctr.get("HostConfig", {})
    pb = hc.get("PortBindings") or {}
    out = [b._replace(host_ip=b.host_ip or default_ip) for b in from_port_bindings(pb)]
    if hc.get("PublishAllPorts"):
        for key in (ctr.get("Config", {}).get("ExposedPorts") or {}):
            if key not in pb:
                port, proto = split_port_key(key)
                out.append(PortBinding(proto, port, default_ip, 0))
    return out


def ephemeral_range() -> tuple[int, int]:
    from minidock.net.ports.portspec import ephemeral_range as parse
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return parse(fh.read())
    except OSError:
        return parse(None)


def _conflicts(claimed: dict[str, str], host_ip: str, port: int, owner: str) -> bool:
    for key, who in claimed.items():
        ip, _, p = key.rpartition(":")
        if int(p) == port and who != owner and (ip == host_ip or "0.0.0.0" in (ip, host_ip)):
            return True
    return False


def allocate(store: Any, owner: str, wanted: list[PortBinding], ep_label: str
             ) -> list[PortBinding]:
    """Claim a host port for each wanted binding, all in one transaction (all or none).

    `ep_label` is "<name> (<endpoint id>)" for Docker's conflict message."""
    out = []
    eph: tuple[int, int] | None = None
    with store.transaction():
        for b in wanted:
            space = f"port:{b.proto}"
            claimed = store.claimed(space)
            if b.host_port and not b.host_port_end:
                candidates = range(b.host_port, b.host_port + 1)
            elif b.host_port:
                candidates = range(b.host_port, b.host_port_end + 1)
            else:
                eph = eph or ephemeral_range()
                candidates = range(eph[0], eph[1] + 1)
            port = next((p for p in candidates
                         if not _conflicts(claimed, b.host_ip, p, owner)), 0)
            if not port:
                shown = b.host_port or "0"
                raise Conflict(f"driver failed programming external connectivity on endpoint "
                               f"{ep_label}: Bind for {b.host_ip}:{shown} failed: "
                               "port is already allocated")
            store.claim(space, f"{b.host_ip}:{port}", owner)
            out.append(PortBinding(b.proto, b.container_port, b.host_ip, port))
    from minidock import pipeline
    if pipeline.TRACING:
        for b in out:
            pipeline.note("+", "port", f"{b.host_ip}:{b.host_port}/{b.proto} claimed "
                                       f"for container port {b.container_port}")
    return out


def to_record(bindings: list[PortBinding] | tuple[PortBinding, ...]) -> list[dict[str, Any]]:
    """Allocated bindings as the endpoint record stores them."""
    return [{"proto": b.proto, "container_port": b.container_port, "host_ip": b.host_ip,
             "host_port": b.host_port} for b in bindings]


def from_record(items: Any) -> tuple[PortBinding, ...]:
    """The endpoint record's allocated bindings (dicts, or bindings already)."""
    return tuple(b if isinstance(b, PortBinding) else
                 PortBinding(b["proto"], b["container_port"], b["host_ip"], b["host_port"])
                 for b in items or ())


def release(store: Any, owner: str) -> None:
    """Give back every host port `owner` holds (idempotent)."""
    store.release_owner(owner, "port:")


def has_ipv6() -> bool:
    return os.path.exists("/proc/net/if_inet6")


def inspect_ports(ctr: Container, bindings: list[PortBinding]) -> dict[str, Any]:
    """NetworkSettings.Ports: bound ports with HostIp/HostPort (plus "::" like Docker
    when bound on 0.0.0.0 and the kernel has IPv6), exposed-only ports as null."""
    out: dict[str, Any] = {}
    for key in (ctr.get("Config", {}).get("ExposedPorts") or {}):
        out[key] = None
    v6 = has_ipv6()
    for b in bindings:
        key = port_key(b.container_port, b.proto)
        items = out.get(key) or []
        items.append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        if v6 and b.host_ip == "0.0.0.0":
            items.append({"HostIp": "::", "HostPort": str(b.host_port)})
        out[key] = items
    return out


def ports_of(ctr: Container) -> list[str]:
    """`minidock port NAME` lines: "80/tcp -> 0.0.0.0:8080", sorted like Docker."""
    ports = (ctr.get("NetworkSettings") or {}).get("Ports") or {}
    lines = []
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]), k.split("/")[1])):
        for item in ports[key] or []:
            # Docker 20.10's CLI joins without brackets: "80/tcp -> :::8080"
            lines.append(f"{key} -> {item['HostIp']}:{item['HostPort']}")
    return lines
