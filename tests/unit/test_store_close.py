"""Store.close leaves the WAL in place (no checkpoint) and loses nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from minidock.store import Store


def _wal_size(root: str) -> int:
    try:
        return os.path.getsize(os.path.join(root, "minidock.db-wal"))
    except FileNotFoundError:
        return 0


def test_close_keeps_the_wal_and_the_data(tmp_path) -> None:
    root = str(tmp_path)
    store = Store(root)
    with store.transaction():
        store.put("container", "c1", {"Id": "c1", "Name": "/one"}, name="one")
    before = _wal_size(root)
    assert before > 0
    store.close()
    assert _wal_size(root) == before            # not checkpointed into the database
    # another process sees the committed record
    code = ("import sys; from minidock.store import Store; "
            "print(Store(sys.argv[1]).get('container', 'c1')['Name'])")
    out = subprocess.run([sys.executable, "-c", code, root], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "/one"
    # and the handle reopens by itself
    assert store.get("container", "c1")["Name"] == "/one"
    store.close()


def test_plain_last_close_would_checkpoint(tmp_path) -> None:
    """The behaviour close() avoids, so that the test above cannot pass vacuously."""
    root = str(tmp_path)
    Store(root).close()
    db = sqlite3.connect(os.path.join(root, "minidock.db"), isolation_level=None)
    db.execute("CREATE TABLE t(x)")
    assert _wal_size(root) > 0
    db.close()
    assert _wal_size(root) == 0
