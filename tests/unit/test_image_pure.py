"""Pure image logic: references, config normalisation, -c changes, sizes and ages."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from minidock.errors import InvalidArgument
from minidock.image import config, reference
from minidock.image.humanize import ago, human_duration, human_size, table
from minidock.image.listing import image_rows


@pytest.mark.parametrize("ref,want", [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox", "busybox:latest"),
    ("docker.io/me/app:v1", "me/app:v1"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("registry.example:5000/a/b:c", "registry.example:5000/a/b:c"),
])
def test_parse_reference(ref, want):
    assert str(reference.parse(ref)) == want


@pytest.mark.parametrize("ref", ["", "Busybox", "a@sha256:00", "bad tag:x y", "a:", "-a", "a//b"])
def test_parse_reference_rejects(ref):
    with pytest.raises(InvalidArgument):
        reference.parse(ref)


def test_uppercase_message():
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        reference.parse("BusyBox")


def test_ids():
    hexid = "ab" * 32
    assert reference.id_of("sha256:" + hexid) == hexid
    assert reference.id_of(hexid) == hexid
    assert reference.id_of("abc") is None
    assert reference.id_prefix("sha256:abc") == "abc"
    assert reference.id_prefix("busybox") is None
    assert reference.display("busybox") == "busybox:latest"
    assert reference.display("sha256:zz") == "sha256:zz"


def test_normalize_adds_path_and_keys():
    cfg = config.normalize_config({"Cmd": ["sh"]})
    assert cfg["Env"] == [config.DEFAULT_PATH]
    assert cfg["Cmd"] == ["sh"] and cfg["Entrypoint"] is None and cfg["WorkingDir"] == ""
    assert "ExposedPorts" not in cfg
    kept = config.normalize_config({"Env": ["PATH=/x", "A=b"], "ExposedPorts": {"80/tcp": {}}})
    assert kept["Env"] == ["PATH=/x", "A=b"] and kept["ExposedPorts"] == {"80/tcp": {}}
    assert config.normalize_config(None)["Env"] == [config.DEFAULT_PATH]


@pytest.mark.parametrize("bad", [{"Env": "A=b"}, {"Cmd": [1]}, {"ExposedPorts": []}, []])
def test_normalize_rejects_bad_types(bad):
    with pytest.raises(InvalidArgument):
        config.normalize_config(bad)


def test_apply_changes():
    cfg = config.apply_changes({}, [
        "ENV K=V", "ENV GREETING hello world", 'ENV A="x y" B=2', "EXPOSE 80/tcp 53/udp 8080",
        'CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/run me", "WORKDIR /x", "WORKDIR y",
        "USER nobody", "LABEL a=b",
    ])
    assert cfg["Env"] == ["K=V", "GREETING=hello world", "A=x y", "B=2"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8080/tcp": {}}
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/run me"]
    assert cfg["WorkingDir"] == "/x/y" and cfg["User"] == "nobody"
    assert cfg["Labels"] == {"a": "b"}


@pytest.mark.parametrize("change", ["FROM x", "RUN ls", "EXPOSE 99999", "EXPOSE 80/foo", "ENV"])
def test_apply_changes_rejects(change):
    with pytest.raises(InvalidArgument):
        config.apply_changes({}, [change])


def test_diff_and_chain_ids():
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    doc = {"rootfs": {"type": "layers", "diff_ids": [d1, d2]}}
    assert config.diff_ids(doc) == [d1, d2]
    chain = config.chain_ids([d1, d2])
    assert chain[0] == d1 and chain[1].startswith("sha256:") and chain[1] != d2
    for bad in ({}, {"rootfs": {"type": "x"}}, {"rootfs": {"type": "layers", "diff_ids": ["x"]}}):
        with pytest.raises(InvalidArgument):
            config.diff_ids(bad)


@pytest.mark.parametrize("size,want", [(0, "0B"), (999, "999B"), (1000, "1kB"), (1234, "1.23kB"),
                                       (4261234, "4.26MB"), (1984163, "1.98MB"),
                                       (999999, "1e+03kB"), (3 * 10**9, "3GB")])
def test_human_size(size, want):
    assert human_size(size) == want


@pytest.mark.parametrize("secs,want", [(0.5, "Less than a second"), (1, "1 second"),
                                       (59, "59 seconds"), (60, "About a minute"),
                                       (600, "10 minutes"), (3600, "About an hour"),
                                       (5 * 3600, "5 hours"), (3 * 86400, "3 days"),
                                       (15 * 86400, "2 weeks"), (90 * 86400, "3 months"),
                                       (800 * 86400, "2 years")])
def test_human_duration(secs, want):
    assert human_duration(secs) == want


def test_ago_reads_nanoseconds():
    now = datetime(2026, 12, 12, 16, 52, 13, tzinfo=timezone.utc)
    assert ago("2026-11-28T16:52:13.445770861Z", now) == "2 weeks ago"  # rounds hours
    assert ago("2026-11-29T16:52:13.445770861Z", now) == "13 days ago"
    assert ago("2026-12-12T16:52:10.5+00:00", now) == "2 seconds ago"
    assert ago("garbage", now) == ""


def test_table_matches_docker_layout():
    out = table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                [["f92c1637e244", "bridge", "bridge", "local"]])
    assert out.splitlines() == ["NETWORK ID     NAME      DRIVER    SCOPE",
                                "f92c1637e244   bridge    bridge    local"]


def test_image_rows_per_tag_and_none():
    now = datetime(2026, 1, 15, tzinfo=timezone.utc)
    imgs = [("a" * 64, {"RepoTags": ["x:1", "y:latest"], "Created": "2026-01-01T00:00:00Z",
                        "Size": 4261234}),
            ("b" * 64, {"RepoTags": [], "Created": "2026-01-14T00:00:00Z", "Size": 10})]
    header, rows = image_rows(imgs, now=now)
    assert header == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert rows[0] == ["x", "1", "a" * 12, "2 weeks ago", "4.26MB"]
    assert rows[1][:2] == ["y", "latest"]
    assert rows[2][:3] == ["<none>", "<none>", "b" * 12]
    _, only = image_rows(imgs, "y", now=now)
    assert [r[0] for r in only] == ["y"]
    _, tagged = image_rows(imgs, "x:2", now=now)
    assert tagged == []
