"""Port specs: `-p`, `--expose` and the ephemeral port range, parsed into values.

`-p` accepts Docker's form `[ip:][hostPort:]containerPort[/tcp|udp|sctp]`, split on
the last two colons (an IPv6 host IP goes in brackets), with ranges paired one to
one, or one container port over a host range ("any free port in 8000-8010").
`-p` is parsed once, at create, into `PortBinding`s; the container record keeps
Docker's HostConfig.PortBindings JSON, converted both ways by `to_port_bindings` /
`from_port_bindings`. Nothing here allocates a port: the controller claims host ports
in the store.
"""

from __future__ import annotations

from minidock.hints import Any, NamedTuple

from minidock.errors import InvalidArgument

PROTOS = ("tcp", "udp", "sctp")
EPHEMERAL_FALLBACK = (49153, 65535)


class PortBinding(NamedTuple):
    """One published container port, the only form a `-p` binding takes after parsing.

    host_ip "" = not given (the network's host IP applies); host_port 0 = ephemeral;
    with host_port_end, any free host port in host_port..host_port_end. container_ip
    is set once the binding is programmed for an endpoint (the proxy's forwards)."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int  # 0 = ephemeral
    host_port_end: int = 0  # for "8000-8010:80" (any free port in range)
    container_ip: str = ""


def port_key(port: int, proto: str) -> str:
    """Docker's key for a container port: "80/tcp"."""
    return f"{port}/{proto}"


def split_proto_port(raw: str) -> tuple[str, str]:
    """("tcp", "80") from "80", ("udp", "53") from "53/udp" (go-connections)."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def parse_range(text: str) -> tuple[int, int]:
    """"80" -> (80, 80); "8000-8010" -> (8000, 8010). ValueError if malformed."""
    if not text:
        raise ValueError("Empty string specified for ports.")
    start, sep, end = text.partition("-")
    lo = _uint16(start)
    hi = _uint16(end) if sep else lo
    if hi < lo:
        raise ValueError(f"Invalid range specified for the Port: {text}")
    return lo, hi


def _uint16(text: str) -> int:
    if not text.isdigit() or not text.isascii() or int(text) > 65535:
        raise ValueError(f"invalid port {text!r}")
    return int(text)


def parse_publish(spec: str) -> list[PortBinding]:
    """Parse one `-p` value into its bindings (several for a range); the host IP is
    kept as given (brackets dropped) and checked when the network is joined."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOS:
        raise InvalidArgument(f"invalid proto: {proto}")
    parts = rest.rsplit(":", 2)
    cport = parts[-1]
    hport = parts[-2] if len(parts) >= 2 else ""
    hip = parts[-3] if len(parts) == 3 else ""
    if hip.startswith("[") and hip.endswith("]"):
        hip = hip[1:-1]
    c_lo, c_hi = checked_range(cport, "containerPort")
    h_lo, h_hi = checked_range(hport, "hostPort") if hport else (0, 0)
    if hport and h_hi - h_lo != c_hi - c_lo and c_lo != c_hi:
        raise InvalidArgument(
            f"invalid ranges specified for container and host Ports: {cport} and {hport}")
    if c_lo == c_hi and h_lo != h_hi:
        return [PortBinding(proto, c_lo, hip, h_lo, h_hi)]
    return [PortBinding(proto, c_lo + i, hip, h_lo + i if hport else 0)
            for i in range(c_hi - c_lo + 1)]


def parse_publish_all(specs: tuple[str, ...] | list[str]) -> list[PortBinding]:
    """Every `-p` value of a container, parsed once at create."""
    return [b for spec in specs for b in parse_publish(spec)]


def checked_range(text: str, what: str) -> tuple[int, int]:
    """`N` or `N-M` as (start, end) within 1..65535; Docker's `invalid <what>` otherwise."""
    lo, dash, hi = text.partition("-")
    try:
        start, end = int(lo), int(hi) if dash else int(lo)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None
    if not (0 < start <= end <= 65535):
        raise InvalidArgument(f"invalid {what}: {text}")
    return start, end


def to_port_bindings(bindings: list[PortBinding]) -> dict[str, list[dict[str, str]]]:
    """Docker's HostConfig.PortBindings JSON of parsed bindings (what the record keeps)."""
    out: dict[str, list[dict[str, str]]] = {}
    for b in bindings:
        if not b.host_port:
            host = ""
        elif b.host_port_end:
            host = f"{b.host_port}-{b.host_port_end}"
        else:
            host = str(b.host_port)
        out.setdefault(port_key(b.container_port, b.proto), []).append(
            {"HostIp": b.host_ip, "HostPort": host})
    return out


def from_port_bindings(pb: dict[str, Any] | None) -> list[PortBinding]:
    """The bindings of a HostConfig.PortBindings JSON (an empty list = one binding
    with nothing given, as Docker reads it)."""
    out: list[PortBinding] = []
    for key, items in (pb or {}).items():
        port, proto = split_port_key(key)
        for item in items or [{}]:
            lo, hi = _host_port_range(item.get("HostPort") or "")
            out.append(PortBinding(proto, port, item.get("HostIp") or "", lo, hi))
    return out


def split_port_key(key: str) -> tuple[int, str]:
    """(80, "tcp") from Docker's key "80/tcp" (a bare "80" is tcp)."""
    port, _, proto = key.partition("/")
    try:
        return int(port), proto or "tcp"
    except ValueError as err:
        raise InvalidArgument(f"invalid port format: {key}") from err


def _host_port_range(value: str) -> tuple[int, int]:
    if not value:
        return 0, 0
    lo, _, hi = value.partition("-")
    try:
        return int(lo), int(hi) if hi else 0
    except ValueError as err:
        raise InvalidArgument(f"Invalid hostPort: {value}") from err


def parse_expose(spec: str) -> list[tuple[int, str]]:
    """Parse one `--expose` value ("80", "80/udp", "8000-8002") into (port, proto)s."""
    if ":" in spec:
        raise InvalidArgument(f"invalid port format for --expose: {spec}")
    proto, port = split_proto_port(spec)
    try:
        lo, hi = parse_range(port)
        if lo == 0:
            raise ValueError("port 0 is not a valid port")
    except ValueError as err:
        raise InvalidArgument(f"invalid range format for --expose: {spec}, error: {err}") from None
    if proto.lower() not in PROTOS:
        raise InvalidArgument(f"Invalid proto: {proto}")
    return [(p, proto.lower()) for p in range(lo, hi + 1)]


def ephemeral_range(text: str | None) -> tuple[int, int]:
    """The ephemeral host port range from /proc/sys/net/ipv4/ip_local_port_range's
    content; Docker's fallback 49153-65535 when unreadable or malformed."""
    if not text:
        return EPHEMERAL_FALLBACK
    fields = text.split()
    try:
        lo, hi = int(fields[0]), int(fields[1])
    except (IndexError, ValueError):
        return EPHEMERAL_FALLBACK
    if not 0 < lo <= hi <= 65535:
        return EPHEMERAL_FALLBACK
    return lo, hi
