"""Image configs: the JSON document whose sha256 is the image ID.

Docker keeps two shapes: the *image JSON* (architecture, os, created, history,
rootfs.diff_ids, config) and inside it the *container config* an image runs with
(Env, Cmd, Entrypoint, WorkingDir, ExposedPorts, User, Labels...). This module
normalises the latter the way Docker presents it, parses the Dockerfile-like
`-c` changes of `import`, and derives layer chain ids. Pure: dicts in, dicts out.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from minidock.hints import Any

from minidock.errors import InvalidArgument

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_EMPTY_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


def _str_list(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid image config: {key} must be a list of strings")
    return list(value)


def normalize_config(cfg: Any) -> dict[str, Any]:
    """Docker's container-config shape with every key present and PATH in Env.

    Unknown keys are kept; wrong types are refused (a config is user input).
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise InvalidArgument("invalid image config: config is not an object")
    out = {**_EMPTY_CONFIG, **cfg}
    for key in ("Env", "Cmd", "Entrypoint", "OnBuild"):
        out[key] = _str_list(out[key], key)
    for key in ("User", "WorkingDir", "Hostname", "Domainname"):
        if not isinstance(out[key] or "", str):
            raise InvalidArgument(f"invalid image config: {key} must be a string")
        out[key] = out[key] or ""
    for key in ("ExposedPorts", "Labels", "Volumes"):
        if out.get(key) is not None and not isinstance(out[key], dict):
            raise InvalidArgument(f"invalid image config: {key} must be an object")
    if not out.get("ExposedPorts"):
        out.pop("ExposedPorts", None)
    env = out["Env"] or []
    if not any(e.startswith("PATH=") for e in env):
        env = [DEFAULT_PATH, *env]
    out["Env"] = env
    return out


def diff_ids(image_json: dict[str, Any]) -> list[str]:
    """The `rootfs.diff_ids` list (lowest layer first), validated."""
    rootfs = image_json.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidArgument("invalid image config: rootfs type must be \"layers\"")
    ids = rootfs.get("diff_ids") or []
    if not isinstance(ids, list) or not all(isinstance(d, str) and _DIGEST_RE.match(d)
                                             for d in ids):
        raise InvalidArgument("invalid image config: bad rootfs.diff_ids")
    return list(ids)


def chain_ids(diffs: list[str]) -> list[str]:
    """Docker's ChainID of each layer: sha256 of "<parent chain> <diff id>"."""
    out: list[str] = []
    for diff in diffs:
        if not out:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


def image_json(config: dict[str, Any], diffs: list[str], created: str,
               history: list[dict[str, Any]], arch: str | None = None) -> dict[str, Any]:
    """A fresh image JSON document (build and import)."""
    return {
        "architecture": arch or host_arch(),
        "config": config,
        "created": created,
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs},
    }


def encode(doc: dict[str, Any]) -> bytes:
    """Canonical bytes of an image JSON (its sha256 is the image ID)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


# -- `import -c` changes: a Dockerfile subset -------------------------------------
def _json_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", rest]


def _env_pairs(rest: str) -> list[tuple[str, str]]:
    import shlex
    words = shlex.split(rest)
    if not words:
        raise InvalidArgument("ENV requires at least one argument")
    if "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"ENV names can not be blank: {word!r}")
        pairs.append((key, value))
    return pairs


def _set_env(cfg: dict[str, Any], rest: str) -> None:
    env = list(cfg.get("Env") or [])
    for key, value in _env_pairs(rest):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    cfg["Env"] = env


def _expose(cfg: dict[str, Any], rest: str) -> None:
    ports = dict(cfg.get("ExposedPorts") or {})
    for word in rest.split():
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid port specification: {word!r}")
        ports[f"{int(port)}/{proto}"] = {}
    cfg["ExposedPorts"] = ports


def _label(cfg: dict[str, Any], rest: str) -> None:
    labels = dict(cfg.get("Labels") or {})
    for key, value in _env_pairs(rest):
        labels[key] = value
    cfg["Labels"] = labels


def _workdir(cfg: dict[str, Any], rest: str) -> None:
    cfg["WorkingDir"] = posixpath.normpath(posixpath.join("/", cfg.get("WorkingDir") or "/",
                                                          rest.strip()))


_CHANGES = {
    "ENV": _set_env,
    "EXPOSE": _expose,
    "LABEL": _label,
    "WORKDIR": _workdir,
    "CMD": lambda cfg, rest: cfg.__setitem__("Cmd", _json_or_shell(rest)),
    "ENTRYPOINT": lambda cfg, rest: cfg.__setitem__("Entrypoint", _json_or_shell(rest)),
    "USER": lambda cfg, rest: cfg.__setitem__("User", rest.strip()),
    "VOLUME": lambda cfg, rest: cfg.__setitem__(
        "Volumes", {**(cfg.get("Volumes") or {}), **{v: {} for v in _json_or_words(rest)}}),
    "STOPSIGNAL": lambda cfg, rest: cfg.__setitem__("StopSignal", rest.strip()),
}


def _json_or_words(rest: str) -> list[str]:
    value = _json_or_shell(rest)
    return rest.split() if value[:2] == ["/bin/sh", "-c"] else value


def apply_changes(cfg: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply `-c 'INSTR args'` lines to a copy of `cfg` (Docker's import subset)."""
    out = dict(cfg)
    for change in changes:
        instr, _, rest = change.strip().partition(" ")
        handler = _CHANGES.get(instr.upper())
        if handler is None:
            raise InvalidArgument(f"{instr.upper() or repr(change)} is not a valid change command")
        if not rest.strip():
            raise InvalidArgument(f"{instr.upper()} requires at least one argument")
        handler(out, rest)
    return out
