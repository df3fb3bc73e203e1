"""`ps` from the store's briefs table: every container without decoding its document.

A row of the briefs table (store.py) carries the columns liveness needs (active,
starter, the monitor's pid and start time) beside the brief, the fields `ps` prints
(psformat.brief_row formats them as psformat.row formats a document). The store
returns the rows newest first. Only a record that may need repair goes the slow way
(its full document through lifecycle.refresh): one whose run may have died mid-start
(a starter mark), or one that says running or restarting while its monitor is gone.
A listing of 3,000 running containers thus costs one query, 3,000 reads of
/proc/<monitor pid>/stat and, for the table (not for `-q`), 3,000 decodes of a
small JSON array.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from minidock.context import Container, Context

KIND = "container"          # runtime.container.KIND (its import pulls in spec)


def _start_time(pid: int) -> int | None:
    """lifecycle.proc_start with raw fds (3,000 calls: no file objects)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = data[data.rindex(b")") + 2:].split(None, 20)
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def trusted(active: int, starter: int, mon_pid: int | None, mon_start: int | None) -> bool:
    """True when lifecycle.refresh would return this record unchanged, from the briefs
    table's columns (store.listing_keys)."""
    if starter:
        return False
    if not active:
        return True
    return bool(mon_pid) and mon_start is not None and _start_time(mon_pid) == mon_start


def _repaired(ctx: Context, cid: str) -> Container | None:
    """The record refreshed from its whole document; None when it went (a dead run)."""
    from minidock.errors import NotFound
    from minidock.runtime import container as records
    from minidock.runtime.lifecycle import refresh
    doc = records.get(ctx, cid)
    if doc is None:
        return None
    try:
        return refresh(ctx, doc)
    except NotFound:
        return None


def _listed(ctx: Context, all_: bool, briefs: bool
            ) -> list[tuple[str, str | None, Container | None]]:
    """Newest first, each listed container as (id, brief JSON, None) when trusted (the
    brief is None unless `briefs`: `-q` needs only the id) or (id, None, document)
    when it needed repair."""
    rows = ctx.store.listing(KIND, not all_, briefs)
    out: list[tuple[str, str | None, Container | None]] = []
    for cid, _created, active, starter, mon_pid, mon_start, brief in rows:
        if trusted(active, starter, mon_pid, mon_start):
            if all_ or active:
                out.append((cid, brief, None))
            continue
        doc = _repaired(ctx, cid)
        if doc is not None and (all_ or doc["State"].get("Running")
                                or doc["State"].get("Restarting")):
            out.append((cid, None, doc))
    return out


def container_ids(ctx: Context, all_: bool) -> list[str]:
    """The full ids `ps -q [-a]` prints, newest first: no brief is decoded."""
    return [cid for cid, _b, _d in _listed(ctx, all_, False)]


def containers(ctx: Context, all_: bool) -> list[list]:
    """What `ps [-a]` lists, newest first, as briefs (brief.brief_of; psformat.brief_row
    formats them): a record that needed repair is projected from its refreshed
    document (a dead run's record is removed and skipped)."""
    from minidock.brief import brief_of, decode_briefs
    listed = _listed(ctx, all_, True)
    decoded = iter(decode_briefs([b for _c, b, d in listed if d is None]))  # type: ignore[misc]
    return [next(decoded) if doc is None else brief_of(KIND, doc)  # type: ignore[misc]
            for _c, _b, doc in listed]
