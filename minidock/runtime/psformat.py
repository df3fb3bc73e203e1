"""`ps` output exactly as Docker prints it: columns, durations, command, ports.

Pure: records and "now" in, text out. Docker formats with Go's tabwriter (minwidth 10,
padding 3, the last column unpadded) and go-units' HumanDuration.
"""

from __future__ import annotations

from minidock.image.humanize import human_duration  # go-units HumanDuration, one copy

import time

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from typing import Any

HEADERS = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]


_MINUTES: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" -> its seconds since the epoch


def parse_time(text: str) -> float:
    """Seconds since the epoch from Docker's RFC 3339 timestamp (UTC, ns precision).

    Arithmetic, not time.strptime: `ps` parses two stamps per container, and
    strptime's first call imports _strptime (with re, locale, calendar)."""
    base, _, frac = text.rstrip("Z").partition(".")
    minute = _MINUTES.get(base[:16])    # a fleet starts many containers a minute
    if minute is None:
        days = _days_from_civil(int(base[0:4]), int(base[5:7]), int(base[8:10]))
        minute = _MINUTES[base[:16]] = (days * 86400 + int(base[11:13]) * 3600
                                        + int(base[14:16]) * 60)
    return minute + int(base[17:19]) + (float("0." + frac) if frac else 0.0)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# Each column from the fields it shows: a document's (below) and a brief's (brief_row)
# go through the same functions, so the table from briefs is the table from documents.

def _status(status: str | None, running: Any, restarting: Any, code: Any, started: str,
            finished: str, now: float) -> str:
    if running:
        return "Up " + human_duration(now - parse_time(started))
    if status in ("exited", "restarting"):
        ago = human_duration(now - parse_time(finished))
        return f"{'Restarting' if restarting else 'Exited'} ({code}) {ago} ago"
    return ("created" if status is None else status).capitalize()


def _command(path: str, args: list[str] | None, no_trunc: bool) -> str:
    cmd = " ".join([path, *args]) if args else path
    if not no_trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'


def _ports(ports: dict[str, Any] | None) -> str:
    if not ports:
        return ""
    out = []
    for key in sorted(ports, key=_port_sort) if len(ports) > 1 else ports:
        binds = ports[key]
        if not binds:
            out.append(key)
            continue
        for b in binds:
            out.append(f"{b.get('HostIp', '')}:{b.get('HostPort')}->{key}")
    return ", ".join(out)


def status_text(ctr: dict[str, Any], now: float) -> str:
    state = ctr["State"]
    return _status(state.get("Status"), state.get("Running"), state.get("Restarting"),
                   state.get("ExitCode"), state.get("StartedAt", ""),
                   state.get("FinishedAt", ""), now)


def command_text(ctr: dict[str, Any], no_trunc: bool) -> str:
    return _command(ctr["Path"], ctr.get("Args", []), no_trunc)


def ports_text(ctr: dict[str, Any]) -> str:
    """"0.0.0.0:8080->80/tcp, :::8080->80/tcp" for bound ports, "80/tcp" for exposed."""
    return _ports((ctr.get("NetworkSettings") or {}).get("Ports"))


