"""Image records: resolve a reference to an image, tags, listing and removal.

Records live in the store (see minidock/store.py):

* object kind ``image``, id = 64-hex config digest. doc: Id, RepoTags, Created,
  Config (normalised), Architecture, Os, Author, Comment, DockerVersion, RootFS
  (diff ids), Layers (layer dir names, lowest first), Size, and ``_raw`` (the exact
  config JSON, whose sha256 is the ID).
* object kind ``image-layer``, id = diff id hex: one per unpacked layer dir
  ``<root>/images/layers/<hex>/``; doc {DiffID, Size}. A layer no image uses is
  removed with the last image that used it.
* claims in space ``image-tag``: key ``busybox:latest`` (familiar form), owner =
  image id. The primary key makes tag lookup one indexed read and a tag can only
  ever name one image; moving it is one transaction.

This module is on the `run` path (`resolve`): stdlib only, no tarfile.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING, Any, NamedTuple

from minidock.errors import Conflict, NotFound
from minidock.image import reference

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.store import Store

KIND = "image"
LAYER_KIND = "image-layer"
TAGS = "image-tag"


class Image(NamedTuple):
    """What the runtime needs to create a container from an image."""

    id: str
    repo_tags: tuple[str, ...]
    config: dict[str, Any]
    layer_dirs: tuple[str, ...] = ()  # absolute, lowest layer FIRST


def images_dir(ctx: "Context") -> str:
    return os.path.join(ctx.root, "images")


def tmp_dir(ctx: "Context") -> str:
    """Staging area on the same filesystem as the layers (renames are atomic)."""
    return os.path.join(ctx.root, "images", "tmp")


def layer_dir(ctx: "Context", hexid: str) -> str:
    return os.path.join(ctx.layers_dir(), hexid)


# -- lookups ------------------------------------------------------------------------
def find(st: "Store", ref: str) -> tuple[str, dict[str, Any], reference.Ref | None] | None:
    """(id, doc, tag) for a full id, a tag, or a unique id prefix; tag is None for ids.

    Docker's order: `sha256:<64 hex>`, then the tag, then an id prefix.
    """
    full = reference.id_of(ref)
    if full is not None:
        doc = st.get(KIND, full)
        return (full, doc, None) if doc is not None else None
    name, tag = reference.split_tag(ref)
    owner = st.claim_owner(TAGS, f"{name}:{tag or reference.DEFAULT_TAG}")
    if owner is not None:  # the common case, exact "name[:tag]": no grammar to run
        doc = st.get(KIND, owner)
        if doc is not None:
            return owner, doc, reference.Ref(name, tag or reference.DEFAULT_TAG)
    parsed = reference.try_parse(ref)
    if parsed is not None:
        owner = st.claim_owner(TAGS, str(parsed))
        if owner is not None:
            doc = st.get(KIND, owner)
            if doc is not None:
                return owner, doc, parsed
    prefix = reference.id_prefix(ref)
    if prefix is not None:
        ids = st.find_by_prefix(KIND, prefix)
        if len(ids) > 1:
            raise Conflict(f"multiple IDs found with provided prefix: {ref}")
        if ids:
            return ids[0], st.get(KIND, ids[0]), None  # type: ignore[return-value]
    return None


def lookup(ctx: "Context", ref: str) -> tuple[str, dict[str, Any]]:
    """(id, doc) or NotFound with Docker's `No such image: x:latest`."""
    hit = find(ctx.store, ref)
    if hit is None:
        raise NotFound(f"No such image: {reference.display(ref)}")
    return hit[0], hit[1]


def resolve(ctx: "Context", ref: str) -> Image:
    """The image `ref` names (name, name:tag, id prefix, sha256:<hex>).

    minidock never pulls: an unknown image is NotFound with the line Docker prints
    before it would pull.
    """
    hit = find(ctx.store, ref)
    if hit is None:
        raise NotFound(f"Unable to find image '{reference.display(ref)}' locally")
    return to_image(ctx, hit[0], hit[1])


def to_image(ctx: "Context", image_id: str, doc: dict[str, Any]) -> Image:
    base = ctx.layers_dir()
    return Image(image_id, tuple(doc.get("RepoTags") or ()), doc["Config"],
                 tuple(os.path.join(base, h) for h in doc.get("Layers") or ()))


def list_images(ctx: "Context") -> list[tuple[str, dict[str, Any]]]:
    """Every image, newest first (Docker's `images` order)."""
    rows = ctx.store.list(KIND)
    rows.sort(key=lambda r: (r[1].get("Created") or "", r[0]), reverse=True)
    return rows


def inspect(ctx: "Context", ref: str) -> dict[str, Any]:
    """The `docker image inspect` document of one image."""
    image_id, doc = lookup(ctx, ref)
    dirs = [os.path.join(ctx.layers_dir(), h) for h in doc.get("Layers") or ()]
    out = {k: v for k, v in doc.items() if not k.startswith("_") and k != "Layers"}
    out.update({
        "RepoDigests": [], "Parent": "", "VirtualSize": doc.get("Size", 0),
        "GraphDriver": {"Name": "overlay2",
                        "Data": {"LowerDir": ":".join(reversed(dirs))}},
        "Metadata": {"LastTagTime": doc.get("LastTagTime", "0001-01-01T00:00:00Z")},
    })
    return out


