"""Mount specs: `-v`, `--mount`, `--tmpfs`, `--volumes-from` -> one list of mounts.

Pure logic, no I/O: every spec is parsed and checked here (Docker's messages) before
the first side effect; volumes.py then gives volumes their host directories, and
rootfs.py mounts the list inside the container's init, each target resolved in the
rootfs. A mount is a plain dict in Docker's MountPoint shape (what `inspect` shows in
`Mounts`), plus private keys that inspect hides:

    _Anonymous    the volume was made for this container (`-v /path`): rm -v and --rm
                  remove it
    _Data         tmpfs mount data ("size=65536k,mode=1777")
    _NoCopy       do not seed an empty volume from the image
    _Flags        extra tmpfs flags (noexec, nosuid, nodev)
    _Origin       "binds" (`-v`), "mounts" (`--mount`), "tmpfs" or "image" (VOLUME)
"""

from __future__ import annotations

import re
from minidock.hints import Any

from minidock.errors import InvalidArgument

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_RW_MODES = ("ro", "rw")
_LABEL_MODES = ("z", "Z")
_PROPAGATION = ("private", "rprivate")
_TMPFS_FLAGS = ("noexec", "nosuid", "nodev", "exec", "suid", "dev", "ro", "rw")

Mount = dict[str, Any]


def _mount_error(kind: str, msg: str) -> InvalidArgument:
    return InvalidArgument(f'invalid mount config for type "{kind}": {msg}')


def check_target(kind: str, target: str) -> str:
    """Absolute and not "/" (Docker's messages); returned normalised."""
    if not target.startswith("/"):
        raise _mount_error(kind, f"invalid mount path: '{target}' mount path must be absolute")
    import posixpath
    norm = posixpath.normpath("/" + target.lstrip("/"))
    if norm == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    return norm


def check_volume_name(name: str) -> str:
    if not VOLUME_NAME_RE.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path")
    return name


def _parse_mode(raw: str, mode: str) -> tuple[bool, bool]:
    """(read-only, nocopy) from a -v mode like "ro,z"; Docker's `invalid mode`."""
    items = mode.split(",")
    rw = [m for m in items if m in _RW_MODES]
    if len(rw) > 1 or any(m not in (*_RW_MODES, *_LABEL_MODES, *_PROPAGATION, "nocopy")
                          for m in items):
        raise InvalidArgument(f"invalid mode: {mode}")
    return rw == ["ro"], "nocopy" in items


def parse_volume(raw: str) -> Mount:
    """One `-v` spec: `/ctr`, `NAME:/ctr[:mode]` or `/host:/ctr[:mode]`."""
    if not raw:
        raise InvalidArgument("invalid empty volume spec")
    parts = raw.split(":")
    if len(parts) > 3:
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    if len(parts) == 2 and (parts[1] in _RW_MODES or parts[1].split(",")[0] in
                            (*_RW_MODES, *_LABEL_MODES, "nocopy")):
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    mode = parts[2] if len(parts) == 3 else ""
    ro, nocopy = _parse_mode(raw, mode) if mode else (False, False)
    if len(parts) == 1:
        return _volume("", check_target("volume", parts[0]), ro, mode, nocopy, "binds")
    src, dst = parts[0], parts[1]
    if not src:
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    if src.startswith("/"):
        return {"Type": "bind", "Source": _clean(src), "Destination": check_target("bind", dst),
                "Mode": mode, "RW": not ro, "Propagation": "rprivate", "_Origin": "binds"}
    check_volume_name(src)
    return _volume(src, check_target("volume", dst), ro, mode or "z", nocopy, "binds")


def _clean(path: str) -> str:
    import posixpath
    return posixpath.normpath("/" + path.lstrip("/"))


def _volume(name: str, dst: str, ro: bool, mode: str, nocopy: bool, origin: str) -> Mount:
    out: Mount = {"Type": "volume", "Name": name, "Source": "", "Destination": dst,
                  "Driver": "local", "Mode": mode, "RW": not ro, "Propagation": "",
                  "_Origin": origin}
    if not name:
        out["_Anonymous"] = True
    if nocopy:
        out["_NoCopy"] = True
    return out


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
               "bind-propagation", "volume-nocopy", "volume-driver", "tmpfs-size",
               "tmpfs-mode", "consistency"}
_BOOL_KEYS = {"readonly", "ro", "volume-nocopy"}


