"""Volumes of the `local` driver: records in the store, data under the root.

Layout as Docker's: `<root>/volumes/<name>/_data` is the volume's content (its
Mountpoint); the record (store kind "volume", named by the volume name) is the
document `volume inspect` prints. A named volume is created on first use (or by
`volume create`); an anonymous one (`-v /path`, an image VOLUME) gets a 64-hex name
and goes with its container on `rm -v` and `--rm`. A volume is in use while any
container record mentions it: it cannot be removed then (Docker's message).

Seeding: at the first mount of an empty volume, the image's content at the target
is copied in (`seed`, run in the container's init before the volume is mounted,
with the target resolved inside the rootfs); Docker copies only into an empty volume.
"""

from __future__ import annotations

import os
import stat
import time
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Conflict, InvalidArgument, NotFound

if TYPE_CHECKING:
    from minidock.context import Context

KIND = "volume"


def volumes_dir(ctx: Context) -> str:
    return os.path.join(ctx.root, "volumes")


def mountpoint(ctx: Context, name: str) -> str:
    return os.path.join(volumes_dir(ctx), name, "_data")


def _doc(ctx: Context, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Driver": "local", "Labels": labels or None, "Mountpoint": mountpoint(ctx, name),
            "Name": name, "Options": None, "Scope": "local"}


def get(ctx: Context, name: str) -> dict[str, Any] | None:
    hit = ctx.store.get_by_name(KIND, name)
    return hit[1] if hit else None


def inspect(ctx: Context, name: str) -> dict[str, Any]:
    doc = get(ctx, name)
    if doc is None:
        raise NotFound(f"No such volume: {name}")
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def ensure(ctx: Context, name: str, labels: dict[str, str] | None = None,
           anonymous: bool = False) -> bool:
    """Create volume `name` unless it exists (idempotent); True if it was made here.
    Inverse: remove."""
    from minidock.runtime.mounts import check_volume_name
    check_volume_name(name)
    with ctx.store.transaction():
        if get(ctx, name) is not None:
            return False
        os.makedirs(mountpoint(ctx, name), mode=0o755, exist_ok=True)
        doc = _doc(ctx, name, labels or {})
        if anonymous:
            doc["_Anonymous"] = True
        ctx.store.put(KIND, name, doc, name)
    return True


def users(ctx: Context, name: str) -> list[str]:
    """Ids of the containers whose mounts name the volume."""
    from minidock.runtime import container as records
    return [c["Id"] for c in records.all_containers(ctx)
            if any(m.get("Name") == name for m in c.get("_Mounts") or [])]


def remove(ctx: Context, name: str, force: bool = False) -> None:
    """Remove a volume that no container uses; `force` only hides "no such volume"."""
    with ctx.store.transaction():
        if get(ctx, name) is None:
            if force:
                return
            raise NotFound(f"No such volume: {name}")
        used = users(ctx, name)
        if used:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(used)}]")
        ctx.store.delete(KIND, name)
    _rmtree(os.path.join(volumes_dir(ctx), name))


def remove_quietly(ctx: Context, name: str) -> None:
    """Undo of ensure, and rm -v: best effort."""
    try:
        remove(ctx, name, force=True)
    except Conflict:
        pass


def _rmtree(path: str) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def listing(ctx: Context) -> list[dict[str, Any]]:
    """Every volume as inspect shows it, by name."""
    docs = ({k: v for k, v in doc.items() if not k.startswith("_")}
            for _, doc in ctx.store.list(KIND))
    return sorted(docs, key=lambda d: d["Name"])


def disk_usage(path: str) -> int:
    """Bytes the files under `path` use (for prune's reclaimed space)."""
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                pass
    return total


def prune(ctx: Context) -> list[tuple[str, int]]:
    """Remove every volume no container uses; returns (name, bytes) of each."""
    from minidock.runtime import container as records
    used = {m.get("Name") for c in records.all_containers(ctx) for m in c.get("_Mounts") or []}
    gone = []
    for doc in listing(ctx):
        if doc["Name"] not in used:
            size = disk_usage(doc["Mountpoint"])
            remove_quietly(ctx, doc["Name"])
            gone.append((doc["Name"], size))
    return gone


def prepare(ctx: Context, mounts: list[dict[str, Any]]) -> list[str]:
    """At create: give each volume mount a name and a Source, create the volumes that
    do not exist yet; returns the names created here (the caller's undo removes them).
    A bind from --mount must exist (Docker's message); -v creates it at start."""
    from minidock import ids
    made: list[str] = []
    try:
        for m in mounts:
            if m["Type"] == "bind" and m["_Origin"] == "mounts" and not os.path.exists(m["Source"]):
                raise InvalidArgument('invalid mount config for type "bind": bind source '
                                      f"path does not exist: {m['Source']}")
            if m["Type"] != "volume":
                continue
            if not m["Name"]:
                m["Name"] = ids.new_id()
            if ensure(ctx, m["Name"], anonymous=bool(m.get("_Anonymous"))):
                made.append(m["Name"])
            m["Source"] = mountpoint(ctx, m["Name"])
    except BaseException:
        for name in made:
            remove_quietly(ctx, name)
        raise
    return made


def anonymous_of(ctr: dict[str, Any]) -> list[str]:
    return [m["Name"] for m in ctr.get("_Mounts") or [] if m.get("_Anonymous")]


# -- in the container's init, before pivot_root ------------------------------------------
def seed(src_fd: int, dest: str) -> None:
    """Copy the image's tree at O_PATH dir `src_fd` into empty volume dir `dest`,
    keeping owners, modes and symlinks (never followed)."""
    if os.listdir(dest):
        return
    src = f"/proc/self/fd/{src_fd}"
    st = os.stat(src)
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, stat.S_IMODE(st.st_mode))
    _copy_tree(src, dest)


def _copy_tree(src: str, dest: str) -> None:
    import shutil
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dest, entry.name)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(d, stat.S_IMODE(st.st_mode))
            _copy_tree(s, d)
            os.chmod(d, stat.S_IMODE(st.st_mode))
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(s, d, follow_symlinks=False)
            os.chmod(d, stat.S_IMODE(st.st_mode))
        else:
            continue                   # devices, fifos, sockets: not copied
        os.lchown(d, st.st_uid, st.st_gid)
