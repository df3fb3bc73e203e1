"""Tags, lookup order and rmi rules against a real (temporary) SQLite store."""

from __future__ import annotations

import pytest

from minidock.context import Context
from minidock.errors import Conflict, NotFound
from minidock.image import store as images

A, B = "a1" * 32, "b2" * 32


@pytest.fixture
def ctx(tmp_path):
    c = Context(root=str(tmp_path / "root"), exec_root=str(tmp_path / "run"))
    with c.store.transaction() as st:
        for image_id, tags in ((A, ["busybox:latest"]), (B, ["other:1", "other:2"])):
            st.put(images.KIND, image_id, {"RepoTags": [], "Config": {"Env": []},
                                           "Layers": [image_id[:4]], "Created": ""})
            for tag in tags:
                images.set_tag(st, tag, image_id)
    return c


def test_resolve_by_name_tag_id_and_prefix(ctx):
    img = ctx and images.resolve(ctx, "busybox")
    assert img.id == A and img.repo_tags == ("busybox:latest",)
    assert img.layer_dirs == (ctx.layers_dir() + "/" + A[:4],)
    assert images.resolve(ctx, "docker.io/library/busybox:latest").id == A
    assert images.resolve(ctx, "sha256:" + A).id == A
    assert images.resolve(ctx, A).id == A
    assert images.resolve(ctx, "b2b2").id == B
    assert images.resolve(ctx, "other:2").id == B


def test_resolve_unknown(ctx):
    with pytest.raises(NotFound, match="Unable to find image 'nope:latest' locally"):
        images.resolve(ctx, "nope")
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        images.lookup(ctx, "nope")


def test_tag_moves_between_images(ctx):
    with ctx.store.transaction() as st:
        assert images.set_tag(st, "busybox:latest", B) == A
    assert images.resolve(ctx, "busybox").id == B
    assert ctx.store.get(images.KIND, A)["RepoTags"] == []
    assert "busybox:latest" in ctx.store.get(images.KIND, B)["RepoTags"]


def test_rmi_by_tag_keeps_image_with_other_tags(ctx):
    assert images.remove(ctx, "other:1") == ["Untagged: other:1"]
    assert images.remove(ctx, "other:2") == ["Untagged: other:2", f"Deleted: sha256:{B}"]
    with pytest.raises(NotFound):
        images.lookup(ctx, B)


def test_rmi_conflicts_with_containers(ctx):
    with ctx.store.transaction() as st:
        st.put("container", "c" * 64, {"Image": "sha256:" + A, "State": {"Running": False}})
    with pytest.raises(Conflict) as err:
        images.remove(ctx, "busybox")
    assert str(err.value) == ('conflict: unable to remove repository reference "busybox" '
                              f"(must force) - container {'c' * 12} is using its referenced "
                              f"image {A[:12]}")
    with pytest.raises(Conflict, match="must be forced.*stopped container"):
        images.remove(ctx, A[:6])
    assert images.remove(ctx, "busybox", force=True) == ["Untagged: busybox:latest"]
    assert images.resolve(ctx, A).repo_tags == ()  # kept: a container uses it


def test_rmi_running_container_cannot_be_forced_by_id(ctx):
    with ctx.store.transaction() as st:
        st.put("container", "d" * 64, {"Image": A, "State": {"Running": True}})
    with pytest.raises(Conflict, match="cannot be forced.*running container dddd"):
        images.remove(ctx, A, force=True)


def test_rmi_by_id_with_several_repos(ctx):
    with ctx.store.transaction() as st:
        images.set_tag(st, "third:x", B)
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        images.remove(ctx, B[:8])
    lines = images.remove(ctx, B[:8], force=True)
    assert lines[-1] == f"Deleted: sha256:{B}" and len(lines) == 4
    assert ctx.store.claimed(images.TAGS) == {"busybox:latest": A}


def test_ambiguous_prefix(ctx):
    with ctx.store.transaction() as st:
        st.put(images.KIND, "a1ff" + "0" * 60, {"RepoTags": [], "Config": {}, "Layers": []})
    with pytest.raises(Conflict, match="multiple IDs"):
        images.resolve(ctx, "a1")
