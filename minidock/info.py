"""`minidock system info`: `docker info` for the network side of one minidock root.

`gather(ctx)` reads the state (store counts, the default bridge's network, daemon
options, the iptables backend, br_netfilter) into one document whose keys are
`docker info --format '{{json .}}'`'s where Docker has them (Containers,
ContainersRunning, Images, DockerRootDir, ClusterStore, ...) plus minidock's own
(ExecRootDir, DefaultBridge, IptablesBackend, BridgeNfIptables, ...).
`text(doc)` prints it the way `docker info` prints its Server section. Pure but for
`gather`.
"""

from __future__ import annotations

import os
import platform
import subprocess
from minidock.hints import Any


def iptables_backend(version_line: str) -> str:
    """"nf_tables" or "legacy" from `iptables --version` ("iptables v1.8.9 (nf_tables)")."""
    if "(nf_tables)" in version_line:
        return "nf_tables"
    if "(legacy)" in version_line or version_line.startswith("iptables v"):
        return "legacy"
    return ""


def _iptables_version() -> str:
    try:
        out = subprocess.run(["iptables", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip()


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _br_netfilter() -> tuple[bool, str]:
    """(module loaded, bridge-nf-call-iptables in this netns: "1", "0" or "")."""
    value = _read("/proc/sys/net/bridge/bridge-nf-call-iptables")
    return os.path.isdir("/sys/module/br_netfilter") or bool(value), value


def gather(ctx: Any) -> dict[str, Any]:
    from minidock import __version__
    from minidock.image.store import list_images
    from minidock.net import controller
    from minidock.net.sandbox import link_name_for
    from minidock.runtime.lifecycle import refresh_all
    cfg = ctx.config
    ctrs = refresh_all(ctx)
    running = sum(1 for c in ctrs if c["State"].get("Running"))
    nets = controller.list_networks(ctx)
    bridge = next((n for n in nets if n["Name"] == "bridge"), None)
    ipam = ((bridge or {}).get("IPAM") or {}).get("Config") or [{}]
    gateway = ipam[0].get("Gateway", "")
    if bridge and not gateway:
        from minidock.net import network as nw
        gateway = str(nw.from_doc(ctx.store.get("network", bridge["Id"])).gateway)
    version = _iptables_version()
    loaded, nf_call = _br_netfilter()
    return {
        "ID": "", "Containers": len(ctrs), "ContainersRunning": running,
        "ContainersPaused": 0, "ContainersStopped": len(ctrs) - running,
        "Images": len(list_images(ctx)), "Networks": len(nets),
        "Driver": "overlay", "ServerVersion": __version__,
        "DockerRootDir": ctx.root, "ExecRootDir": ctx.exec_root,
        "NetnsLinks": "/run/netns/" + link_name_for(ctx, "<name>"),
        "DaemonConfig": ctx.daemon_json if os.path.exists(ctx.daemon_json) else "",
        "Plugins": {"Network": ["bridge", "host", "null"]},
        "DefaultBridge": {
            "Name": "bridge" if bridge else "", "Device": cfg.bridge_name if bridge else "",
            "Subnet": ipam[0].get("Subnet", ""), "Gateway": gateway},
        "IPv4Forwarding": _read("/proc/sys/net/ipv4/ip_forward") == "1",
        "Iptables": cfg.iptables, "IptablesBackend": iptables_backend(version),
        "IptablesVersion": version, "BridgeNfIptables": nf_call == "1",
        "BrNetfilterLoaded": loaded, "Icc": cfg.icc, "IpMasq": cfg.masquerade,
        "UserlandProxy": cfg.userland_proxy, "Mtu": cfg.mtu,
        "ClusterStore": cfg.cluster_store, "ClusterAdvertise": cfg.cluster_advertise,
        "KernelVersion": platform.release(), "OperatingSystem": _os_name(),
        "Architecture": platform.machine(),
    }


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def _yn(value: bool) -> str:
    return "true" if value else "false"


def text(doc: dict[str, Any]) -> str:
    """The `docker info` layout (one space per level, `Key: value`)."""
    br = doc["DefaultBridge"]
    bridge = (f"{br['Name']} ({br['Device']}, subnet {br['Subnet']}, gateway {br['Gateway']})"
              if br["Name"] else "none")
    netfilter = ("not loaded" if not doc["BrNetfilterLoaded"] else
                 f"loaded, bridge-nf-call-iptables={1 if doc['BridgeNfIptables'] else 0}")
    lines = [
        "Server:",
        f" Containers: {doc['Containers']}",
        f"  Running: {doc['ContainersRunning']}",
        f"  Paused: {doc['ContainersPaused']}",
        f"  Stopped: {doc['ContainersStopped']}",
        f" Images: {doc['Images']}",
        f" Networks: {doc['Networks']}",
        f" Server Version: minidock {doc['ServerVersion']}",
        f" Storage Driver: {doc['Driver']}",
        " Plugins:",
        f"  Network: {' '.join(doc['Plugins']['Network'])}",
        f" Minidock Root Dir: {doc['DockerRootDir']}",
        f" Exec Root Dir: {doc['ExecRootDir']}",
        f" Netns Links: {doc['NetnsLinks']}",
        f" Daemon Config: {doc['DaemonConfig'] or '(none: defaults)'}",
        f" Default Bridge: {bridge}",
        f" Iptables: {_yn(doc['Iptables'])}"
        + (f" ({doc['IptablesBackend']} backend, {doc['IptablesVersion'].split(' (')[0]})"
           if doc["IptablesVersion"] else ""),
        f" Br_netfilter: {netfilter}",
        f" IPv4 Forwarding: {_yn(doc['IPv4Forwarding'])}",
        f" ICC: {_yn(doc['Icc'])}",
        f" IP Masquerade: {_yn(doc['IpMasq'])}",
        f" Userland Proxy: {_yn(doc['UserlandProxy'])}",
        f" MTU: {doc['Mtu']}",
    ]
    if doc["ClusterStore"]:
        lines.append(f" Cluster Store: {doc['ClusterStore']}")
    if doc["ClusterAdvertise"]:
        lines.append(f" Cluster Advertise: {doc['ClusterAdvertise']}")
    lines += [f" Kernel Version: {doc['KernelVersion']}",
              f" Operating System: {doc['OperatingSystem']}",
              f" Architecture: {doc['Architecture']}"]
    return "\n".join(lines) + "\n"
