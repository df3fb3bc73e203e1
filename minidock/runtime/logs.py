"""The container log in Docker's json-file format, one JSON object per line:

    {"log":"hi\\n","stream":"stdout","time":"2026-11-28T16:48:17.027290074Z"}

The monitor writes it (`LogWriter`, in logwriter.py: each complete line becomes one
entry, a trailing partial line is kept until its newline or the end of the stream);
`logs` reads it (`read_entries`) and `logs -f` follows it with inotify plus the
monitor's pidfd, so following costs no polling.
"""

from __future__ import annotations

import json
from minidock.hints import Iterator

# the writer lives apart: it runs in every monitor, which must import little
from minidock.runtime.logwriter import LogWriter  # noqa: F401


def parse_entries(data: bytes) -> Iterator[tuple[str, str]]:
    """(stream, text) for each complete line of json-file content."""
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        yield entry.get("stream", "stdout"), entry.get("log", "")
