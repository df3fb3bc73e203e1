"""Write a `docker save` archive: manifest.json, <config hex>.json, <diff hex>/layer.tar.

This is the format `minidock image build --output` produces and `docker load` or
`minidock load` read back. Layer tars are copied byte for byte (their sha256 is the
diff id the config names).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from minidock.hints import NamedTuple


class SavedImage(NamedTuple):
    config: bytes                        # exact bytes; sha256 = image id
    repo_tags: list[str]
    layers: list[tuple[str, str]]        # (diff id "sha256:<hex>", path of the layer tar)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = mtime
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: str, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = os.stat(path).st_size
    info.mode = 0o644
    info.mtime = mtime
    with open(path, "rb") as fh:
        tar.addfile(info, fh)


def _add_dir(tar: tarfile.TarFile, name: str, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = mtime
    tar.addfile(info)


def write_docker_save(out_path: str, images: list[SavedImage], mtime: int = 0) -> None:
    """Write the archive atomically (temp file beside `out_path`, then rename)."""
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".minidock-save-", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w",
                                                     format=tarfile.PAX_FORMAT) as tar:
            manifest = []
            repos: dict[str, dict[str, str]] = {}
            done: set[str] = set()
            for img in images:
                cfg_name = hashlib.sha256(img.config).hexdigest() + ".json"
                _add_bytes(tar, cfg_name, img.config, mtime)
                layer_names = []
                for diff, path in img.layers:
                    hexid = diff.split(":", 1)[1]
                    name = f"{hexid}/layer.tar"
                    if hexid not in done:
                        _add_dir(tar, hexid + "/", mtime)
                        _add_bytes(tar, f"{hexid}/VERSION", b"1.0", mtime)
                        _add_file(tar, name, path, mtime)
                        done.add(hexid)
                    layer_names.append(name)
                manifest.append({"Config": cfg_name, "RepoTags": img.repo_tags,
                                 "Layers": layer_names})
                for tag in img.repo_tags:
                    repo, _, tg = tag.rpartition(":")
                    if layer_names:
                        repos.setdefault(repo, {})[tg] = layer_names[-1].split("/")[0]
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode(), mtime)
            if repos:
                _add_bytes(tar, "repositories", json.dumps(repos).encode(), mtime)
        os.chmod(tmp, 0o644)
        os.rename(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
