"""The embedded store: one SQLite file holds every record minidock keeps.

On-disk layout under the root directory (default /var/lib/minidock, mode 0700):

    minidock.db            this store (WAL mode)
    daemon.json            daemon options (see config.py)
    images/layers/<hex>/   unpacked image layers, stored once (image/ package)
    containers/<id>/       per-container files: hostname, hosts, resolv.conf,
                           json.log, overlay upper/ and work/, rootfs/ (mount point)

and under the exec-root (default /run/minidock): runtime state that a reboot wipes
(netns/<sandbox-id[:12]> keys, monitor pid files). A missing exec-root marker means a
reboot happened; see runtime reconciliation.

Two tables serve every kind of record:

* ``objects(kind, id, name, doc)``: JSON documents; ``(kind, name)`` is unique, so a
  container or network name is claimed atomically by the insert that creates it.
* ``claims(space, key, owner)``: exclusive claims on scarce values: an address in a
  network (``space='ip:<network id>'``, ``key='172.17.0.2'``), a host port
  (``space='port:tcp'``, ``key='0.0.0.0:8080'``). The primary key makes a double
  allocation impossible even across concurrent CLI processes.

* ``briefs(kind, id, created, active, starter, mon_pid, mon_start, brief)``: what a
  listing reads (`ps`, `network ls`), written in the same transaction as the document
  (so it can never disagree with it). ``brief`` is the few fields a listing shows, a
  projection of ``doc`` (a JSON array, see brief.py); the other columns are what
  `ps` needs without decoding it: the order (``created``), whether the record says its process
  runs or restarts (``active``), whether a pipeline's starter mark is on it
  (``starter``), and its monitor's pid and start time. A table of its own, because a
  container's document (~5 KiB) overflows its b-tree page: a column stored after it
  is reached only through the document's overflow chain, two page reads per row.
  Clustered on its key (WITHOUT ROWID): a listing is one range scan.

Every decision runs in one ``transaction()`` (``BEGIN IMMEDIATE``): the writer lock is
taken up front so that read-then-write decisions (lowest free address, free port) are
race-free. Readers never block writers thanks to WAL.
"""

from __future__ import annotations

import os
# The C module behind `sqlite3`: the package's dbapi2 adds only datetime adapters
# (none used here) and imports datetime for them, ~1.5 ms of every command.
import _sqlite3 as sqlite3
from contextlib import contextmanager
from minidock.brief import BRIEF_KEYS, brief_dict, brief_of, listing_keys
from minidock.errors import Conflict, NotFound

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from typing import Any, Iterator

SCHEMA_VERSION = 2          # 1: objects.brief; 2: the briefs table (objects.brief unused)
WAL_PAGES = 128             # auto-checkpoint threshold (see Store._connect)
_BRIEFS_TABLE = """
CREATE TABLE IF NOT EXISTS briefs (
    kind      TEXT NOT NULL,
    id        TEXT NOT NULL,
    created   TEXT,
    active    INTEGER NOT NULL,
    starter   INTEGER NOT NULL,
    mon_pid   INTEGER,
    mon_start INTEGER,
    brief     TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
"""
_SCHEMA = _BRIEFS_TABLE + """
CREATE TABLE IF NOT EXISTS objects (
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    name  TEXT,
    doc   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_name ON objects(kind, name);
CREATE TABLE IF NOT EXISTS claims (
    space TEXT NOT NULL,
    key   TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE INDEX IF NOT EXISTS claims_owner ON claims(owner);
PRAGMA user_version=2;
"""

def _first(row: tuple) -> Any:
    return row[0]


def _created(row: tuple) -> str:
    return row[1] or ""


def _dumps(doc: Any) -> str | None:
    import json     # at first use, as in _loads
    return None if doc is None else json.dumps(doc, separators=(",", ":"))


def _loads(text: str) -> Any:
    """json.loads, with json imported at first use: its import (re, and the patterns
    it compiles) is 5-8 ms, and `ps` decodes no document (brief.decode_briefs)."""
    import json
    return json.loads(text)


