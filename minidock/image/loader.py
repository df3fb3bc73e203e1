"""Load images: stage every layer in a temp dir, then commit layers and records at once.

    archive --read_sources--> ImageSource(config bytes, tags, layer openers)
            --stage-->        layers unpacked under <root>/images/tmp/load-XXXX/<hex>,
                              diff ids verified, image doc built (nothing visible yet)
            --commit-->       one store transaction: rename new layer dirs into
                              <root>/images/layers/, put layer + image records, move tags

A failure anywhere before the commit leaves no trace but the temp dir, which is
always removed; a failure inside the commit rolls the transaction back and removes
the layer dirs it had renamed. A layer whose record and dir exist is not unpacked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from minidock.hints import TYPE_CHECKING, Any, Callable, IO, Iterator

from minidock.errors import Internal, InvalidArgument
from minidock.image import config as imgconfig
from minidock.image import reference, safetar
from minidock.image.archive import ImageSource
from minidock.image.humanize import rfc3339
from minidock.image.store import KIND, LAYER_KIND, layer_dir, set_tag, tmp_dir

if TYPE_CHECKING:
    from minidock.context import Context


@dataclass
class Staged:
    """One image ready to commit: its record and the layer dirs it adds."""

    image_id: str
    doc: dict[str, Any]
    tags: list[str]
    new_layers: dict[str, int] = field(default_factory=dict)  # hex -> size


def _staging(ctx: Context) -> str:
    os.makedirs(tmp_dir(ctx), mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix="load-", dir=tmp_dir(ctx))


@contextmanager
def spooled(ctx: Context, path: str) -> Iterator[str]:
    """`path` itself, or for `-` a temp copy of stdin (archives need seeking)."""
    if path != "-":
        yield path
        return
    staging = _staging(ctx)
    try:
        tmp = os.path.join(staging, "stdin")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield tmp
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_file(ctx: Context, path: str) -> list[str]:
    """`load -i FILE`: every image of a docker-save or OCI archive; lines to print."""
    import tarfile

    from minidock.image.archive import read_sources
    try:
        tar = tarfile.open(path, "r:*")
    except FileNotFoundError as err:
        raise InvalidArgument(f"open {path}: no such file or directory") from err
    except (tarfile.TarError, EOFError, OSError) as err:
        raise InvalidArgument(f"invalid archive {path}: not a tar archive") from err
    with tar:
        try:
            sources = read_sources(tar)
        except (tarfile.TarError, EOFError) as err:
            raise InvalidArgument(f"invalid archive {path}: {err}") from err
        return load_sources(ctx, sources)


def load_sources(ctx: Context, sources: list[ImageSource]) -> list[str]:
    staging = _staging(ctx)
    try:
        staged = [stage(ctx, src, staging) for src in sources]
        return commit(ctx, staged, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parse_config(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:   # RecursionError: nested too deep
        raise InvalidArgument("invalid archive: image config is not valid JSON") from err
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid archive: image config is not an object")
    return doc


def stage(ctx: Context, src: ImageSource, staging: str) -> Staged:
    """Validate one image and unpack its missing layers into `staging`."""
    cfg = _parse_config(src.config)
    diffs = imgconfig.diff_ids(cfg)
    if len(diffs) != len(src.layers):
        raise InvalidArgument(f"invalid archive: config lists {len(diffs)} layers, "
                              f"manifest {len(src.layers)}")
    tags = [str(reference.parse(t)) for t in src.repo_tags]
    normalised = imgconfig.normalize_config(cfg.get("config"))
    image_id = hashlib.sha256(src.config).hexdigest()
    sizes: dict[str, int] = {}
    new: dict[str, int] = {}
    for i, (diff, opener) in enumerate(zip(diffs, src.layers)):
        hexid = diff[7:]
        if hexid in sizes:
            continue
        rec = ctx.store.get(LAYER_KIND, hexid)
        if rec is not None and os.path.isdir(layer_dir(ctx, hexid)):
            sizes[hexid] = int(rec.get("Size", 0))
            continue
        stats = unpack_into(staging, hexid, opener, f"layer {i}")
        if stats.diff_id != diff:
            raise InvalidArgument(f"invalid diffID for layer {i}: calculated "
                                  f"{stats.diff_id}, expected {diff}")
        sizes[hexid] = new[hexid] = stats.size
    doc = image_doc(image_id, cfg, normalised, src.config, diffs, sizes)
    return Staged(image_id, doc, tags, new)


PROGRESS: Any = None   # a terminal stream to draw progress bars on (cli: stdout if a tty)


def unpack_into(staging: str, name: str, opener: Callable[[], IO[bytes]],
                label: str) -> safetar.LayerStats:
    dest = os.path.join(staging, name)
    os.mkdir(dest)
    os.chmod(dest, 0o755)
    raw = opener()
    if PROGRESS is not None:
        from minidock.image.progress import Progress
        short = name[:12] if name != "rootfs" else "rootfs"
        raw = Progress(raw, short, PROGRESS, "Loading layer" if name != "rootfs" else "Importing")  # type: ignore[assignment]
    try:
        return safetar.unpack(raw, dest, label)
    finally:
        raw.close()


def image_doc(image_id: str, cfg: dict[str, Any], normalised: dict[str, Any], raw: bytes,
              diffs: list[str], sizes: dict[str, int]) -> dict[str, Any]:
    layers = [d[7:] for d in diffs]
    return {
        "Id": "sha256:" + image_id,
        "RepoTags": [],
        "Comment": _first_comment(cfg),
        "Created": cfg.get("created") or "",
        "DockerVersion": cfg.get("docker_version") or "",
        "Author": cfg.get("author") or "",
        "Config": normalised,
        "Architecture": cfg.get("architecture") or "",
        "Os": cfg.get("os") or "linux",
        "Size": sum(sizes[h] for h in dict.fromkeys(layers)),
        "RootFS": {"Type": "layers", "Layers": diffs},
        "Layers": layers,
        "_raw": raw.decode("utf-8", "surrogateescape"),
    }


def _first_comment(cfg: dict[str, Any]) -> str:
    history = cfg.get("history")
    if isinstance(history, list) and history and isinstance(history[0], dict):
        return str(history[0].get("comment") or "")
    return ""


def commit(ctx: Context, staged: list[Staged], staging: str) -> list[str]:
    """Make staged images visible in one transaction; undo renames on failure."""
    lines: list[str] = []
    moved: list[str] = []
    st = ctx.store
    os.makedirs(ctx.layers_dir(), exist_ok=True)
    try:
        with st.transaction():
            for item in staged:
                _commit_layers(ctx, st, item, staging, moved)
            for item in staged:
                lines += _commit_image(ctx, st, item)
    except BaseException:
        for path in moved:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return lines


def _commit_layers(ctx: Context, st: Any, item: Staged, staging: str, moved: list[str]) -> None:
    for hexid, size in item.new_layers.items():
        final = layer_dir(ctx, hexid)
        if st.get(LAYER_KIND, hexid) is not None and os.path.isdir(final):
            continue  # a concurrent load committed it first
        if os.path.lexists(final):  # an orphan from a crash: we hold the lock
            shutil.rmtree(final, ignore_errors=True)
        os.rename(os.path.join(staging, hexid), final)
        moved.append(final)
        st.put(LAYER_KIND, hexid, {"DiffID": "sha256:" + hexid, "Size": size})


def _commit_image(ctx: Context, st: Any, item: Staged) -> list[str]:
    for hexid in item.doc["Layers"]:
        if st.get(LAYER_KIND, hexid) is None or not os.path.isdir(layer_dir(ctx, hexid)):
            raise Internal(f"layer sha256:{hexid} was removed while loading; retry the load")
    existing = st.get(KIND, item.image_id)
    doc = dict(item.doc)
    doc["RepoTags"] = list(existing["RepoTags"]) if existing else []
    if item.tags:
        doc["LastTagTime"] = rfc3339(datetime.now(timezone.utc))
    st.put(KIND, item.image_id, doc)
    lines = []
    for tag in item.tags:
        old = set_tag(st, tag, item.image_id)
        if old is not None:
            lines.append(f"The image {tag} already exists, renaming the old one with ID "
                         f"sha256:{old} to empty string")
        lines.append(f"Loaded image: {tag}")
    return lines or [f"Loaded image ID: sha256:{item.image_id}"]


def import_tarball(ctx: Context, opener: Callable[[], IO[bytes]], source: str,
                   tag: str | None, changes: list[str], message: str = "") -> str:
    """`import`: one rootfs tar (maybe compressed) as a one-layer image; its id."""
    tags = [str(reference.parse(tag))] if tag else []
    cfg = imgconfig.normalize_config(imgconfig.apply_changes({}, changes))
    staging = _staging(ctx)
    try:
        stats = unpack_into(staging, "rootfs", opener, source)
        hexid = stats.diff_id[7:]
        os.rename(os.path.join(staging, "rootfs"), os.path.join(staging, hexid))
        created = rfc3339(datetime.now(timezone.utc))
        doc = imgconfig.image_json(cfg, [stats.diff_id], created,
                                   [{"created": created, "comment": message or f"Imported from {source}"}])
        raw = imgconfig.encode(doc)
        image_id = hashlib.sha256(raw).hexdigest()
        item = Staged(image_id, image_doc(image_id, doc, cfg, raw, [stats.diff_id],
                                          {hexid: stats.size}), tags, {hexid: stats.size})
        commit(ctx, [item], staging)
        return image_id
    finally:
        shutil.rmtree(staging, ignore_errors=True)
