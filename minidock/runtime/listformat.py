"""`--format` and `--filter` of the listings (ps, network ls, image ls), as docker/cli.

Pure. A listing turns each object into a *row*: a dict with Docker's field names and
string values (`.ID`, `.Names`, `.Status`, ...). `--format` is then:

    table                 the default table
    table TEMPLATE        a header row (each field's column title), one row per object,
                          aligned by Docker's tabwriter (min width 10, padding 3)
    json                  one `{{json .}}` line per object
    TEMPLATE              one rendered line per object, no header

with `\\t` and `\\n` written literally in the template turned into a tab and a newline
(docker/cli's formatter does the same). `--filter key=value` is parsed into
{key: [values]}: values of one key are alternatives, different keys must all match;
an unknown key is Docker's `Invalid filter 'key'`.
"""

from __future__ import annotations

import re
from minidock.hints import Any, Callable

from minidock.errors import InvalidArgument

Row = dict[str, Any]


def is_table(fmt: str) -> bool:
    return fmt == "table" or fmt.startswith("table ")


def _prepare(fmt: str) -> str:
    if is_table(fmt):
        fmt = fmt[len("table"):]
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def render(fmt: str, rows: list[Row], headers: dict[str, str],
           default: Callable[[list[Row]], str]) -> str:
    """The text of a listing for `--format fmt` (see module doc)."""
    from minidock.runtime.template import render as tmpl
    if fmt in ("", "table"):
        return default(rows)
    if fmt == "json":
        fmt = "{{json .}}"
    body = _prepare(fmt)
    if not is_table(fmt):
        return "".join(tmpl(body, row) + "\n" for row in rows)
    from minidock.runtime.psformat import tabwrite
    lines = [tmpl(body, headers)] + [tmpl(body, row) for row in rows]
    cells = [line.split("\t") for line in lines]
    width = max(len(c) for c in cells)
    return tabwrite([c + [""] * (width - len(c)) for c in cells])


def parse_filters(items: list[str], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """{key: [values]} from `--filter key=value` flags (Docker's messages)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidArgument(f"bad format of filter (expected name=value)")
        key = key.strip().lower()
        if key not in allowed:
            raise InvalidArgument(f"Invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    return out


def matches_text(pattern: str, text: str) -> bool:
    """Docker's filter match for names and ids: a regular expression search."""
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def labels_match(labels: dict[str, str] | None, wants: list[str]) -> bool:
    """`label=key` (present) or `label=key=value` (equal), every one must hold."""
    labels = labels or {}
    for want in wants:
        key, eq, value = want.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def bool_value(key: str, value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"Invalid filter '{key}={value}'")


def labels_text(labels: dict[str, str] | None) -> str:
    """Docker's `.Labels` column: `k=v,k2=v2` in key order."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))
