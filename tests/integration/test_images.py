"""Images on a real kernel: load, ls, rm, import, build, hostile archives, overlay whiteouts.

Each test runs minidock in a bare test host (own --root). Hostile archives must fail
with one line (exit 125), leave the "victim" directory beside the store untouched,
and leave no temp dir, layer dir or image record behind.
"""

from __future__ import annotations

from tests.reference import REF

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUSYBOX_TAR = REPO / "build" / "busybox.tar"
BBLAYERS = REF / "images" / "bblayers-docker-save.tar"


# -- crafting archives -------------------------------------------------------------
def member(name: str, kind: str = "file", data: bytes = b"", link: str = "", mode: int = 0o644,
           uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000, dev: tuple[int, int] = (0, 0)
           ) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE,
                 "block": tarfile.BLKTYPE}[kind]
    info.size = len(data) if kind == "file" else 0
    info.linkname, info.mode, info.uid, info.gid, info.mtime = link, mode, uid, gid, mtime
    info.devmajor, info.devminor = dev
    return info, data


def layer_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def docker_save(path: Path, layers: list[bytes], tags: list[str], config: dict | None = None,
                layer_names: list[str] | None = None, gzip_layers: bool = False) -> str:
    """Write a docker-save archive; returns the image id."""
    diffs = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    doc = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": config or {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diffs}}
    raw = json.dumps(doc).encode()
    image_id = hashlib.sha256(raw).hexdigest()
    names = layer_names or [f"{d[7:]}/layer.tar" for d in diffs]
    files = {f"{image_id}.json": raw}
    for name, data in zip(names, layers):
        if name not in ("../evil/layer.tar",) and not name.startswith("missing"):
            files[name] = gzip.compress(data) if gzip_layers else data
    files["manifest.json"] = json.dumps(
        [{"Config": f"{image_id}.json", "RepoTags": tags, "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return image_id


# -- helpers -------------------------------------------------------------------------
def images_q(h) -> list[str]:
    return h.md("images", "-q").stdout.split()


def layer_dirs(h) -> list[str]:
    path = Path(h.root, "images", "layers")
    return sorted(os.listdir(path)) if path.exists() else []


def assert_nothing_loaded(h) -> None:
    tmp = Path(h.root, "images", "tmp")
    assert not tmp.exists() or os.listdir(tmp) == []
    assert layer_dirs(h) == []
    assert images_q(h) == []


@pytest.fixture
def victim(bare_host):
    path = Path(bare_host.dir, "victim")
    path.mkdir()
    (path / "file").write_text("safe\n")
    return path


def overlay(h, lower: list[str], name: str = "merged") -> Path:
    """Mount lower dirs (lowest first) read-only; the test umounts via the returned path."""
    target = Path(h.dir, name)
    target.mkdir()
    opts = "lowerdir=" + ":".join(reversed(lower))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
    return target


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True)


# -- loading -------------------------------------------------------------------------
@pytest.mark.skipif(not BUSYBOX_TAR.exists(), reason="make image first")
def test_load_busybox(bare_host):
    out = bare_host.md("image", "load", "-i", str(BUSYBOX_TAR)).stdout
    assert out == "Loaded image: busybox:latest\n"
    lines = bare_host.md("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split()[:2] == ["busybox", "latest"]
    (layer,) = layer_dirs(bare_host)
    root = Path(bare_host.root, "images", "layers", layer)
    assert os.stat(root / "bin/busybox").st_nlink > 100
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    cfg = json.loads(bare_host.md("image", "inspect", "busybox").stdout)[0]["Config"]
    assert cfg["Cmd"] == ["sh"] and cfg["Env"][0].startswith("PATH=")
    # a second load reuses the layer dir and says the same thing
    ino = os.stat(root).st_ino
    assert bare_host.md("load", "-i", str(BUSYBOX_TAR)).stdout == "Loaded image: busybox:latest\n"
    assert os.stat(root).st_ino == ino


def test_reference_archive_whiteouts_in_overlay(bare_host):
    bare_host.md("load", "-i", str(BBLAYERS))
    doc = json.loads(bare_host.md("image", "inspect", "bblayers").stdout)[0]
    assert doc["Config"]["Env"] == ["doc=docker", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                    "/usr/bin:/sbin:/bin", "GREETING=hello world"]
    assert doc["Config"]["WorkingDir"] == "/www"
    assert set(doc["Config"]["ExposedPorts"]) == {"53/udp", "5432/tcp", "80/tcp"}
    lower = [os.path.join(bare_host.root, "images", "layers", d[7:])
             for d in doc["RootFS"]["Layers"]]
    merged = overlay(bare_host, lower)
    try:
        assert not (merged / "bin/vi").exists() and (merged / "bin/sh").exists()
        assert not (merged / "data/sub").exists()
        assert (merged / "data/keep").read_text() == "keep\n"
        assert (merged / "www/index.html").read_text() == "hello-from-layers\n"
        assert (merged / "etc/motd").read_text() == "two\n"
    finally:
        umount(merged)


def test_opaque_dir_and_gzip_layers(bare_host, tmp_path):
    low = layer_tar([member("d", "dir", mode=0o755), member("d/a", data=b"a"),
                     member("d/sub", "dir", mode=0o755), member("d/sub/b", data=b"b"),
                     member("gone", data=b"x")])
    top = layer_tar([member("d", "dir", mode=0o755), member("d/.wh..wh..opq"),
                     member("d/c", data=b"c"), member(".wh.gone")])
    archive = tmp_path / "opq.tar"
    docker_save(archive, [low, top], ["opq:1"], gzip_layers=True)
    assert bare_host.md("load", "-i", str(archive)).stdout == "Loaded image: opq:1\n"
    doc = json.loads(bare_host.md("image", "inspect", "opq:1").stdout)[0]
    lower = [os.path.join(bare_host.root, "images", "layers", d[7:])
             for d in doc["RootFS"]["Layers"]]
    merged = overlay(bare_host, lower)
    try:
        assert sorted(os.listdir(merged / "d")) == ["c"]
        assert not (merged / "gone").exists()
    finally:
        umount(merged)


def test_metadata_kept(bare_host, tmp_path):
    layer = layer_tar([member("bin", "dir", mode=0o755, mtime=1000),
                       member("bin/suid", data=b"#!", mode=0o4755, uid=1234, gid=5678),
                       member("bin/hl", "hardlink", link="bin/suid"),
                       member("bin/sl", "symlink", link="/etc/passwd", uid=7, gid=8),
                       member("p", "fifo", mode=0o640)])
    archive = tmp_path / "meta.tar"
    image_id = docker_save(archive, [layer], [])
    out = bare_host.md("load", "-i", str(archive)).stdout
    assert out == f"Loaded image ID: sha256:{image_id}\n"
    (hexid,) = layer_dirs(bare_host)
    root = Path(bare_host.root, "images", "layers", hexid)
    st = os.stat(root / "bin/suid")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == \
        (0o4755, 1234, 5678, 1_600_000_000)
    assert os.stat(root / "bin/hl").st_ino == st.st_ino
    assert os.readlink(root / "bin/sl") == "/etc/passwd"
    assert os.lstat(root / "bin/sl").st_uid == 7
    assert stat.S_ISFIFO(os.stat(root / "p").st_mode)
    assert os.stat(root / "bin").st_mtime == 1000
    assert bare_host.md("images").stdout.splitlines()[1].split()[:2] == ["<none>", "<none>"]


def test_retag_renames_old_image(bare_host, tmp_path):
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    old = docker_save(a, [layer_tar([member("a", data=b"1")])], ["x:1"])
    docker_save(b, [layer_tar([member("a", data=b"2")])], ["x:1"])
    bare_host.md("load", "-i", str(a))
    out = bare_host.md("load", "-i", str(b)).stdout.splitlines()
    assert out == [f"The image x:1 already exists, renaming the old one with ID sha256:{old} "
                   "to empty string", "Loaded image: x:1"]
    rows = bare_host.md("images").stdout.splitlines()[1:]
    assert sorted(r.split()[0] for r in rows) == ["<none>", "x"]


# -- hostile archives ----------------------------------------------------------------
def _hostile_layers(victim: Path) -> dict[str, list[bytes]]:
    ok = layer_tar([member("fine", data=b"ok")])
    return {
        "dotdot": [layer_tar([member("../../../victim/pwned", data=b"x")])],
        "dotdot-deep": [layer_tar([member("a/../../victim/pwned", data=b"x")])],
        "absolute": [layer_tar([member(str(victim / "pwned"), data=b"x")])],
        "symlink-then-write": [layer_tar([member("a", "symlink", link=str(victim)),
                                          member("a/pwned", data=b"x")])],
        "symlink-relative-then-write": [layer_tar([
            member("a", "symlink", link="../../../../../../../../" + str(victim)),
            member("a/file", data=b"x")])],
        "hardlink-outside": [layer_tar([member("h", "hardlink", link="../../victim/file")])],
        "hardlink-absolute": [layer_tar([member("h", "hardlink", link=str(victim / "file"))])],
        "hardlink-through-symlink": [layer_tar([member("a", "symlink", link=str(victim)),
                                                member("h", "hardlink", link="a/file")])],
        "char-device": [layer_tar([member("null", "char", dev=(1, 3))])],
        "block-device": [layer_tar([member("sda", "block", dev=(8, 0))])],
        "whiteout-device": [layer_tar([member("w", "char", dev=(0, 0))])],
        "second-layer-bad": [ok, layer_tar([member("../x", data=b"x")])],
        "truncated-layer": [layer_tar([member("big", data=b"y" * 100_000)])[:20_000]],
        "not-a-tar-layer": [b"hello, this is not a tar" * 100],
    }


HOSTILE = ["dotdot", "dotdot-deep", "absolute", "symlink-then-write",
           "symlink-relative-then-write", "hardlink-outside", "hardlink-absolute",
           "hardlink-through-symlink", "char-device", "block-device", "whiteout-device",
           "second-layer-bad", "truncated-layer", "not-a-tar-layer"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_layers_refused(bare_host, victim, tmp_path, case):
    archive = tmp_path / f"{case}.tar"
    docker_save(archive, _hostile_layers(victim)[case], [f"evil:{case}"])
    proc = bare_host.md("load", "-i", str(archive), check=False)
    assert proc.returncode == 125, proc
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(os.listdir(victim)) == ["file"]
    assert (victim / "file").read_text() == "safe\n"
    assert_nothing_loaded(bare_host)


@pytest.mark.parametrize("case", ["missing-blob", "dotdot-blob", "wrong-diffid",
                                  "not-a-tar", "truncated-archive", "missing-file"])
def test_hostile_archives_refused(bare_host, victim, tmp_path, case):
    archive = tmp_path / "a.tar"
    layer = layer_tar([member("fine", data=b"ok")])
    if case == "missing-blob":
        docker_save(archive, [layer], ["x:1"], layer_names=["missing/layer.tar"])
    elif case == "dotdot-blob":
        docker_save(archive, [layer], ["x:1"], layer_names=["../evil/layer.tar"])
    elif case == "wrong-diffid":
        docker_save(archive, [layer], ["x:1"])
        data = archive.read_bytes()  # swap the layer's content byte for byte
        archive.write_bytes(data.replace(b"ok", b"KO"))
    elif case == "not-a-tar":
        archive.write_bytes(b"\x00garbage" * 1000)
    elif case == "truncated-archive":
        docker_save(archive, [layer_tar([member("f", data=os.urandom(50_000))])], ["x:1"])
        archive.write_bytes(archive.read_bytes()[:30_000])
    proc = bare_host.md("load", "-i", str(archive), check=False)
    assert proc.returncode == 125, proc
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(os.listdir(victim)) == ["file"]
    assert_nothing_loaded(bare_host)


# -- import, build, rm -----------------------------------------------------------------
def test_import_with_changes_and_stdin(bare_host, tmp_path):
    rootfs = layer_tar([member("etc", "dir", mode=0o755), member("etc/x", data=b"x")])
    (tmp_path / "r.tar").write_bytes(rootfs)
    out = bare_host.md("import", "-c", "ENV A=b", "-c", "EXPOSE 80/tcp", "-c", 'CMD ["sh"]',
                       "-c", "WORKDIR /srv", "-c", "USER nobody", str(tmp_path / "r.tar"),
                       "imp:1").stdout.strip()
    assert out.startswith("sha256:") and len(out) == 71
    cfg = json.loads(bare_host.md("image", "inspect", "imp:1").stdout)[0]["Config"]
    assert cfg["Env"][-1] == "A=b" and cfg["Env"][0].startswith("PATH=")
    assert cfg["ExposedPorts"] == {"80/tcp": {}} and cfg["Cmd"] == ["sh"]
    assert cfg["WorkingDir"] == "/srv" and cfg["User"] == "nobody"
    proc = subprocess.run(["nsenter", f"--net={bare_host.netns}", str(REPO / ".venv/bin/minidock"),
                           "image", "import", "-", "imp:gz"], input=gzip.compress(rootfs),
                          capture_output=True, env=bare_host.env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(l.split()[1] for l in bare_host.md("images").stdout.splitlines()[1:]) == \
        ["1", "gz"]
    assert len(layer_dirs(bare_host)) == 1  # same content, same layer
    bad = bare_host.md("import", "-c", "RUN ls", str(tmp_path / "r.tar"), check=False)
    assert bad.returncode == 125 and "RUN is not a valid change command" in bad.stderr


def test_build_loads_into_store(bare_host):
    out = bare_host.md("image", "build", str(REPO / "images/busybox"), "-t", "bb:test").stdout
    assert out.splitlines()[-1] == "Successfully tagged bb:test"
    assert bare_host.md("images", "bb").stdout.splitlines()[1].split()[:2] == ["bb", "test"]


def test_rmi_and_layer_gc(bare_host, tmp_path):
    archive = tmp_path / "a.tar"
    image_id = docker_save(archive, [layer_tar([member("a", data=b"1")])], ["x:1"])
    bare_host.md("load", "-i", str(archive))
    bare_host.md("image", "tag", "x:1", "y:2")
    assert bare_host.md("rmi", "x:1").stdout == "Untagged: x:1\n"
    assert bare_host.md("image", "rm", image_id[:8]).stdout == \
        f"Untagged: y:2\nDeleted: sha256:{image_id}\n"
    assert_nothing_loaded(bare_host)
    proc = bare_host.md("rmi", "nope", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error response from daemon: No such image: nope:latest"


def test_rmi_refused_while_container_uses_image(bare_host, tmp_path):
    from minidock.store import Store
    archive = tmp_path / "a.tar"
    image_id = docker_save(archive, [layer_tar([member("a", data=b"1")])], ["busybox:latest"])
    bare_host.md("load", "-i", str(archive))
    st = Store(bare_host.root)
    with st.transaction():
        st.put("container", "c" * 64, {"Image": "sha256:" + image_id, "State": {"Running": False}})
    st.close()
    proc = bare_host.md("rmi", "busybox", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        'Error response from daemon: conflict: unable to remove repository reference "busybox" '
        f"(must force) - container {'c' * 12} is using its referenced image {image_id[:12]}")
    assert bare_host.md("rmi", "-f", "busybox").stdout == "Untagged: busybox:latest\n"
    assert layer_dirs(bare_host)  # the container still needs them


def test_oci_layout_and_xattr_filter(bare_host, tmp_path):
    """An OCI image layout with a gzip'd layer; only user.* / capability xattrs kept."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("d")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        d.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.k": "v"}
        tar.addfile(d)
        f = tarfile.TarInfo("d/f")
        f.size = 2
        tar.addfile(f, io.BytesIO(b"hi"))
    layer = buf.getvalue()
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs["blobs/sha256/" + digest[7:]] = data
        return digest

    gz = gzip.compress(layer)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}
                      }).encode()
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": blob(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": blob(gz)}]}).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/oci:v1"}}]}
    archive = tmp_path / "oci.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in {**blobs, "index.json": json.dumps(index).encode(),
                           "oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert bare_host.md("load", "-i", str(archive)).stdout == "Loaded image: oci:v1\n"
    (hexid,) = layer_dirs(bare_host)
    path = os.path.join(bare_host.root, "images", "layers", hexid, "d")
    assert os.getxattr(path, "user.k") == b"v"
    assert "trusted.overlay.opaque" not in os.listxattr(path)
