"""The sandbox options Docker passes to network plugins, from the container record.

moby's daemon (buildSandboxOptions / buildCreateEndpointOptions) turns the container's
exposed ports and requested port bindings (not the allocated ones) into
`com.docker.network.endpoint.exposedports` and `com.docker.network.portmap`. Ports are
ordered by nat.SortPortMap's intent: ports with a larger requested host port first,
then larger port numbers, tcp before other protocols on a tie. Go's comparator is not
a strict order and its input comes from a map, so Docker itself is not deterministic
there: for `-p 8080:80 --expose 90` dockerd sent [80, 90] in one recorded run and
[90, 80] in another; this order is the comparator's intent. A host
port range "8000-8010" gives HostPort 8000 and HostPortEnd 8010; none gives 0 and 0;
`-P` adds a binding without host port for each exposed port that has none.

Pure: the container document and its requested bindings (portspec.from_port_bindings
of its HostConfig.PortBindings) in, lists of api.exposed_port / api.port_binding out.
"""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any, Sequence

from minidock.net.plugins import api

if TYPE_CHECKING:
    from minidock.net.ports.portspec import PortBinding


def _split(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return int(port.split("-")[0]), (proto or "tcp").lower()


def port_options(ctr: dict[str, Any], requested: Sequence[PortBinding]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(exposed ports, port bindings) of the container, in Docker's order."""
    cfg, hc = ctr.get("Config") or {}, ctr.get("HostConfig") or {}
    bindings: dict[str, list[PortBinding]] = {}
    for rb in requested:
        bindings.setdefault(f"{rb.container_port}/{rb.proto}", []).append(rb)
    specs = set(cfg.get("ExposedPorts") or {}) | set(bindings)
    entries: list[tuple[str, int, str, PortBinding | None, tuple[int, int]]] = []
    for key in specs:
        port, proto = _split(key)
        for b in bindings.get(key) or [None]:
            host = (b.host_port, b.host_port_end or b.host_port) if b else (0, 0)
            entries.append((key, port, proto, b, host))
    entries.sort(key=lambda e: (-e[4][0], -e[1], e[2] != "tcp", e[2]))
    exposed, portmap, seen = [], [], set()
    for key, port, proto, b, host in entries:
        if key not in seen:
            seen.add(key)
            exposed.append(api.exposed_port(port, proto))
        if b is not None:
            portmap.append(api.port_binding(port, proto, b.host_ip, *host))
        elif hc.get("PublishAllPorts"):
            portmap.append(api.port_binding(port, proto))
    return exposed, portmap
