"""The container document's mounts, resource limits, restart policy and --init.

`apply` is pure (flags + image config in, document fields out) and runs inside
build_doc, so a bad value is refused before anything exists; `attach_volumes_from`
and the volume creation need the store and run in `create` (start.py), still before
the record is written.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import InvalidArgument

if TYPE_CHECKING:
    from minidock.context import Context


def apply(doc: dict[str, Any], opts: Any, image_cfg: dict[str, Any]) -> None:
    """Fill HostConfig (Binds, Mounts, Tmpfs, VolumesFrom, RestartPolicy, Init, the
    resource fields), `_Mounts` and Docker's `Mounts` from the run options."""
    from minidock.runtime import limits, mounts, restart
    hc = doc["HostConfig"]
    policy = restart.parse_policy(opts.restart)
    if opts.rm and policy["Name"] != "no":
        raise InvalidArgument("Conflicting options: --restart and --rm")
    hc["RestartPolicy"] = policy
    binds = [mounts.parse_volume(v) for v in opts.volumes]
    explicit = [mounts.parse_mount(v) for v in opts.mounts]
    tmpfs = [mounts.parse_tmpfs(v) for v in opts.tmpfs]
    for ref in opts.volumes_from:
        mounts.parse_volumes_from(ref)
    groups = [binds, explicit, tmpfs, mounts.image_volumes(image_cfg)]
    if opts.init:
        from minidock.runtime.usermounts import find_init, init_mount
        binary = find_init()
        if binary is not None and not os.access(binary, os.X_OK):
            raise InvalidArgument(f"--init: {binary} is not an executable file")
        if binary is None:
            doc["_InitReaper"] = True          # the built-in one (reaper.py)
        else:
            groups.append([init_mount(binary)])
        hc["Init"] = True
    doc["_Mounts"] = mounts.combine(groups)
    doc["Mounts"] = mounts.public(doc["_Mounts"])
    hc["Binds"] = list(opts.volumes) or None
    if explicit:
        hc["Mounts"] = [_api_mount(m) for m in explicit]
    if tmpfs:                                  # omitted when empty, as Docker
        hc["Tmpfs"] = {m["Destination"]: m["_Data"] for m in tmpfs}
    hc["VolumesFrom"] = list(opts.volumes_from) or None
    hc.update(limits.parse(limits.Limits(**opts.limits)))
    if image_cfg.get("Volumes"):
        doc["Config"]["Volumes"] = dict(image_cfg["Volumes"])


def _api_mount(m: dict[str, Any]) -> dict[str, Any]:
    """HostConfig.Mounts: Docker's mount.Mount shape of a --mount spec."""
    out: dict[str, Any] = {"Type": m["Type"], "Target": m["Destination"]}
    if m.get("Name") or m["Type"] == "bind":
        out["Source"] = m.get("Name") or m["Source"]
    if not m["RW"]:
        out["ReadOnly"] = True
    return out


def attach_volumes_from(ctx: Context, doc: dict[str, Any], refs: tuple[str, ...]) -> None:
    """Add the mounts of each `--volumes-from` container (No such container: x)."""
    if not refs:
        return
    from minidock.runtime import container as records
    from minidock.runtime import mounts
    borrowed = []
    for raw in refs:
        ref, mode = mounts.parse_volumes_from(raw)
        other = records.load(ctx, ref)
        borrowed.extend(mounts.inherit(other.get("_Mounts") or [], mode))
    doc["_Mounts"] = mounts.combine([doc["_Mounts"], borrowed])
    doc["Mounts"] = mounts.public(doc["_Mounts"])


def fill_sources(doc: dict[str, Any]) -> None:
    """Docker's Mounts after the volumes got their directories."""
    from minidock.runtime import mounts
    doc["Mounts"] = mounts.public(doc["_Mounts"])
