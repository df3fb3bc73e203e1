"""What a listing reads of a record: its brief, and the columns `ps` needs.

A brief is a projection of a document: the values at a few paths (BRIEF_KEYS), kept as
a JSON array in the store's briefs table (store.py), written with the document. The
container's liveness columns (listing_keys) sit beside it so that `ps -q` decodes no
JSON, and `ps` decodes every brief in one pass (decode_briefs). Pure: documents in,
values out.
"""

from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from typing import Any

# what a listing reads of each kind: top-level keys, and (key, subkey) pairs; a brief
# is the JSON array of their values in this order (None where the document has none):
# an array of scalars decodes ~5x faster than the same fields nested in objects
BRIEF_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "container": (("Id",), ("Name",), ("Image",), ("Created",), ("Path",), ("Args",),
                  ("State", "Status"), ("State", "Running"), ("State", "Restarting"),
                  ("State", "ExitCode"), ("State", "StartedAt"), ("State", "FinishedAt"),
                  ("Config", "Image"), ("NetworkSettings", "Ports")),
    "network": (("Id",), ("Name",), ("Driver",), ("Scope",)),
}


def brief_of(kind: str, doc: dict[str, Any]) -> list[Any] | None:
    """The listing's projection of `doc`: the values at BRIEF_KEYS[kind]; None for
    kinds that no listing reads."""
    keys = BRIEF_KEYS.get(kind)
    if keys is None:
        return None
    out: list[Any] = []
    for path in keys:
        value = doc.get(path[0])
        if len(path) == 2:
            value = value.get(path[1]) if isinstance(value, dict) else None
        out.append(value)
    return out


def brief_dict(kind: str, brief: list[Any]) -> dict[str, Any]:
    """A brief as the document's own keys and nesting (the fields it has)."""
    out: dict[str, Any] = {}
    for path, value in zip(BRIEF_KEYS[kind], brief):
        if value is None:
            continue
        if len(path) == 1:
            out[path[0]] = value
        else:
            out.setdefault(path[0], {})[path[1]] = value
    return out


def listing_keys(doc: dict[str, Any]) -> tuple[Any, int, int, Any, Any]:
    """The briefs table's columns besides the brief (store.py's module doc): (created,
    active, starter, monitor pid, monitor start)."""
    state = doc.get("State") or {}
    mon = doc.get("_Monitor") or {}
    return (doc.get("Created"), int(bool(state.get("Running") or state.get("Restarting"))),
            int(bool(doc.get("_Starter"))), mon.get("Pid"), mon.get("Start"))


def decode_briefs(texts: list[str]) -> list[list[Any]]:
    """Briefs (JSON arrays, as the store writes them) decoded as one array, by CPython's C
    scanner when there is one: without json's import and its per-call wrapper, a
    third of the decoding of 3,000 briefs and json's import
    (re, and the patterns it compiles: 5-8 ms)."""
    joined = "[" + ",".join(texts) + "]"
    try:
        from _json import make_scanner
    except ImportError:         # another Python: the json module
        import json
        return json.loads(joined)  # type: ignore[no-any-return]
    try:
        value, end = make_scanner(_ScanContext())(joined, 0)
    except StopIteration as err:    # the C scanner's way to say "no value at err.value"
        raise ValueError(f"malformed brief near character {err.value}") from None
    if end != len(joined):
        raise ValueError(f"malformed brief near character {end}")
    return value  # type: ignore[no-any-return]


class _ScanContext:
    """What _json's scanner reads of a json.JSONDecoder: strict, no hooks."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"),
                      "-Infinity": float("-inf")}.__getitem__


