"""A container's /etc/hosts as text: built, patched and parsed, never read from disk here.

Docker's layout (docker-facts section 2), in order: the six default lines, the
`--add-host` records, the legacy link records, then one `<ip>\t<hostname>` line per
network the container joined (`<ip>\t<fqdn> <short>` for a dotted name). Other
containers never appear. Link sources that restart get their IP patched in their
parents' files (`update_parent_hosts`, libnetwork's etchosts.Update).
"""

from __future__ import annotations

import re
from ipaddress import ip_address
from minidock.hints import Iterable

from minidock.errors import InvalidArgument

DEFAULT = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
HOST_GATEWAY = "host-gateway"


def host_names(hostname: str, domainname: str = "") -> str:
    """The names on a container's own line: "web", or "web.example.com web"."""
    if domainname:
        return f"{hostname}.{domainname} {hostname}"
    short = hostname.split(".", 1)[0]
    if "." in hostname and short:
        return f"{hostname} {short}"
    return hostname


def build_hosts(hostname: str, ips: list[str], extra_hosts: Iterable[tuple[str, str]] = (),
                links: Iterable[tuple[str, str]] = (), domainname: str = "") -> str:
    """The whole file. extra_hosts are (name, ip) as parse_add_host returns them;
    links are (ip, "alias childHostname childName") as link_hosts_entry returns."""
    lines = [DEFAULT]
    lines += [f"{ip}\t{name}\n" for name, ip in extra_hosts]
    lines += [f"{ip}\t{names}\n" for ip, names in links]
    own = host_names(hostname, domainname)
    lines += [f"{ip}\t{own}\n" for ip in ips]
    return "".join(lines)


def parse_add_host(v: str) -> tuple[str, str]:
    """`--add-host name:ip` -> (name, ip), split at the first ':' (so IPv6 works).

    "host-gateway" is returned as is; the caller substitutes the gateway address.
    """
    name, sep, ip = v.partition(":")
    if not sep or not name:
        raise InvalidArgument(f'bad format for add-host: "{v}"')
    if ip != HOST_GATEWAY:
        try:
            ip = str(ip_address(ip.strip()))
        except ValueError:
            raise InvalidArgument(f'invalid IP address in add-host: "{ip}"') from None
    return name, ip


def update_parent_hosts(text: str, alias: str, new_ip: str) -> str:
    """Point every `<ip>\t<alias>` entry (alias followed by whitespace or '.') of
    new_ip's family at new_ip (a dual-stack link has one line per family)."""
    pattern = re.compile(r"(\S*)(\t" + re.escape(alias) + r")(\s|\.)")
    v6 = ":" in new_ip

    def swap(m: re.Match[str]) -> str:
        if (":" in m.group(1)) != v6:
            return m.group(0)
        return new_ip + m.group(2) + m.group(3)
    return pattern.sub(swap, text)


def _names(names: str | Iterable[str]) -> str:
    return names if isinstance(names, str) else " ".join(names)


def add_host_entry(text: str, ip: str, names: str | Iterable[str]) -> str:
    """Append an `<ip>\t<names>` line (network connect)."""
    if text and not text.endswith("\n"):
        text += "\n"
    return text + f"{ip}\t{_names(names)}\n"


def remove_host_entry(text: str, ip: str, names: str | Iterable[str]) -> str:
    """Drop the `<ip>\t<names>` lines (network disconnect); other lines are kept as is."""
    want = [ip] + _names(names).split()
    kept = [line for line in text.splitlines(keepends=True) if line.split() != want]
    return "".join(kept)
