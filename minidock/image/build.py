"""Build an image from a recipe directory (`images/busybox/recipe.json`).

A recipe describes one layer as data: directories with modes, files copied from the
host (`copy`) or from the recipe dir / inline text (`files`), and hardlinks for
every applet a multi-call binary lists (`applets`). The layer tar is written in a
fixed order with every mtime set to the newest source's, so the same inputs always
give the same image ID. The result can be loaded into the store or written as a
`docker save` archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from minidock.hints import Any

from minidock.errors import InvalidArgument
from minidock.image import config as imgconfig
from minidock.image.humanize import rfc3339
from minidock.image.safetar import split_path

_ORDER = {"dir": 0, "file": 1, "hardlink": 2}


@dataclass
class Built:
    """A built image in a temp dir: call `cleanup()` when done."""

    config: bytes
    tags: list[str]
    diff_id: str
    layer_path: str
    workdir: str

    @property
    def image_id(self) -> str:
        return hashlib.sha256(self.config).hexdigest()

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def read_recipe(recipe_dir: str) -> dict[str, Any]:
    path = os.path.join(recipe_dir, "recipe.json")
    try:
        with open(path) as fh:
            recipe = json.load(fh)
    except FileNotFoundError as err:
        raise InvalidArgument(f"build: no recipe.json in {recipe_dir}") from err
    except ValueError as err:
        raise InvalidArgument(f"build: {path} is not valid JSON: {err}") from err
    if not isinstance(recipe, dict) or not isinstance(recipe.get("layer"), dict):
        raise InvalidArgument(f"build: {path} needs a \"layer\" object")
    return recipe


def _mode(spec: dict[str, Any], default: int) -> int:
    value = spec.get("mode")
    return int(value, 8) if isinstance(value, str) else default


def _rel(path: Any) -> str:
    if not isinstance(path, str):
        raise InvalidArgument(f"build: bad path {path!r}")
    parts = split_path(path.lstrip("/"))
    if not parts:
        raise InvalidArgument(f"build: bad path {path!r}")
    return "/".join(parts)


def plan(recipe: dict[str, Any], recipe_dir: str) -> dict[str, dict[str, Any]]:
    """path -> entry {kind, mode, data | src | link}; parents are added as 0755 dirs."""
    layer = recipe["layer"]
    entries: dict[str, dict[str, Any]] = {}
    for spec in layer.get("dirs", []):
        entries[_rel(spec["path"])] = {"kind": "dir", "mode": _mode(spec, 0o755)}
    for spec in layer.get("copy", []):
        entries[_rel(spec["path"])] = {"kind": "file", "mode": _mode(spec, 0o755),
                                       "src": spec["from"]}
    for spec in layer.get("files", []):
        if "text" in spec:
            data = spec["text"].encode()
        else:
            with open(os.path.join(recipe_dir, _rel(spec["from"])), "rb") as fh:
                data = fh.read()
        entries[_rel(spec["path"])] = {"kind": "file", "mode": _mode(spec, 0o644), "data": data}
    applets = layer.get("applets")
    if applets:
        target = _rel(applets["target"])
        listing = subprocess.run(applets["command"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for name in listing:
            path = _rel(name)
            if path != target and path not in entries:
                entries[path] = {"kind": "hardlink", "link": target}
    for path in list(entries):
        parts = path.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), {"kind": "dir", "mode": 0o755})
    return entries


def _source_mtime(entries: dict[str, dict[str, Any]]) -> int:
    """The newest copied host file's mtime (not the recipe's: git checkouts reset it)."""
    return int(max([os.stat(e["src"]).st_mtime for e in entries.values() if "src" in e],
                   default=0))


def write_layer(entries: dict[str, dict[str, Any]], out: str, mtime: int) -> str:
    """Write the layer tar; returns its diff id."""
    order = sorted(entries, key=lambda p: (_ORDER[entries[p]["kind"]], p))
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in order:
            entry = entries[path]
            info = tarfile.TarInfo(path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "root", "root"
            if entry["kind"] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, entry["mode"]
                tar.addfile(info)
            elif entry["kind"] == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, entry["link"], 0o755
                tar.addfile(info)
            else:
                info.mode = entry["mode"]
                if "src" in entry:
                    info.size = os.stat(entry["src"]).st_size
                    with open(entry["src"], "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    info.size = len(entry["data"])
                    tar.addfile(info, io.BytesIO(entry["data"]))
    sha = hashlib.sha256()
    with open(out, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def build(recipe_dir: str, tags: list[str] | None = None) -> Built:
    """Build the recipe in `recipe_dir` into a temp dir (the caller cleans up)."""
    recipe = read_recipe(recipe_dir)
    cfg = imgconfig.normalize_config(recipe.get("config"))
    entries = plan(recipe, recipe_dir)
    mtime = _source_mtime(entries)
    workdir = tempfile.mkdtemp(prefix="minidock-build-")
    try:
        layer_path = os.path.join(workdir, "layer.tar")
        diff_id = write_layer(entries, layer_path, mtime)
        created = rfc3339(datetime.fromtimestamp(mtime, timezone.utc))
        history = [{"created": created, "created_by": f"minidock image build {recipe_dir}",
                    "comment": recipe.get("comment", "")}]
        doc = imgconfig.image_json(cfg, [diff_id], created, history)
        config = imgconfig.encode(doc)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Built(config, list(tags or recipe.get("tags") or []), diff_id, layer_path, workdir)
