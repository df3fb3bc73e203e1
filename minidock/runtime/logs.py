"""The container log in Docker's json-file format, one JSON object per line:

    {"log":"hi\\n","stream":"stdout","time":"2026-11-28T16:48:17.027290074Z"}

The monitor writes it (`LogWriter`: each complete line becomes one entry, a trailing
partial line is kept until its newline or the end of the stream); `logs` reads it
(`read_entries`) and `logs -f` follows it with inotify plus the monitor's pidfd, so
following costs no polling.
"""

from __future__ import annotations

import json
import os
from typing import Iterator

from minidock.runtime.container import now_iso

_MAX_PARTIAL = 16 * 1024   # Docker cuts long lines into 16K entries


class LogWriter:
    """Appends entries to the log file; safe to use after a fork (plain fd)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial.get(stream, b"") + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        out = [self._entry(stream, line + b"\n") for line in lines]
        while len(rest) >= _MAX_PARTIAL:
            out.append(self._entry(stream, rest[:_MAX_PARTIAL]))
            rest = rest[_MAX_PARTIAL:]
        self.partial[stream] = rest
        if out:
            os.write(self.fd, b"".join(out))

    def close(self) -> None:
        tail = [self._entry(s, b) for s, b in self.partial.items() if b]
        if tail:
            os.write(self.fd, b"".join(tail))
        os.close(self.fd)

    @staticmethod
    def _entry(stream: str, data: bytes) -> bytes:
        text = data.decode("utf-8", "replace")
        return (json.dumps({"log": text, "stream": stream, "time": now_iso()},
                           separators=(",", ":")) + "\n").encode()


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
