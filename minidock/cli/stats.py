"""`stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]`, as `docker stats`.

Two samples one second apart give the CPU %; the stream redraws the table every
second (clear screen + home, as the Docker CLI) until interrupted.
"""

from __future__ import annotations

import sys
import time
from minidock.hints import TYPE_CHECKING

from minidock.cli.containers import parser

if TYPE_CHECKING:
    from minidock.context import Context


def cmd_stats(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import container as records
    from minidock.runtime import stats
    from minidock.runtime.lifecycle import refresh, refresh_all
    p = parser("stats", "Display a live stream of container(s) resource usage statistics")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format", default="")
    p.add_argument("containers", nargs="*")
    ns = p.parse_args(argv)
    fmt = ns.format or stats.DEFAULT_FORMAT
    if ns.containers:
        ctrs = [refresh(ctx, records.load(ctx, ref)) for ref in ns.containers]
    else:
        ctrs = [c for c in refresh_all(ctx) if ns.all or c["State"].get("Running")]
    before = {c["Id"]: stats.sample(c) for c in ctrs}
    while True:
        time.sleep(1.0)
        rows = []
        for c in ctrs:
            after = stats.sample(c) if c["State"].get("Running") else stats.Sample()
            r = stats.row(c, before[c["Id"]], after)
            if ns.no_trunc:
                r["ID"] = r["Container"] = c["Id"]
            rows.append(r)
            before[c["Id"]] = after
        out = stats.render(fmt, rows)
        if ns.no_stream:
            sys.stdout.write(out)
            return 0
        sys.stdout.write("\033[2J\033[H" + out)
        sys.stdout.flush()