def _mount_fields(raw: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in raw.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq and key not in _BOOL_KEYS:
            raise InvalidArgument(f"invalid field '{item}' must be a key=value pair")
        if key not in _MOUNT_KEYS:
            raise InvalidArgument(f"unexpected key '{key}' in '{item}'")
        if key in _BOOL_KEYS:
            value = value or "true"
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid value for {key}: {value}")
        fields[{"src": "source", "destination": "target", "dst": "target",
                "ro": "readonly"}.get(key, key)] = value
    return fields


def parse_mount(raw: str) -> Mount:
    """One `--mount` spec (Docker's csv syntax, its messages)."""
    f = _mount_fields(raw)
    kind = f.get("type", "volume")
    if "target" not in f:
        raise InvalidArgument("target is required")
    ro = f.get("readonly", "false").lower() in ("true", "1")
    src = f.get("source", "")
    if kind == "bind":
        if not src:
            raise _mount_error(kind, "field Source must not be empty")
        if not src.startswith("/"):
            raise _mount_error(kind, f"invalid mount path: '{src}' mount path must be absolute")
        prop = f.get("bind-propagation", "rprivate")
        if prop not in _PROPAGATION:
            raise _mount_error(kind, f"unsupported propagation mode: {prop}")
        return {"Type": "bind", "Source": _clean(src), "Destination": check_target(kind, f["target"]),
                "Mode": "", "RW": not ro, "Propagation": prop, "_Origin": "mounts"}
    if kind == "volume":
        if src:
            check_volume_name(src)
        if f.get("volume-driver", "local") != "local":
            raise InvalidArgument(f"plugin \"{f['volume-driver']}\" not found")
        nocopy = f.get("volume-nocopy", "false").lower() in ("true", "1")
        return _volume(src, check_target(kind, f["target"]), ro, "", nocopy, "mounts")
    if kind == "tmpfs":
        if src:
            raise _mount_error(kind, "field Source must not be specified")
        data = tmpfs_data(f.get("tmpfs-size", ""), f.get("tmpfs-mode", ""))
        return _tmpfs(check_target(kind, f["target"]), data, ro, (), "mounts")
    raise _mount_error(kind, "mount type unknown")


def tmpfs_data(size: str, mode: str) -> str:
    """Mount data for --mount's tmpfs-size (bytes, or with a unit) and tmpfs-mode (octal)."""
    out = []
    if size:
        out.append("size=" + str(parse_bytes(size, "tmpfs-size")))
    if mode:
        try:
            out.append(f"mode={int(mode, 8):o}")
        except ValueError:
            raise InvalidArgument(f"invalid value for tmpfs-mode: {mode}") from None
    return ",".join(out)


def _tmpfs(dst: str, data: str, ro: bool, flags: tuple[str, ...], origin: str) -> Mount:
    return {"Type": "tmpfs", "Source": "", "Destination": dst, "Mode": "", "RW": not ro,
            "Propagation": "", "_Data": data, "_Flags": list(flags), "_Origin": origin}


def parse_tmpfs(raw: str) -> Mount:
    """`--tmpfs /path[:opts]`; opts are mount options (size=64m,mode=1777,noexec...)."""
    dst, _, opts = raw.partition(":")
    dst = check_target("tmpfs", dst)
    data, flags, ro = [], [], False
    for opt in [o for o in opts.split(",") if o]:
        key, eq, value = opt.partition("=")
        if opt in _TMPFS_FLAGS:
            ro = ro or opt == "ro"
            flags.append(opt)
        elif key == "size" and eq:
            data.append("size=" + str(parse_bytes(value, "size")))
        elif key in ("mode", "uid", "gid", "nr_inodes") and eq and value.isalnum():
            data.append(opt)
        else:
            raise InvalidArgument(f"invalid tmpfs option: {opt!r} in {raw!r}")
    return _tmpfs(dst, ",".join(data), ro, tuple(flags), "tmpfs")


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str, what: str) -> int:
    """Docker's RAMInBytes: a number with an optional unit b/k/m/g (binary), "kb" too."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", text.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'" if what == "size"
                              else f"invalid value for {what}: {text}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_volumes_from(raw: str) -> tuple[str, str]:
    """`--volumes-from CTR[:ro|rw]` -> (container, mode)."""
    ref, _, mode = raw.partition(":")
    if not ref or mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"invalid mode: {mode}" if ref else
                              f"invalid volumes-from specification: '{raw}'")
    return ref, mode


def inherit(mounts: list[Mount], mode: str) -> list[Mount]:
    """The mounts a `--volumes-from` source lends: volumes and binds, mode overridden."""
    out = []
    for m in mounts:
        if m["Type"] == "tmpfs":
            continue
        copy = {k: v for k, v in m.items() if k not in ("_Anonymous", "_Origin")}
        copy["_Origin"] = "volumes-from"
        if mode:
            copy["RW"] = mode == "rw"
        out.append(copy)
    return out


def combine(groups: list[list[Mount]]) -> list[Mount]:
    """All mounts, Docker's `Duplicate mount point` when two share a destination.

    Later groups do not silently override: a --volumes-from mount is dropped when an
    explicit one has the same destination (Docker's precedence), two explicit ones
    clash."""
    out: list[Mount] = []
    seen: dict[str, Mount] = {}
    for group in groups:
        for m in group:
            dst = m["Destination"]
            if dst in seen:
                if m["_Origin"] in ("volumes-from", "image"):
                    continue
                if seen[dst]["_Origin"] not in ("volumes-from", "image"):
                    raise InvalidArgument(f"Duplicate mount point: {dst}")
                out.remove(seen[dst])
            seen[dst] = m
            out.append(m)
    return out


def image_volumes(image_cfg: dict[str, Any]) -> list[Mount]:
    """The image's VOLUME paths, as anonymous volumes (Docker makes one per path)."""
    out = []
    for path in sorted(image_cfg.get("Volumes") or {}):
        try:
            out.append(_volume("", check_target("volume", path), False, "", False, "image"))
        except InvalidArgument:
            continue
    return out


def mount_order(mounts: list[Mount]) -> list[Mount]:
    """Parents before children (Docker sorts by the number of path components)."""
    return sorted(mounts, key=lambda m: m["Destination"].count("/"))


def public(mounts: list[Mount]) -> list[Mount]:
    """`Mounts` as inspect shows it (tmpfs from --tmpfs is in HostConfig.Tmpfs only)."""
    return [{k: v for k, v in m.items() if not k.startswith("_")}
            for m in mounts if m["_Origin"] not in ("tmpfs", "init")]
