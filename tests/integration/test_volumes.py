"""Volumes and mounts (issue 15): binds both ways, :ro refused, named volumes that
outlive their container and are seeded from the image, anonymous volumes removed by
--rm and rm -v, --mount, --tmpfs, --volumes-from, `volume` commands; checked from
the host side with the filesystem and /proc/<pid>/mountinfo."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from tests.integration.conftest import TestHost


def _inspect(h: TestHost, name: str) -> dict:
    return json.loads(h.md("inspect", name).stdout)[0]


def test_bind_mount_read_and_written_from_both_sides(host: TestHost) -> None:
    src = Path(host.dir, "shared")
    src.mkdir()
    (src / "from-host").write_text("hello from host\n")
    out = host.md("run", "--rm", "-v", f"{src}:/data", "busybox", "sh", "-c",
                  "cat /data/from-host; echo hi > /data/from-ctr").stdout
    assert out == "hello from host\n"
    assert (src / "from-ctr").read_text() == "hi\n"
    ro = host.md("run", "--rm", "-v", f"{src}:/data:ro", "busybox", "sh", "-c",
                 "echo x > /data/nope", check=False)
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr, ro.stderr
    assert not (src / "nope").exists()


def test_missing_bind_source_created_and_mounts_shown(host: TestHost) -> None:
    src = os.path.join(host.dir, "made", "by", "run")
    host.md("run", "-d", "--name", "bb", "-v", f"{src}:/m:ro", "busybox", "sleep", "100")
    assert os.path.isdir(src)
    doc = _inspect(host, "bb")
    assert doc["Mounts"] == [{"Type": "bind", "Source": src, "Destination": "/m",
                              "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
    assert doc["HostConfig"]["Binds"] == [f"{src}:/m:ro"]
    pid = doc["State"]["Pid"]
    info = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    line = next(ln for ln in info if ln.split()[4] == "/m")
    assert " ro," in line + "," or line.split()[5].startswith("ro"), line
    assert "shared:" not in line and "master:" not in line, line     # private
    host.md("rm", "-f", "bb")


def test_named_volume_survives_and_is_seeded_from_image(host: TestHost) -> None:
    # /etc in busybox holds passwd & co.: a new volume at /etc is seeded with them
    out = host.md("run", "--rm", "-v", "conf:/etc", "busybox", "sh", "-c",
                  "cat /etc/passwd | head -1; echo kept > /etc/mine").stdout
    assert out.startswith("root:"), out
    vol = json.loads(host.md("volume", "inspect", "conf").stdout)[0]
    assert vol["Name"] == "conf" and vol["Driver"] == "local" and vol["Scope"] == "local"
    assert vol["Mountpoint"] == os.path.join(host.root, "volumes", "conf", "_data")
    assert Path(vol["Mountpoint"], "mine").read_text() == "kept\n"
    assert Path(vol["Mountpoint"], "passwd").exists()
    out = host.md("run", "--rm", "-v", "conf:/etc", "busybox", "cat", "/etc/mine").stdout
    assert out == "kept\n"
    assert "conf" in host.md("volume", "ls", "-q").stdout.split()
    host.md("run", "-d", "--name", "user", "-v", "conf:/x", "busybox", "sleep", "100")
    busy = host.md("volume", "rm", "conf", check=False)
    assert busy.returncode == 1 and "volume is in use" in busy.stderr, busy.stderr
    doc = _inspect(host, "user")
    assert doc["Mounts"][0]["Type"] == "volume" and doc["Mounts"][0]["Name"] == "conf"
    assert doc["Mounts"][0]["Mode"] == "z" and doc["Mounts"][0]["Driver"] == "local"
    host.md("rm", "-f", "user")
    assert host.md("volume", "rm", "conf").stdout.strip() == "conf"
    assert not os.path.exists(vol["Mountpoint"])


def test_anonymous_volume_removed_by_rm_flag(host: TestHost) -> None:
    host.md("run", "--rm", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/f")
    assert host.md("volume", "ls", "-q").stdout.split() == []
    host.md("run", "--name", "keep", "-v", "/scratch", "busybox", "true")
    names = host.md("volume", "ls", "-q").stdout.split()
    assert len(names) == 1 and len(names[0]) == 64
    host.md("rm", "-v", "keep")
    assert host.md("volume", "ls", "-q").stdout.split() == []


def test_mount_tmpfs_and_volumes_from(host: TestHost) -> None:
    src = Path(host.dir, "m")
    src.mkdir()
    host.md("run", "-d", "--name", "aa", "--mount", f"type=bind,source={src},target=/b",
            "--mount", "type=volume,source=v1,target=/v", "--mount", "type=tmpfs,target=/t",
            "--tmpfs", "/run2:size=1m", "busybox", "sleep", "100")
    doc = _inspect(host, "aa")
    kinds = {m["Destination"]: m["Type"] for m in doc["Mounts"]}
    assert kinds == {"/b": "bind", "/v": "volume", "/t": "tmpfs"}
    assert doc["HostConfig"]["Tmpfs"] == {"/run2": "size=1048576"}
    df = host.md("exec", "aa", "sh", "-c", "grep -E ' /(t|run2) ' /proc/mounts").stdout
    assert "tmpfs /t " in df and "tmpfs /run2 " in df, df
    host.md("exec", "aa", "sh", "-c", "echo 1 > /v/f; echo 2 > /b/f")
    proc = host.md("run", "--rm", "--volumes-from", "aa:ro", "busybox", "sh", "-c",
                   "cat /v/f /b/f; echo no > /v/g", check=False)
    assert proc.stdout == "1\n2\n" and "Read-only file system" in proc.stderr, proc
    host.md("rm", "-f", "aa")
    host.md("volume", "rm", "v1")


def test_target_symlink_cannot_leave_rootfs(host: TestHost) -> None:
    outside = Path(host.dir, "outside")
    outside.mkdir()
    src = Path(host.dir, "src")
    src.mkdir()
    (src / "marker").write_text("m")
    tar = Path(host.dir, "evil.tar")
    with tarfile.open(tar, "w") as tf:      # an image whose /escape points at the host
        info = tarfile.TarInfo("escape")
        info.type, info.linkname = tarfile.SYMTYPE, str(outside)
        tf.addfile(info)
        info = tarfile.TarInfo("fd")
        info.type, info.linkname = tarfile.SYMTYPE, "/proc/self/fd/3"
        tf.addfile(info)
    host.md("image", "import", str(tar), "evil:1")
    host.md("run", "--rm", "-v", f"{src}:/escape/x", "evil:1", "/nothing", check=False)
    assert list(outside.iterdir()) == []
    bad = host.md("run", "--rm", "-v", f"{src}:/fd/x", "evil:1", "/nothing", check=False)
    assert bad.returncode != 0
    assert list(outside.iterdir()) == []
    host.md("rmi", "evil:1")


def test_volume_commands(host: TestHost) -> None:
    assert host.md("volume", "create", "--label", "a=b", "v9").stdout.strip() == "v9"
    table = host.md("volume", "ls").stdout.splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and table[1].split() == ["local", "v9"]
    assert json.loads(host.md("volume", "inspect", "v9").stdout)[0]["Labels"] == {"a": "b"}
    assert host.md("inspect", "-f", "{{.Driver}} {{.Scope}}", "v9").stdout == "local local\n"
    gone = host.md("volume", "prune", "-f").stdout
    assert "Deleted Volumes:\nv9\n" in gone, gone
    missing = host.md("volume", "inspect", "v9", check=False)
    assert missing.returncode == 1 and "No such volume: v9" in missing.stderr