class Store:
    """A handle on the store; cheap to open, one per CLI process."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._path = os.path.join(root, "minidock.db")
        self._conn: sqlite3.Connection | None = self._connect()
        self._depth = 0

    def _connect(self) -> sqlite3.Connection:
        fresh = not os.path.exists(self._path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        db = sqlite3.connect(self._path, timeout=60, isolation_level=None)
        db.execute("PRAGMA busy_timeout=60000")
        # WAL + synchronous=NORMAL: a commit appends to the WAL without fsync (the
        # database stays consistent after a crash; a power loss may drop the newest
        # commits, which reconciliation treats like a killed CLI). Saves ms per commit.
        db.execute("PRAGMA synchronous=NORMAL")
        # A command is usually the only connection: its first read rebuilds the WAL's
        # index from the WAL (~17 us a page here), and a checkpoint costs two fsyncs
        # (3-15 ms). A `run` adds ~35 pages; checkpointing every 128 pages keeps both
        # small (SQLite's default, 1,000, makes every command read up to 4 MB first).
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        if fresh:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        elif db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            _migrate(db)
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, reopened after close(): a handle closed before a fork (see
        runtime/start.py) stays usable by whoever kept it, e.g. a pipeline's undo."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        """Close the connection without the checkpoint SQLite runs when the last
        connection to a WAL database closes (see _no_checkpoint)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with _no_checkpoint(self._path):
                conn.close()

    # -- transactions -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """One atomic decision; nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    # -- objects ------------------------------------------------------------------
    def put(self, kind: str, obj_id: str, doc: dict[str, Any], name: str | None = None) -> None:
        """Insert or replace a document (and its brief); a name taken by another id is
        a Conflict."""
        brief = brief_of(kind, doc)
        with self.transaction():
            try:
                self._db.execute(
                    "INSERT INTO objects(kind,id,name,doc) VALUES(?,?,?,?) "
                    "ON CONFLICT(kind,id) DO UPDATE SET name=excluded.name, doc=excluded.doc",
                    (kind, obj_id, name, _dumps(doc)),
                )
            except sqlite3.IntegrityError as err:
                raise Conflict(f"{kind} name {name!r} is already in use") from err
            if brief is not None:
                self._db.execute("INSERT OR REPLACE INTO briefs VALUES(?,?,?,?,?,?,?,?)",
                                 (kind, obj_id, *listing_keys(doc), _dumps(brief)))

    def get(self, kind: str, obj_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT doc FROM objects WHERE kind=? AND id=?", (kind, obj_id)
        ).fetchone()
        return _loads(row[0]) if row else None

    def get_by_name(self, kind: str, name: str) -> tuple[str, dict[str, Any]] | None:
        row = self._db.execute(
            "SELECT id, doc FROM objects WHERE kind=? AND name=?", (kind, name)
        ).fetchone()
        return (row[0], _loads(row[1])) if row else None

    def find_by_prefix(self, kind: str, prefix: str) -> list[str]:
        """Ids of `kind` starting with `prefix` (ID prefixes, like Docker's)."""
        esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(
            "SELECT id FROM objects WHERE kind=? AND id LIKE ? ESCAPE '\\'",
            (kind, esc + "%"),
        ).fetchall()
        return [r[0] for r in rows]

    def lookup(self, kind: str, ref: str, label: str | None = None) -> tuple[str, dict[str, Any]]:
        """Resolve a full id, a name or a unique id prefix, as Docker does.

        Order: exact id, exact name, then unique id prefix. Raises NotFound with
        Docker's wording (`No such container: x`) or Conflict when ambiguous.
        """
        label = label or kind
        doc = self.get(kind, ref)
        if doc is not None:
            return ref, doc
        hit = self.get_by_name(kind, ref)
        if hit is not None:
            return hit
        if ref:
            ids = self.find_by_prefix(kind, ref)
            if len(ids) == 1:
                return ids[0], self.get(kind, ids[0])  # type: ignore[return-value]
            if len(ids) > 1:
                raise Conflict(f"multiple {label}s found with provided prefix: {ref}")
        raise NotFound(f"No such {label}: {ref}")

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self._db.execute("SELECT id, doc FROM objects WHERE kind=?", (kind,)).fetchall()
        return [(r[0], _loads(r[1])) for r in rows]

    def briefs(self, kind: str) -> list[dict[str, Any]]:
        """Every brief of `kind` as a dict (brief_dict), in no particular order."""
        loads = _loads
        rows = self._db.execute("SELECT brief FROM briefs WHERE kind=?", (kind,))
        out = [brief_dict(kind, loads(b)) for b, in rows]
        out.extend(brief_dict(kind, brief_of(kind, doc))  # type: ignore[arg-type]
                   for _c, doc in self._unlisted(kind))
        return out

    def listing(self, kind: str, active_only: bool, with_brief: bool) -> list[tuple]:
        """(id, created, active, starter, mon_pid, mon_start, brief JSON or None) of
        every record of `kind`, newest first; `active_only` leaves out the records that
        are neither active nor carry a starter mark (see the module doc)."""
        sql = ("SELECT id, created, active, starter, mon_pid, mon_start, "
               + ("brief" if with_brief else "NULL") + " FROM briefs WHERE kind=?"
               + (" AND (active OR starter)" if active_only else ""))
        rows = self._db.execute(sql, (kind,)).fetchall()
        extra = [(i, *listing_keys(doc), _dumps(brief_of(kind, doc)) if with_brief else None)
                 for i, doc in self._unlisted(kind)]
        rows.extend(r for r in extra if not active_only or r[2] or r[3])
        # sorted here, not by ORDER BY: SQLite's sorter would carry the briefs (~2 MB
        # at 3,000) and spill them to a temporary file; ties stay in id order
        rows.sort(key=_first)
        rows.sort(key=_created, reverse=True)
        return rows

    def _unlisted(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """(id, doc) of the records of a listed kind that have no brief: written by an
        older minidock (whose objects.brief this version neither writes nor reads)."""
        if kind not in BRIEF_KEYS:
            return []
        # ids alone: both sides from their primary keys' covering indexes (~1 ms at
        # 3,000; a NOT EXISTS join went through objects_name and every table row)
        ids = self._db.execute("SELECT id FROM objects WHERE kind=?1 EXCEPT "
                               "SELECT id FROM briefs WHERE kind=?1", (kind,)).fetchall()
        out = []
        for i, in ids:
            doc = self.get(kind, i)
            if doc is not None:
                out.append((i, doc))
        return out

    def count(self, kind: str) -> int:
        return self._db.execute("SELECT count(*) FROM objects WHERE kind=?", (kind,)).fetchone()[0]

    def delete(self, kind: str, obj_id: str) -> bool:
        """Remove a document; True if it existed (idempotent)."""
        with self.transaction():
            cur = self._db.execute("DELETE FROM objects WHERE kind=? AND id=?", (kind, obj_id))
            self._db.execute("DELETE FROM briefs WHERE kind=? AND id=?", (kind, obj_id))
        return cur.rowcount > 0

    # -- claims -------------------------------------------------------------------
    def claim(self, space: str, key: str, owner: str) -> bool:
        """Take `key` in `space` for `owner`; False if someone else holds it.

        Claiming a key the same owner already holds succeeds (idempotent).
        """
        try:
            self._db.execute(
                "INSERT INTO claims(space,key,owner) VALUES(?,?,?)", (space, key, owner)
            )
            return True
        except sqlite3.IntegrityError:
            return self.claim_owner(space, key) == owner

    def claim_owner(self, space: str, key: str) -> str | None:
        row = self._db.execute(
            "SELECT owner FROM claims WHERE space=? AND key=?", (space, key)
        ).fetchone()
        return row[0] if row else None

    def claimed(self, space: str) -> dict[str, str]:
        """key -> owner for every claim in `space`."""
        rows = self._db.execute("SELECT key, owner FROM claims WHERE space=?", (space,))
        return {k: o for k, o in rows}

    def claims_of(self, owner: str) -> list[tuple[str, str]]:
        rows = self._db.execute("SELECT space, key FROM claims WHERE owner=?", (owner,))
        return list(rows)

    def release(self, space: str, key: str, owner: str | None = None) -> None:
        """Give a claim back (idempotent); with `owner`, only if that owner holds it."""
        if owner is None:
            self._db.execute("DELETE FROM claims WHERE space=? AND key=?", (space, key))
        else:
            self._db.execute(
                "DELETE FROM claims WHERE space=? AND key=? AND owner=?", (space, key, owner)
            )

    def release_space(self, space: str) -> None:
        """Drop every claim in `space` (idempotent)."""
        self._db.execute("DELETE FROM claims WHERE space=?", (space,))

    def all_claims(self) -> list[tuple[str, str, str]]:
        """(space, key, owner) of every claim, for the orphan sweep."""
        return list(self._db.execute("SELECT space, key, owner FROM claims"))

    def release_owner(self, owner: str, space_prefix: str = "") -> None:
        """Drop every claim `owner` holds (in spaces starting with `space_prefix`)."""
        self._db.execute(
            "DELETE FROM claims WHERE owner=? AND space LIKE ?", (owner, space_prefix + "%")
        )


# SQLite's lock bytes in the database file (its os_unix.c): a connection that can
# write-lock the SHARED range is the only one, and checkpoints on close.
_SHARED_FIRST = 0x40000000 + 2


@contextmanager
def _no_checkpoint(path: str) -> Iterator[None]:
    """Hold a read lock on SQLite's SHARED byte while the body closes a connection.

    The last connection to a WAL database checkpoints on close: the WAL copied into
    the database and both fsynced, 3-15 ms here, paid by every `run` since its CLI
    closes the store before forking the monitor (start.py). An open-file-description
    lock conflicts with SQLite's own record locks even in this process, so the close
    sees another reader and leaves the WAL as it is, as it does whenever two commands
    run at once; the next auto-checkpoint (WAL_PAGES) folds it in. Nothing is lost:
    the WAL is the committed data.
    """
    import fcntl
    import struct
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                        struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, _SHARED_FIRST, 1, 0))
        except OSError:
            pass                        # a writer holds it: then it is not the last one
        yield
    finally:
        os.close(fd)


def _migrate(db: sqlite3.Connection) -> None:
    """Up to SCHEMA_VERSION, once, under the writer lock: version 2 fills the briefs
    table from the documents (a version-1 store keeps its objects.brief column, unused:
    dropping it would rewrite every row, and break an older monitor still running)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] < 2:
            db.execute(_BRIEFS_TABLE)
            for kind in BRIEF_KEYS:
                rows = db.execute("SELECT id, doc FROM objects WHERE kind=?", (kind,)).fetchall()
                docs = [(i, _loads(d)) for i, d in rows]
                db.executemany("INSERT OR REPLACE INTO briefs VALUES(?,?,?,?,?,?,?,?)",
                               [(kind, i, *listing_keys(doc), _dumps(brief_of(kind, doc)))
                                for i, doc in docs])
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def require(doc: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """Return `doc` or raise NotFound naming `what`."""
    if doc is None:
        raise NotFound(f"No such {what}")
    return doc
