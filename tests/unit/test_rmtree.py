"""lifecycle.rmtree: removes a tree like shutil.rmtree(ignore_errors=True), never
following a symlink out of it."""

import os

from minidock.runtime.lifecycle import rmtree


def test_rmtree_removes_everything_and_follows_no_link(tmp_path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("x")
    top = tmp_path / "ctr"
    (top / "a" / "b" / "c").mkdir(parents=True)
    (top / "a" / "f").write_text("f")
    (top / "a" / "b" / "c" / "g").write_text("g")
    os.symlink(keep, top / "a" / "dirlink")
    os.symlink(keep / "precious", top / "filelink")
    os.mkfifo(top / "fifo")
    os.chmod(top / "a" / "b", 0)
    rmtree(str(top))
    assert not top.exists()
    assert (keep / "precious").read_text() == "x"
    rmtree(str(top))                       # idempotent: a missing tree is fine
    os.symlink(keep, tmp_path / "toplink")
    rmtree(str(tmp_path / "toplink"))      # a link as the top is left, not followed
    assert (keep / "precious").exists()
