"""The container spec: `run`/`create` flags plus the image config -> Docker's document.

Pure logic, no I/O: the CLI parses flags into a frozen `RunOptions`, and `build_doc`
turns it (with the image's config and a fresh id) into the container document, which
is Docker's inspect JSON (see reference/inspect-web.json). Every flag is validated here,
before the first side effect (validate, then act). The rules that decide what a
container runs follow Docker's daemon: `--entrypoint` clears the image's Cmd, arguments
replace Cmd, `-e K` without a value takes the caller's value, image Env is overridden
key by key, and PATH / HOSTNAME / TERM / HOME are added at start (`runtime_env`).
"""

from __future__ import annotations

import re
from minidock.runtime.values import Values
from minidock.hints import Any

from minidock.errors import InvalidArgument

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ZERO_TIME = "0001-01-01T00:00:00Z"
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


class RunOptions(Values):
    """Every flag of `run` / `create`, parsed but not yet checked against anything."""

    image: str
    args: tuple[str, ...] = ()
    detach: bool = False
    interactive: bool = False
    tty: bool = False
    rm: bool = False
    name: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    hostname: str | None = None
    entrypoint: str | None = None
    user: str | None = None
    volumes: tuple[str, ...] = ()          # -v
    mounts: tuple[str, ...] = ()           # --mount
    tmpfs: tuple[str, ...] = ()            # --tmpfs
    volumes_from: tuple[str, ...] = ()     # --volumes-from
    restart: str = "no"                    # --restart
    init: bool = False                     # --init
    limits: dict[str, str] = {}            # resource flags (limits.Limits fields)
    network: str = "default"
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    expose: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    ip: str = ""
    aliases: tuple[str, ...] = ()
    mac_address: str = ""
    labels: dict[str, str] = {}
    security_opt: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    sysctls: tuple[str, ...] = ()
    read_only: bool = False


def validate_name(name: str) -> str:
    """The name without its leading "/"; Docker's error when it breaks the rule."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def parse_env_file(text: str, environ: dict[str, str]) -> list[str]:
    """`--env-file` content: one VAR=VAL or VAR per line, `#` comments, blank lines."""
    out: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        out.extend(expand_env([line], environ))
    return out


MAX_ENV_ENTRY = 131072   # the kernel's MAX_ARG_STRLEN: execve refuses a longer string


def expand_env(items: list[str] | tuple[str, ...], environ: dict[str, str]) -> list[str]:
    """`-e K=V` as given; `-e K` takes the caller's K, or is dropped when unset."""
    out: list[str] = []
    for item in items:
        key, eq, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        _check_env_entry(key, item)
        if eq:
            out.append(item)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def _check_env_entry(key: str, item: str) -> None:
    """What execve would refuse at start is refused now, naming the variable."""
    if "\0" in item:
        raise InvalidArgument(f"invalid environment variable {key[:64]!r}: it contains a NUL byte")
    size = len(item.encode(errors="surrogateescape")) + 1
    if size > MAX_ENV_ENTRY:
        raise InvalidArgument(f"environment variable {key[:64]} is too long: {size} bytes "
                              f"(the kernel's limit is {MAX_ENV_ENTRY})")


def validate_workdir(workdir: str | None) -> str | None:
    """`-w` must be absolute (Docker's rule and message)."""
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{workdir}' is invalid, "
                              "it needs to be an absolute path")
    return workdir


def merge_env(base: list[str] | None, override: list[str]) -> list[str]:
    """Image Env overridden key by key by the user's, order kept (ReplaceOrAppendEnvValues)."""
    out = list(base or [])
    index = {e.partition("=")[0]: i for i, e in enumerate(out)}
    for item in override:
        key = item.partition("=")[0]
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def resolve_command(opts: RunOptions, image_cfg: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """(Entrypoint, Cmd) as Docker stores them in Config."""
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else None
        cmd = list(opts.args) or None
    else:
        entrypoint = image_cfg.get("Entrypoint") or None
        cmd = list(opts.args) or image_cfg.get("Cmd") or None
    if not entrypoint and not cmd:
        raise InvalidArgument("No command specified")
    return entrypoint, cmd


def _port_range(text: str, what: str, spec: str) -> list[int]:
    from minidock.net.ports.portspec import checked_range
    start, end = checked_range(text, what)
    return list(range(start, end + 1))


def exposed_ports(image_cfg: dict[str, Any], expose: tuple[str, ...],
                  bindings: dict[str, Any]) -> dict[str, dict]:
    """Image ExposedPorts + `--expose` + every published port, as {"80/tcp": {}}."""
    out = dict(image_cfg.get("ExposedPorts") or {})
    for spec in expose:
        port, _, proto = spec.partition("/")
        for p in _port_range(port, "port", spec):
            out[f"{p}/{proto or 'tcp'}"] = {}
    for key in bindings:
        out[key] = {}
    return out


# -- capabilities and sysctls -------------------------------------------------------------
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
SYSCTL_PREFIXES = ("net.", "fs.mqueue.")


def cap_add_drop(add: tuple[str, ...],
                 drop: tuple[str, ...]) -> tuple[list[str] | None, list[str] | None]:
    """HostConfig.CapAdd / CapDrop as Docker's CLI stores them: CAP_ names, sorted, ALL
    trumping the rest of its list, a name both added and dropped in neither."""
    from minidock.runtime.caps import normalize
    try:
        adds = set(normalize(add))
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid CapAdd: {err}") from None
    try:
        drops = set(normalize(drop))
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid CapDrop: {err}") from None
    adds = {"ALL"} if "ALL" in adds else adds
    drops = {"ALL"} if "ALL" in drops else drops
    both = adds & drops
    return sorted(adds - both) or None, sorted(drops - both) or None


def validate_sysctls(items: tuple[str, ...], network: str) -> dict[str, str]:
    """`--sysctl K=V` -> HostConfig.Sysctls; Docker's allow-list (the namespaced ones)
    and runc's rule that net.* needs the container's own network namespace."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        parts = key.split(".")
        if not sep or not all(p and "/" not in p and "\0" not in p for p in parts) or \
                not (key in IPC_SYSCTLS or key.startswith(SYSCTL_PREFIXES)) or "\0" in value:
            raise InvalidArgument(f'invalid argument "{item}" for "--sysctl" flag: '
                                  f"sysctl '{item}' is not whitelisted")
        if key.startswith("net.") and network == "host":
            raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts network namespace')
        out[key] = value
    return out