def _port_sort(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def brief_row(brief: list[Any], now: float, no_trunc: bool = False) -> list[str]:
    """A row from a container's brief: the values at brief.BRIEF_KEYS["container"]."""
    (cid, name, image_id, created, path, args, status, running, restarting, code,
     started, finished, image, ports) = brief
    return [
        cid if no_trunc else cid[:12], image or image_id, _command(path, args, no_trunc),
        human_duration(now - parse_time(created)) + " ago",
        _status(status, running, restarting, code, started or "", finished or "", now),
        _ports(ports), name.lstrip("/"),
    ]


def row(ctr: dict[str, Any], now: float, no_trunc: bool = False) -> list[str]:
    from minidock.brief import brief_of
    return brief_row(brief_of("container", ctr), now, no_trunc)  # type: ignore[arg-type]


def tabwrite(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Go tabwriter with Docker's settings: every cell but the last is padded.

    By columns (zip, max of lengths) and one format string per row length: a per-cell
    loop was a third of `ps`'s formatting at 3,000 rows."""
    widths = [0] * max(len(r) for r in rows)
    for length in {len(r) for r in rows}:
        columns = list(zip(*(r for r in rows if len(r) == length)))
        for i in range(length - 1):
            widths[i] = max(widths[i], max(map(len, columns[i])) + padding, minwidth)
    formats = {n: "".join("{:<%d}" % w for w in widths[:n - 1]) + "{}"
               for n in {len(r) for r in rows}}
    lines = []
    for r in rows:
        line = formats[len(r)].format(*r)
        lines.append(line if r[-1] else line.rstrip())
    return "\n".join(lines) + "\n"


def ps_table(ctrs: list[dict[str, Any]], no_trunc: bool = False,
             now: float | None = None) -> str:
    now = time.time() if now is None else now
    return tabwrite([HEADERS] + [row(c, now, no_trunc) for c in ctrs])


def brief_table(briefs: list[list[Any]], no_trunc: bool = False,
                now: float | None = None) -> str:
    """ps_table from containers' briefs (brief.brief_of)."""
    now = time.time() if now is None else now
    return tabwrite([HEADERS] + [brief_row(b, now, no_trunc) for b in briefs])


# -- --format rows and --filter (docker/cli's containerContext fields) -------------------

PS_HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS",
              "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}
PS_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "network")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def created_at(text: str) -> str:
    """Go's time.Time String() as `docker ps` prints CreatedAt: `2006-01-02 15:04:05 +0000 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(parse_time(text)))


def ps_row(ctr: dict[str, Any], now: float, no_trunc: bool = False) -> dict[str, str]:
    """The fields a `ps --format` template sees (json key order is Go's: sorted)."""
    cid, image, command, running_for, status, ports, name = row(ctr, now, no_trunc)
    nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
    labels = ctr["Config"].get("Labels") or {}
    return {
        "Command": command, "CreatedAt": created_at(ctr["Created"]), "ID": cid,
        "Image": image, "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "LocalVolumes": "0", "Mounts": "", "Names": name, "Networks": ",".join(sorted(nets)),
        "Ports": ports, "RunningFor": running_for, "Size": "0B",
        "State": ctr["State"].get("Status", "created"), "Status": status,
    }


def filter_containers(ctrs: list[dict[str, Any]], filters: dict[str, list[str]]
                      ) -> list[dict[str, Any]]:
    """Docker's ps filters: the values of one key are alternatives, keys all apply."""
    from minidock.runtime.listformat import labels_match, matches_text
    from minidock.errors import InvalidArgument
    for value in filters.get("status", []):
        if value not in STATUSES:
            raise InvalidArgument(f"Unrecognised filter value for status: {value}")
    tests = {
        "id": lambda c, v: c["Id"].startswith(v),
        "name": lambda c, v: matches_text(v, c["Name"]),
        "status": lambda c, v: c["State"].get("Status") == v,
        "exited": lambda c, v: (c["State"].get("Status") == "exited"
                                and str(c["State"].get("ExitCode")) == v),
        "ancestor": lambda c, v: v in (c["Config"].get("Image"), c["Image"])
        or c["Image"].removeprefix("sha256:").startswith(v.removeprefix("sha256:")),
        "network": lambda c, v: any(
            v == name or (e.get("NetworkID") or "").startswith(v)
            for name, e in ((c.get("NetworkSettings") or {}).get("Networks") or {}).items()),
    }
    out = []
    for c in ctrs:
        if "label" in filters and not labels_match(c["Config"].get("Labels"), filters["label"]):
            continue
        if all(any(tests[k](c, v) for v in vs) for k, vs in filters.items() if k in tests):
            out.append(c)
    return out
