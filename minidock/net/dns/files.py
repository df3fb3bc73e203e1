"""The container's resolution files: /etc/hostname, /etc/hosts, /etc/resolv.conf
(libnetwork's setupResolutionFiles / buildHostsFile).

They live in the container's directory and the runtime bind-mounts them; their text
comes from the pure builders (net/dns/etchosts.py, net/dns/resolvconf.py). Host mode copies the
host's files; `container:` mode shares the donor's paths (not copies), so a change seen
by one is seen by the other, as in Docker.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING

if TYPE_CHECKING:
    from minidock.context import Container, Context



def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def extra_hosts(ctr: Container) -> list[tuple[str, str]]:
    from minidock.net.dns.etchosts import parse_add_host
    return [parse_add_host(v) for v in ctr["HostConfig"].get("ExtraHosts") or []]


def hosts_text(ctr: Container, ips: list[str], links: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    from minidock.net.dns.etchosts import build_hosts
    cfg = ctr["Config"]
    return build_hosts(cfg["Hostname"], ips, extra_hosts(ctr), list(links),
                       cfg.get("Domainname") or "")


def resolv_text(ctx: Context, ctr: Container, user_network: bool) -> str:
    from minidock.net.dns import resolvconf
    hc, cfg = ctr["HostConfig"], ctx.config
    host = _read(resolvconf.host_resolv_path())
    dns = tuple(hc.get("Dns") or cfg.dns)
    search = tuple(hc.get("DnsSearch") or cfg.dns_search)
    options = tuple(hc.get("DnsOptions") or cfg.dns_opts)
    if user_network:
        return resolvconf.for_user_network(host, dns, search, options)
    return resolvconf.for_bridge(host, dns, search, options)


def write_files(ctx: Context, ctr: Container, hostname: str, hosts: str, resolv: str) -> None:
    """Write the three files into the container's directory and point the doc at them."""
    cdir = ctx.container_dir(ctr["Id"])
    os.makedirs(cdir, exist_ok=True)
    paths = {"HostnamePath": "hostname", "HostsPath": "hosts", "ResolvConfPath": "resolv.conf"}
    texts = {"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv}
    for key, name in paths.items():
        path = os.path.join(cdir, name)
        _write(path, texts[name])
        ctr[key] = path


def host_mode_files(ctx: Context, ctr: Container) -> None:
    """Host mode: the host's hostname and copies of its hosts and resolv.conf."""
    ctr["Config"]["Hostname"] = os.uname().nodename    # gethostname(), without socket
    hosts = _read("/etc/hosts")
    for name, ip in extra_hosts(ctr):
        hosts += f"{ip}\t{name}\n"
    write_files(ctx, ctr, ctr["Config"]["Hostname"], hosts, _read("/etc/resolv.conf"))


def share_files(ctr: Container, donor: Container) -> None:
    """`container:` mode: the donor's hostname and the very same files."""
    ctr["Config"]["Hostname"] = donor["Config"]["Hostname"]
    for key in ("HostnamePath", "HostsPath", "ResolvConfPath"):
        ctr[key] = donor.get(key, "")


def add_hosts_entry(ctr: Container, ip: str) -> None:
    """After `network connect`: one more `<ip>\\t<hostname>` line."""
    from minidock.net.dns.etchosts import add_host_entry
    path = ctr.get("HostsPath")
    if path and os.path.exists(path):
        _write(path, add_host_entry(_read(path), ip, _names(ctr)))


def remove_hosts_entry(ctr: Container, ip: str) -> None:
    from minidock.net.dns.etchosts import remove_host_entry
    path = ctr.get("HostsPath")
    if path and os.path.exists(path):
        _write(path, remove_host_entry(_read(path), ip, _names(ctr)))


def _names(ctr: Container) -> list[str]:
    cfg = ctr["Config"]
    host, dom = cfg["Hostname"], cfg.get("Domainname") or ""
    if dom:
        return [f"{host}.{dom}", host]
    if "." in host:
        return [host, host.split(".", 1)[0]]
    return [host]
