"""Legacy links (`--link name:alias`): the spec, the parent's env vars and hosts entry.

A link hands the parent container a view of the child: environment variables naming
the child's address and exposed ports (Docker's `links.Link.ToEnv`, reproduced with
its order and quirks: docker-facts section 1) and an /etc/hosts line. Only on the
default bridge; on user networks a link is just a DNS alias (the resolver's job).
"""

from __future__ import annotations

from minidock.errors import InvalidArgument


def parse_link(spec: str) -> tuple[str, str]:
    """`--link name[:alias]` -> (name, alias); the alias defaults to the name."""
    if not spec:
        raise InvalidArgument("empty string specified for links")
    parts = spec.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"bad format for links: {spec}")
    if len(parts) == 1:
        return spec, spec
    name, alias = parts
    if name.startswith("/"):  # a stored HostConfig link: "/child:/parent/alias"
        return name[1:], alias.rsplit("/", 1)[-1]
    return name, alias


def env_alias(alias: str) -> str:
    """The variable prefix: alias upper-cased, '-' -> '_', nothing else changed."""
    return alias.rsplit("/", 1)[-1].upper().replace("-", "_")


def _sorted_ports(exposed: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """By number, tcp first on a tie (Docker's nat.Sort in links.go)."""
    return sorted(((int(p), proto.lower()) for p, proto in exposed),
                  key=lambda pp: (pp[0], pp[1] != "tcp"))


def _next_contiguous(ports: list[tuple[int, str]], value: int, index: int) -> int:
    """Index of the last port of the run starting at `index` (links.go nextContiguous)."""
    if index + 1 == len(ports):
        return index
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def _range_vars(a: str, ports: list[tuple[int, str]], ip: str) -> list[str]:
    env = []
    i = 0
    while i < len(ports):
        port, proto = ports[i]
        j = _next_contiguous(ports, port, i)
        if j > i + 1:
            pre = f"{a}_PORT_{port}_{proto.upper()}"
            end_port, end_proto = ports[j]
            end = f"{a}_PORT_{port}_{end_proto.upper()}"
            env += [f"{pre}_START={proto}://{ip}:{port}", f"{pre}_ADDR={ip}",
                    f"{pre}_PROTO={proto}", f"{pre}_PORT_START={port}",
                    f"{end}_END={end_proto}://{ip}:{end_port}", f"{end}_PORT_END={end_port}"]
            i = j + 1
        else:
            i += 1
    return env


def link_env(parent_name: str, alias: str, child_name: str, child_ip: str,
             exposed: list[tuple[int, str]], child_env: list[str]) -> list[str]:
    """The env vars a link gives the parent, in Docker's order (`child_name` is unused
    by Docker's format; kept for symmetry with link_hosts_entry)."""
    a = env_alias(alias)
    ports = _sorted_ports(exposed)
    env = []
    if ports:
        port, proto = ports[0]
        env.append(f"{a}_PORT={proto}://{child_ip}:{port}")
    env += _range_vars(a, ports, child_ip)
    for port, proto in ports:
        pre = f"{a}_PORT_{port}_{proto.upper()}"
        env += [f"{pre}={proto}://{child_ip}:{port}", f"{pre}_ADDR={child_ip}",
                f"{pre}_PORT={port}", f"{pre}_PROTO={proto}"]
    env.append(f"{a}_NAME=/{parent_name.strip('/')}/{alias}")
    for item in child_env:
        key, sep, value = item.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append(f"{a}_ENV_{key}={value}")
    return env


def link_hosts_entry(alias: str, child_hostname: str, child_name: str,
                     child_ip: str) -> tuple[str, str]:
    """The parent's hosts line as (ip, names): "alias childHostname [childName]"."""
    name = child_name.lstrip("/")
    names = f"{alias} {child_hostname}"
    if name != alias:
        names += f" {name}"
    return child_ip, names
