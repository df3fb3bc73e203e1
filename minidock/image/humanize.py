"""Sizes and ages the way the Docker CLI prints them (go-units HumanSize and
HumanDuration), so `minidock images` columns read exactly like `docker images`.
Pure functions.
"""

from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from datetime import datetime

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """Decimal units, 3 significant digits: 4261234 -> '4.26MB', 999 -> '999B'."""
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return "%.3g%s" % (size, _UNITS[i])


def human_duration(seconds: float) -> str:
    """'Less than a second', '3 seconds', 'About a minute', '2 weeks', ..."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_time(stamp: str) -> datetime | None:
    """An RFC 3339 time with up to nanoseconds (Docker's `created`), or None."""
    from datetime import datetime, timezone   # not at the top: `ps` needs only durations
    if not stamp:
        return None
    text = stamp.strip().replace("Z", "+00:00")
    head, dot, frac = text.partition(".")
    if dot:  # trim nanoseconds to microseconds, keep the offset
        digits = "".join(c for c in frac if c.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{frac[len(digits):]}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def ago(stamp: str, now: datetime | None = None) -> str:
    """'2 weeks ago' for a `created` stamp; '' when it cannot be read."""
    when = parse_time(stamp)
    if when is None:
        return ""
    from datetime import datetime, timezone
    now = now or datetime.now(timezone.utc)
    return human_duration((now - when).total_seconds()) + " ago"


def rfc3339(when: datetime) -> str:
    """Docker's `created` format: UTC with nanoseconds and `Z`."""
    from datetime import timezone
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Columns as the Docker CLI's tabwriter lays them out (min width 10, padding 3)."""
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) + 3 for i in range(len(header))]
    widths = [max(w, 10) for w in widths]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)
