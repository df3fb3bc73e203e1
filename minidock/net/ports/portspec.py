"""Port specs: `-p`, `--expose` and the ephemeral port range, parsed into values.

`-p` accepts Docker's form `[ip:][hostPort:]containerPort[/tcp|udp|sctp]`, split on
the last two colons (an IPv6 host IP goes in brackets), with ranges paired one to
one, or one container port over a host range ("any free port in 8000-8010").
Messages are go-connections' (`nat.ParsePortSpec`), which the docker CLI prints as is
(docker-facts section 4). Nothing here allocates a port: the controller claims host
ports in the store.
"""

from __future__ import annotations

from typing import NamedTuple

from ipaddress import ip_address

from minidock.errors import InvalidArgument

PROTOS = ("tcp", "udp", "sctp")
EPHEMERAL_FALLBACK = (49153, 65535)


class PortBinding(NamedTuple):
    """One published container port; host_port 0 = ephemeral; with host_port_end,
    any free host port in host_port..host_port_end."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int  # 0 = ephemeral
    host_port_end: int = 0  # for "8000-8010:80" (any free port in range)


def port_key(port: int, proto: str) -> str:
    """Docker's key for a container port: "80/tcp"."""
    return f"{port}/{proto}"


def _split_parts(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


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


def _host_ip(raw: str, default_ip: str) -> str:
    ip = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    if not ip:
        return default_ip
    try:
        return str(ip_address(ip))
    except ValueError:
        raise InvalidArgument(f"Invalid ip address: {ip}") from None


def parse_publish(spec: str, default_ip: str = "0.0.0.0") -> list[PortBinding]:
    """Parse one `-p` value into its bindings (several for a range)."""
    raw_ip, host, container = _split_parts(spec)
    proto, container = split_proto_port(container)
    ip = _host_ip(raw_ip, default_ip)
    if not container:
        raise InvalidArgument(f"No port specified: {spec}<empty>")
    try:
        c_lo, c_hi = parse_range(container)
        if c_lo == 0:
            raise ValueError("port 0")
    except ValueError:
        raise InvalidArgument(f"Invalid containerPort: {container}") from None
    h_lo = h_hi = 0
    if host:
        try:
            h_lo, h_hi = parse_range(host)
        except ValueError:
            raise InvalidArgument(f"Invalid hostPort: {host}") from None
        if c_hi - c_lo != h_hi - h_lo and c_hi != c_lo:
            raise InvalidArgument(
                f"Invalid ranges specified for container and host Ports: {container} and {host}")
    if proto.lower() not in PROTOS:
        raise InvalidArgument(f"Invalid proto: {proto}")
    proto = proto.lower()
    if c_lo == c_hi and h_lo != h_hi:
        return [PortBinding(proto, c_lo, ip, h_lo, h_hi)]
    return [PortBinding(proto, c_lo + i, ip, h_lo + i if host else 0)
            for i in range(c_hi - c_lo + 1)]


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
