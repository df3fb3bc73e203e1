"""The container record: Docker's inspect document, kept in the store.

The document is exactly what `inspect` prints (kind "container", store name = Name
without "/"), plus private keys starting with "_" that inspect hides:

    _Monitor      {"Pid": monitor pid, "Start": its start time (/proc/<pid>/stat #22)}
    _PidStart     the start time of State.Pid, so a recycled PID is never mistaken
                  for the container's process
    _Options      run-time wishes that are not in Docker's document (tty, stdin)

`build_doc` is pure (values in, dict out); `save`/`load` are the only store access.
"""

from __future__ import annotations

import os
import time
from minidock.hints import Any

from minidock.context import Container, Context
from minidock.errors import Conflict
from minidock.net.ports.portspec import parse_publish_all, to_port_bindings
from minidock.runtime.spec import (
    DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS, ZERO_TIME, RunOptions, cap_add_drop,
    exposed_ports, merge_env, resolve_command, validate_sysctls,
    validate_workdir)

KIND = "container"


def now_iso(ns: int | None = None) -> str:
    """Docker's timestamp: RFC 3339 with nanoseconds, UTC, "Z"."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def build_doc(cid: str, name: str, image: Any, opts: RunOptions, env: list[str],
              log_path: str, created: str) -> Container:
    """The full document of a new container (status "created")."""
    cfg = image.config or {}
    entrypoint, cmd = resolve_command(opts, cfg)
    argv = (entrypoint or []) + (cmd or [])
    bindings = to_port_bindings(parse_publish_all(opts.publish))
    doc = {
        "Id": cid, "Created": created, "Path": argv[0], "Args": argv[1:],
        "State": {"Status": "created", "Running": False, "Paused": False,
                  "Restarting": False, "OOMKilled": False, "Dead": False, "Pid": 0,
                  "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME,
                  "FinishedAt": ZERO_TIME},
        "Image": "sha256:" + image.id,
        "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "", "LogPath": log_path,
        "Name": "/" + name, "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": _host_config(opts, bindings),
        "GraphDriver": {"Data": None, "Name": "overlay2"},
        "Mounts": [],
        "Config": {
            "Hostname": opts.hostname or cid[:12], "Domainname": "", "User": opts.user
            if opts.user is not None else (cfg.get("User") or ""),
            "AttachStdin": opts.interactive and not opts.detach,
            "AttachStdout": not opts.detach, "AttachStderr": not opts.detach,
            "ExposedPorts": exposed_ports(cfg, opts.expose, bindings) or None,
            "Tty": opts.tty, "OpenStdin": opts.interactive,
            "StdinOnce": opts.interactive and not opts.detach,
            "Env": merge_env(cfg.get("Env"), env) or None, "Cmd": cmd,
            "Image": opts.image, "Volumes": None,
            "WorkingDir": validate_workdir(opts.workdir) if opts.workdir is not None
            else (cfg.get("WorkingDir") or ""),
            "Entrypoint": entrypoint, "OnBuild": None,
            "Labels": {**(cfg.get("Labels") or {}), **opts.labels},
            **({"MacAddress": opts.mac_address} if opts.mac_address else {}),
        },
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False,
                            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                            "Ports": {}, "SandboxKey": "",
                            "Networks": _endpoint_wishes(opts)},
        "_Layers": list(image.layer_dirs),
    }
    from minidock.runtime import hostopts
    hostopts.apply(doc, opts, cfg)
    return doc


_RESOURCES: dict[str, Any] = {
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
    "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
    "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None,
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
}


def _graph_driver(cdir: str, layers: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Docker's GraphDriver block: the overlay's directories (lowerdir top first)."""
    return {"Data": {"LowerDir": ":".join(reversed(list(layers))),
                     "MergedDir": os.path.join(cdir, "merged"),
                     "UpperDir": os.path.join(cdir, "upper"),
                     "WorkDir": os.path.join(cdir, "work")}, "Name": "overlay2"}


