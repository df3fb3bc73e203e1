"""Member classification and archive parsing (no disk writes, no root)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from minidock.errors import InvalidArgument
from minidock.image.archive import read_sources
from minidock.image.safetar import Entry, classify, split_path


# -- member classification ---------------------------------------------------------
@pytest.mark.parametrize("name,parts", [("a/b", ("a", "b")), ("./a//b/", ("a", "b")),
                                        ("./", ()), ("a/./b", ("a", "b"))])
def test_split_path(name, parts):
    assert split_path(name) == parts


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "/etc/passwd", "a\x00b"])
def test_split_path_refuses(name):
    with pytest.raises(InvalidArgument, match="invalid layer entry"):
        split_path(name)


def test_classify_whiteouts():
    assert classify("bin/.wh.vi", "file") == Entry("whiteout", ("bin", "vi"))
    assert classify("data/.wh..wh..opq", "file") == Entry("opaque", ("data",))
    assert classify(".wh..wh..opq", "file") == Entry("opaque", ())
    assert classify(".wh..wh.plnk/123", "file").action == "file"
    assert classify("x/.wh..wh.plnk", "dir").action == "skip"
    with pytest.raises(InvalidArgument):
        classify("x/.wh.", "file")


def test_classify_types():
    assert classify("a", "file") == Entry("file", ("a",))
    assert classify("a", "symlink", "/etc") == Entry("symlink", ("a",))
    assert classify("a", "fifo").action == "fifo"
    assert classify("./", "dir").action == "skip"
    assert classify("l", "hardlink", "./bin/busybox") == Entry("hardlink", ("l",), ("bin", "busybox"))


@pytest.mark.parametrize("kind,link,msg", [("char", "", "device"), ("block", "", "device"),
                                           ("hardlink", "../../etc/passwd", "escapes"),
                                           ("hardlink", "/etc/passwd", "absolute"),
                                           ("other", "", "unsupported")])
def test_classify_refuses(kind, link, msg):
    with pytest.raises(InvalidArgument, match=msg):
        classify("x", kind, link)


# -- archives ----------------------------------------------------------------------
def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def _config(n_layers: int = 1) -> bytes:
    return json.dumps({"rootfs": {"type": "layers",
                                  "diff_ids": ["sha256:" + "0" * 64] * n_layers}}).encode()


def test_docker_save_manifest():
    manifest = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]
    srcs = read_sources(_tar({"manifest.json": json.dumps(manifest).encode(),
                              "c.json": _config(), "l/layer.tar": b"LAYER"}))
    assert len(srcs) == 1 and srcs[0].repo_tags == ["x:1"] and srcs[0].config == _config()
    assert srcs[0].layers[0]().read() == b"LAYER"


def test_docker_save_follows_in_archive_symlinks():
    manifest = [{"Config": "c.json", "RepoTags": [], "Layers": ["l/layer.tar"]}]
    srcs = read_sources(_tar({"manifest.json": json.dumps(manifest).encode(),
                              "c.json": _config(), "blobs/sha256/aa": b"BLOB"},
                             {"l/layer.tar": "../blobs/sha256/aa"}))
    assert srcs[0].layers[0]().read() == b"BLOB"


@pytest.mark.parametrize("layer,msg", [("../x/layer.tar", "outside the archive"),
                                       ("/abs/layer.tar", "outside the archive"),
                                       ("missing/layer.tar", "not found"),
                                       (7, "bad layer path")])
def test_docker_save_bad_layer_paths(layer, msg):
    manifest = [{"Config": "c.json", "RepoTags": [], "Layers": [layer]}]
    with pytest.raises(InvalidArgument, match=msg):
        read_sources(_tar({"manifest.json": json.dumps(manifest).encode(), "c.json": _config()}))


@pytest.mark.parametrize("files,msg", [
    ({"x": b"1"}, "no manifest.json"),
    ({"manifest.json": b"{not json"}, "not valid JSON"),
    ({"manifest.json": b"{}"}, "non-empty list"),
    ({"manifest.json": b'[{"Config": "../c.json", "Layers": []}]'}, "outside"),
])
def test_bad_manifests(files, msg):
    with pytest.raises(InvalidArgument, match=msg):
        read_sources(_tar(files))


def _blob(data: bytes) -> tuple[str, str]:
    hexid = hashlib.sha256(data).hexdigest()
    return "sha256:" + hexid, "blobs/sha256/" + hexid


def test_oci_layout():
    layer = b"LAYERDATA"
    cfg = _config()
    ldig, lpath = _blob(layer)
    cdig, cpath = _blob(cfg)
    manifest = json.dumps({"config": {"digest": cdig}, "layers": [{"digest": ldig}]}).encode()
    mdig, mpath = _blob(manifest)
    index = {"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": mdig,
                            "annotations": {"io.containerd.image.name": "docker.io/library/bb:1",
                                            "org.opencontainers.image.ref.name": "1"}}]}
    srcs = read_sources(_tar({"index.json": json.dumps(index).encode(), lpath: layer,
                              cpath: cfg, mpath: manifest, "oci-layout": b"{}"}))
    assert srcs[0].repo_tags == ["docker.io/library/bb:1"]
    assert srcs[0].config == cfg and srcs[0].layers[0]().read() == layer


def test_oci_bad_digest_and_tampered_blob():
    cfg = _config()
    cdig, cpath = _blob(cfg)
    manifest = json.dumps({"config": {"digest": cdig}, "layers": []}).encode()
    mdig, mpath = _blob(manifest)
    bad_index = {"manifests": [{"digest": "sha256:../../etc"}]}
    with pytest.raises(InvalidArgument, match="bad digest"):
        read_sources(_tar({"index.json": json.dumps(bad_index).encode()}))
    index = {"manifests": [{"digest": mdig}]}
    with pytest.raises(InvalidArgument, match="does not match"):
        read_sources(_tar({"index.json": json.dumps(index).encode(), mpath: manifest + b" ",
                           cpath: cfg}))