# -- tags ---------------------------------------------------------------------------
def set_tag(st: "Store", tag: str, image_id: str) -> str | None:
    """Point `tag` at `image_id` (in a transaction); returns the id it moved from."""
    old = st.claim_owner(TAGS, tag)
    if old == image_id:
        return None
    if old is not None:
        untag(st, tag)
    st.claim(TAGS, tag, image_id)
    doc = st.get(KIND, image_id)
    if doc is not None and tag not in doc["RepoTags"]:
        doc["RepoTags"].append(tag)
        st.put(KIND, image_id, doc)
    return old


def untag(st: "Store", tag: str) -> None:
    """Remove `tag` from whichever image holds it (idempotent)."""
    owner = st.claim_owner(TAGS, tag)
    if owner is None:
        return
    st.release(TAGS, tag)
    doc = st.get(KIND, owner)
    if doc is not None and tag in doc["RepoTags"]:
        doc["RepoTags"].remove(tag)
        st.put(KIND, owner, doc)


def tag(ctx: "Context", source: str, target: str) -> None:
    """`image tag SOURCE TARGET`."""
    new = str(reference.parse(target))
    with ctx.store.transaction() as st:
        image_id, _ = lookup(ctx, source)
        set_tag(st, new, image_id)


# -- removal ------------------------------------------------------------------------
def users(st: "Store", image_id: str) -> list[tuple[str, bool]]:
    """(container id, running) of every container created from `image_id`."""
    out = []
    for cid, doc in st.list("container"):
        if doc.get("Image") in (image_id, "sha256:" + image_id):
            out.append((cid, bool((doc.get("State") or {}).get("Running"))))
    out.sort(key=lambda u: not u[1])  # running first
    return out


def remove(ctx: "Context", ref: str, force: bool = False) -> list[str]:
    """`rmi`: untag and delete as Docker does; the lines to print.

    Unlike Docker, `-f` never deletes an image a container still uses (stopped
    or running): it only untags it, so the container keeps its layers.
    """
    trash: list[str] = []
    with ctx.store.transaction() as st:
        hit = find(st, ref)
        if hit is None:
            raise NotFound(f"No such image: {reference.display(ref)}")
        image_id, doc, by_tag = hit
        used = users(st, image_id)
        lines = _untag_for_remove(st, ref, image_id, doc, by_tag, used, force)
        if (by_tag is not None and doc["RepoTags"]) or used:
            return lines  # other tags remain, or a container keeps it alive
        st.delete(KIND, image_id)
        lines.append(f"Deleted: sha256:{image_id}")
        trash = gc_layers(ctx, st)
    _rmtree_all(trash)
    return lines


def _untag_for_remove(st: "Store", ref: str, image_id: str, doc: dict[str, Any],
                      by_tag: reference.Ref | None, used: list[tuple[str, bool]],
                      force: bool) -> list[str]:
    """Apply Docker's conflict rules, then untag; returns the Untagged lines."""
    short = image_id[:12]
    tags = list(doc["RepoTags"])
    if by_tag is not None:
        if not force and len(tags) == 1 and used:
            raise Conflict(f'conflict: unable to remove repository reference "{ref}" '
                           f"(must force) - container {used[0][0][:12]} is using its "
                           f"referenced image {short}")
        untag(st, str(by_tag))
        doc["RepoTags"].remove(str(by_tag))
        return [f"Untagged: {by_tag}"]
    repos = {t.rpartition(":")[0] for t in tags}
    if len(repos) > 1 and not force:
        raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                       "referenced in multiple repositories")
    running = [cid for cid, run in used if run]
    if running:
        raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image is "
                       f"being used by running container {running[0][:12]}")
    if used and not force:
        raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                       f"being used by stopped container {used[0][0][:12]}")
    for tag_ in tags:
        untag(st, tag_)
    doc["RepoTags"] = []
    return [f"Untagged: {t}" for t in tags]


def gc_layers(ctx: "Context", st: "Store") -> list[str]:
    """Drop layer records no image uses; their dirs are renamed into tmp for removal.

    Runs inside the caller's transaction, so a concurrent load that reuses a layer
    either commits before (and keeps it) or sees it gone and unpacks it again.
    """
    used = {h for _, doc in st.list(KIND) for h in doc.get("Layers") or ()}
    trash = []
    for hexid, _ in st.list(LAYER_KIND):
        if hexid in used:
            continue
        st.delete(LAYER_KIND, hexid)
        src = layer_dir(ctx, hexid)
        dst = os.path.join(tmp_dir(ctx), f"gc-{hexid[:12]}-{os.urandom(4).hex()}")
        try:
            os.makedirs(tmp_dir(ctx), exist_ok=True)
            os.rename(src, dst)
            trash.append(dst)
        except FileNotFoundError:
            pass
    return trash


def _rmtree_all(paths: list[str]) -> None:
    import shutil
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