def _host_config(opts: RunOptions, bindings: dict[str, Any]) -> dict[str, Any]:
    return {
        "Binds": None, "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": opts.network, "PortBindings": bindings,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": opts.rm, "VolumeDriver": "", "VolumesFrom": None,
        **_caps(opts), "CgroupnsMode": "host",
        "Dns": list(opts.dns), "DnsOptions": list(opts.dns_options),
        "DnsSearch": list(opts.dns_search), "ExtraHosts": list(opts.add_hosts) or None,
        "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
        "Links": list(opts.links) or None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": opts.privileged, "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only, "SecurityOpt": _security_opt(opts), "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 67108864, **_sysctls(opts), "Runtime": "runc", "ConsoleSize": [0, 0],
        "Isolation": "",
        **_RESOURCES,  # no cgroup limits are set: Docker's zero values, for scripts
        # a privileged container has neither (Docker: null)
        "MaskedPaths": None if opts.privileged else list(MASKED_PATHS),
        "ReadonlyPaths": None if opts.privileged else list(READONLY_PATHS),
    }


def _caps(opts: RunOptions) -> dict[str, Any]:
    add, drop = cap_add_drop(opts.cap_add, opts.cap_drop)
    return {"CapAdd": add, "CapDrop": drop}


def _sysctls(opts: RunOptions) -> dict[str, Any]:
    """HostConfig.Sysctls, left out when empty (Docker: omitempty)."""
    sysctls = validate_sysctls(opts.sysctls, opts.network)
    return {"Sysctls": sysctls} if sysctls else {}


def _security_opt(opts: RunOptions) -> list[str] | None:
    """HostConfig.SecurityOpt; Docker's daemon fills ["label=disable"] in for a
    privileged container created without any."""
    from minidock.runtime.seccomp import validate_security_opts
    given = validate_security_opts(opts.security_opt)
    return ["label=disable"] if opts.privileged and given is None else given


def _endpoint_wishes(opts: RunOptions) -> dict[str, Any]:
    """NetworkSettings.Networks at create: the network to join with --ip / --network-alias."""
    net = "bridge" if opts.network == "default" else opts.network
    if net.startswith("container:"):
        return {}
    return {net: {
        "IPAMConfig": {"IPv4Address": opts.ip} if opts.ip else None, "Links": None,
        "Aliases": list(opts.aliases) or None, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
        "DriverOpts": None}}


def runtime_env(ctr: Container, home: str | None = None) -> list[str]:
    """The process environment at start: PATH, HOSTNAME, TERM first, then Config.Env."""
    cfg = ctr["Config"]
    base = [DEFAULT_PATH, "HOSTNAME=" + cfg["Hostname"]]
    if cfg.get("Tty"):
        base.append("TERM=xterm")
    base += ctr.get("_LinkEnv") or []  # legacy links (set at start by net/links/links.py)
    env = merge_env(base, cfg.get("Env") or [])
    if home is not None and not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + home)
    return env


def public(ctr: Container) -> Container:
    """The document as inspect shows it (private keys dropped)."""
    return {k: v for k, v in ctr.items() if not k.startswith("_")}


def short_name(ctr: Container) -> str:
    return ctr["Name"].lstrip("/")


# -- store access ---------------------------------------------------------------------
def insert(ctx: Context, ctr: Container) -> None:
    """Claim the name and store a new record; Docker's error when the name is taken."""
    store = ctx.store
    name = short_name(ctr)
    ctr["GraphDriver"] = _graph_driver(ctx.container_dir(ctr["Id"]), ctr.get("_Layers") or [])
    with store.transaction():
        hit = store.get_by_name(KIND, name)
        if hit is not None:
            raise Conflict(
                f'Conflict. The container name "/{name}" is already in use by container '
                f'"{hit[0]}". You have to remove (or rename) that container to be able '
                "to reuse that name.")
        store.put(KIND, ctr["Id"], ctr, name)


def save(ctx: Context, ctr: Container) -> None:
    ctx.store.put(KIND, ctr["Id"], ctr, short_name(ctr))


def load(ctx: Context, ref: str) -> Container:
    """By full id, name or unique id prefix: `No such container: x` otherwise."""
    return ctx.store.lookup(KIND, ref.lstrip("/") if ref.startswith("/") else ref, KIND)[1]


def get(ctx: Context, cid: str) -> Container | None:
    return ctx.store.get(KIND, cid)


def delete(ctx: Context, cid: str) -> None:
    ctx.store.delete(KIND, cid)


def all_containers(ctx: Context) -> list[Container]:
    return [doc for _, doc in ctx.store.list(KIND)]
