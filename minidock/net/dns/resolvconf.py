"""A container's /etc/resolv.conf as text, derived from the host's (libnetwork resolvconf).

Default bridge and `none`: the host file minus nameservers the container cannot reach
(127.x, ::1, and IPv6 ones without IPv6); if none remain, Docker's public fallback
servers. `--dns`/`--dns-search`/`--dns-option` regenerate the file, each category not
given coming from the host. User-defined networks point at the embedded resolver
127.0.0.11 with `options ndots:0` unless the user set ndots (docker-facts section 2).

**minidock:** when only `--dns-search`/`--dns-option` are given, the host's nameservers
are filtered like above (Docker copies them unfiltered, leaving e.g. 127.0.0.53, which
no container can reach).
"""

from __future__ import annotations

import os
from ipaddress import ip_address
from minidock.hints import Iterable

from minidock.errors import InvalidArgument

ETC_RESOLV = "/etc/resolv.conf"
SYSTEMD_RESOLV = "/run/systemd/resolve/resolv.conf"
EMBEDDED_DNS = "127.0.0.11"
# Docker's fallback when no usable nameserver is left (libnetwork defaultIPv4Dns/IPv6Dns).
DEFAULT_DNS_V4 = ("8.8.8.8", "8.8.4.4")
DEFAULT_DNS_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")
MAX_UPSTREAMS = 3


def _fields(text: str) -> list[list[str]]:
    """Non-comment lines split into fields."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0]
        if line.strip():
            out.append(line.split())
    return out


def _version(addr: str) -> int:
    try:
        return ip_address(addr.split("%", 1)[0]).version
    except ValueError:
        return 0


def nameservers(text: str, version: int = 0) -> list[str]:
    """The `nameserver` addresses, optionally only IPv4 (4) or IPv6 (6) ones."""
    servers = [f[1] for f in _fields(text) if f[0] == "nameserver" and len(f) > 1]
    return [s for s in servers if _version(s) and (version == 0 or _version(s) == version)]


def search_domains(text: str) -> list[str]:
    """The domains of the last `search` line."""
    found: list[str] = []
    for f in _fields(text):
        if f[0] == "search":
            found = f[1:]
    return found


def option_list(text: str) -> list[str]:
    """The options of the last `options` line."""
    found: list[str] = []
    for f in _fields(text):
        if f[0] == "options":
            found = f[1:]
    return found


def _is_local(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"


def _unusable(line: str, ipv6: bool) -> bool:
    f = line.split()
    if len(f) < 2 or f[0] != "nameserver":
        return False
    return _is_local(f[1]) or (not ipv6 and _version(f[1]) == 6)


def filter_host(host_resolv: str, ipv6: bool = False) -> str:
    """The host file minus unreachable nameservers, with Docker's fallback servers."""
    kept = [l for l in host_resolv.splitlines(keepends=True) if not _unusable(l, ipv6)]
    text = "".join(kept)
    if not nameservers(text):
        if text and not text.endswith("\n"):
            text += "\n"
        servers = DEFAULT_DNS_V4 + (DEFAULT_DNS_V6 if ipv6 else ())
        text += "".join(f"nameserver {s}\n" for s in servers)
    return text


def build(servers: Iterable[str], search: Iterable[str], opts: Iterable[str]) -> str:
    """A generated file: search line (none for "."), nameserver lines, options line."""
    search, opts = list(search), list(opts)
    out = []
    if search and " ".join(search).strip() != ".":
        out.append("search " + " ".join(search) + "\n")
    out += [f"nameserver {s}\n" for s in servers]
    if opts and " ".join(opts).strip():
        out.append("options " + " ".join(opts) + "\n")
    return "".join(out)


def for_bridge(host_resolv: str, dns: Iterable[str] = (), search: Iterable[str] = (),
               options: Iterable[str] = (), ipv6: bool = False) -> str:
    """resolv.conf for the default bridge and `none`."""
    dns, search, opts = list(dns), list(search), list(options)
    if not (dns or search or opts):
        return filter_host(host_resolv, ipv6)
    filtered = filter_host(host_resolv, ipv6)
    return build(dns or nameservers(filtered), search or search_domains(host_resolv),
                 opts or option_list(host_resolv))


def _has_ndots(opts: list[str]) -> bool:
    for opt in opts:
        if "ndots" in opt:
            parts = opt.split(":")
            if len(parts) != 2:
                raise InvalidArgument(f"invalid ndots option {opt}")
            try:
                num = int(parts[1])
            except ValueError:
                raise InvalidArgument(f"invalid number for ndots option: {parts[1]}") from None
            if num < 0:
                raise InvalidArgument(f"invalid number for ndots option: {num}")
            return True
    return False


def for_user_network(host_resolv: str, dns: Iterable[str] = (), search: Iterable[str] = (),
                     options: Iterable[str] = (), ipv6: bool = False) -> str:
    """resolv.conf pointing at the embedded resolver.

    `--dns` servers are not listed: the resolver forwards to them (upstream_servers).
    """
    search, opts = list(search), list(options)
    search = search or search_domains(host_resolv)
    opts = opts or option_list(host_resolv)
    servers = [EMBEDDED_DNS]
    if ipv6:
        servers += [s for s in (list(dns) or nameservers(host_resolv, 6))
                    if _version(s) == 6 and not _is_local(s)]
    if not _has_ndots(opts):
        opts = opts + ["ndots:0"]
    return build(servers, search, opts)


def upstream_servers(host_resolv: str, dns: Iterable[str] = ()) -> list[str]:
    """Where the embedded resolver forwards: `--dns`, else the host's IPv4 servers
    (loopback ones included: the resolver queries them from the host netns); max 3."""
    servers = list(dns) or nameservers(host_resolv, 4)
    return servers[:MAX_UPSTREAMS]


def host_resolv_path(etc_text: str | None = None) -> str:
    """The host file to derive from: systemd-resolved's real one when /etc/resolv.conf
    only names the 127.0.0.53 stub (and the real one exists)."""
    if etc_text is None:
        try:
            with open(ETC_RESOLV) as fh:
                etc_text = fh.read()
        except OSError:
            return ETC_RESOLV
    if nameservers(etc_text) == ["127.0.0.53"] and os.path.exists(SYSTEMD_RESOLV):
        return SYSTEMD_RESOLV
    return ETC_RESOLV
