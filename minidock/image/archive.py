"""Read image archives: `docker save` (manifest.json) and OCI image layouts (index.json).

Both are tars whose members are never extracted to disk: manifest paths are
normalised and looked up among the archive's own members (symlinks between members
are followed inside the archive only, as newer `docker save` links legacy paths to
blobs). A manifest naming a missing or escaping (`../`, absolute) path is refused.
The result is a list of `ImageSource`: config bytes, tags, and one opener per
layer (lowest first), which the loader consumes.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from minidock.hints import IO, Any, Callable, NamedTuple

from minidock.errors import InvalidArgument
from minidock.image.config import host_arch
from minidock.image.safetar import split_path

MAX_JSON = 16 << 20
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")


class ImageSource(NamedTuple):
    """One image to load: exact config bytes (their sha256 is the ID), tags, layers."""

    config: bytes
    repo_tags: list[str]
    layers: list[Callable[[], IO[bytes]]]


class Archive:
    """The members of an outer image archive, looked up by normalised path."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar.getmembers():
            name = posixpath.normpath("/" + member.name).lstrip("/")
            self.members[name] = member

    def member(self, ref: Any, what: str) -> tarfile.TarInfo:
        """The regular-file member `ref` names, following in-archive symlinks."""
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument(f"invalid archive: bad {what} path {ref!r}")
        try:
            path = "/".join(split_path(ref, what))
        except InvalidArgument as err:
            raise InvalidArgument(f"invalid archive: {what} path {ref!r} is outside the archive") from err
        for _ in range(16):
            member = self.members.get(path)
            if member is None:
                raise InvalidArgument(f"invalid archive: {what} {ref!r} not found in the archive")
            if member.isreg():
                return member
            if not (member.issym() or member.islnk()):
                raise InvalidArgument(f"invalid archive: {what} {ref!r} is not a file")
            base = posixpath.dirname(path) if member.issym() else ""
            target = posixpath.normpath(posixpath.join("/", base, member.linkname)).lstrip("/")
            path = target
        raise InvalidArgument(f"invalid archive: {what} {ref!r}: too many links")

    def read(self, ref: Any, what: str) -> bytes:
        member = self.member(ref, what)
        if member.size > MAX_JSON:
            raise InvalidArgument(f"invalid archive: {what} {ref!r} is too large")
        fh = self.tar.extractfile(member)
        assert fh is not None
        return fh.read()

    def json(self, ref: Any, what: str) -> Any:
        try:
            return json.loads(self.read(ref, what))
        except (ValueError, RecursionError) as err:   # RecursionError: nested too deep
            raise InvalidArgument(f"invalid archive: {what} {ref!r} is not valid JSON") from err

    def opener(self, ref: Any, what: str) -> Callable[[], IO[bytes]]:
        member = self.member(ref, what)  # checked now, opened when unpacked
        return lambda: self.tar.extractfile(member)  # type: ignore[return-value]

    def has(self, name: str) -> bool:
        return name in self.members


def read_sources(tar: tarfile.TarFile) -> list[ImageSource]:
    """Every image in a docker-save or OCI archive; validates the manifest fully."""
    arc = Archive(tar)
    if arc.has("manifest.json"):
        return _docker_save(arc)
    if arc.has("index.json"):
        return _oci(arc)
    raise InvalidArgument("invalid archive: no manifest.json or index.json found")


def _docker_save(arc: Archive) -> list[ImageSource]:
    manifest = arc.json("manifest.json", "manifest")
    if not isinstance(manifest, list) or not manifest:
        raise InvalidArgument("invalid archive: manifest.json must be a non-empty list")
    out = []
    for entry in manifest:
        if not isinstance(entry, dict):
            raise InvalidArgument("invalid archive: manifest entry is not an object")
        tags = entry.get("RepoTags") or []
        layers = entry.get("Layers") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgument("invalid archive: RepoTags must be a list of strings")
        if not isinstance(layers, list):
            raise InvalidArgument("invalid archive: Layers must be a list")
        config = arc.read(entry.get("Config"), "config")
        out.append(ImageSource(config, list(tags), [arc.opener(l, "layer") for l in layers]))
    return out


def _blob_path(digest: Any) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid archive: bad digest {digest!r}")
    return "blobs/sha256/" + digest[7:]


def _verified_blob(arc: Archive, desc: Any, what: str) -> bytes:
    if not isinstance(desc, dict):
        raise InvalidArgument(f"invalid archive: bad {what} descriptor")
    data = arc.read(_blob_path(desc.get("digest")), what)
    if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
        raise InvalidArgument(f"invalid archive: {what} {desc['digest']} does not match its digest")
    return data


def _pick_platform(manifests: list[Any]) -> list[Any]:
    """From a multi-platform index keep the host's linux platform (or the first)."""
    arch = host_arch()
    for desc in manifests:
        plat = desc.get("platform") if isinstance(desc, dict) else None
        if isinstance(plat, dict) and plat.get("architecture") == arch and plat.get("os") == "linux":
            return [desc]
    return manifests[:1]


def _oci(arc: Archive, index_bytes: bytes | None = None, depth: int = 0) -> list[ImageSource]:
    if index_bytes is None:
        index = arc.json("index.json", "index")
    else:
        try:
            index = json.loads(index_bytes)
        except (ValueError, RecursionError) as err:
            raise InvalidArgument("invalid archive: nested index is not valid JSON") from err
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise InvalidArgument("invalid archive: index has no manifests list")
    if depth:
        manifests = _pick_platform(manifests)
    out: list[ImageSource] = []
    for desc in manifests:
        data = _verified_blob(arc, desc, "manifest")
        if desc.get("mediaType") in _INDEX_TYPES and depth < 4:
            nested = _oci(arc, data, depth + 1)
            tags = _oci_tags(desc)
            out.extend(src._replace(repo_tags=src.repo_tags or tags) for src in nested)
            continue
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError) as err:
            raise InvalidArgument("invalid archive: manifest is not valid JSON") from err
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            raise InvalidArgument("invalid archive: manifest has no layers list")
        config = _verified_blob(arc, manifest.get("config"), "config")
        layers = [arc.opener(_blob_path(l.get("digest") if isinstance(l, dict) else None), "layer")
                  for l in manifest["layers"]]
        out.append(ImageSource(config, _oci_tags(desc), layers))
    return out


def _oci_tags(desc: dict[str, Any]) -> list[str]:
    """A full name from containerd's annotation, or a ref.name that is a full ref."""
    notes = desc.get("annotations") or {}
    if not isinstance(notes, dict):
        return []
    name = notes.get("io.containerd.image.name")
    if isinstance(name, str) and name:
        return [name]
    ref = notes.get("org.opencontainers.image.ref.name")
    if isinstance(ref, str) and (":" in ref or "/" in ref) and not ref.startswith(":"):
        return [ref]
    return []
