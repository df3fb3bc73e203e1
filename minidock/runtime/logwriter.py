"""Writing the container log in Docker's json-file format, one JSON object per line:

    {"log":"hi\\n","stream":"stdout","time":"2026-11-28T16:48:17.027290074Z"}

Each complete line becomes one entry; a trailing partial line is kept until its
newline or the end of the stream; lines longer than 16 KiB are cut as Docker cuts them.

The writer runs in every container's monitor for the container's whole life, so it
imports nothing heavy: no `json` package (its decoder pulls in `re`), only the C
string encoder `json.dumps` itself uses, so the bytes are identical; no `os` module
(`posix` is what it wraps). Reading the log is logs.py's job.
"""

from __future__ import annotations

import posix
import time
from _json import encode_basestring_ascii as _quote

MAX_PARTIAL = 16 * 1024   # Docker cuts long lines into 16K entries


def timestamp(ns: int | None = None) -> str:
    """Docker's timestamp, RFC 3339 with nanoseconds, UTC, "Z" (container.now_iso's
    format, kept here so the monitor does not import the container record module)."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def entry(stream: str, data: bytes, ns: int | None = None) -> bytes:
    """One json-file line, exactly as json.dumps(..., separators=(",", ":")) makes it."""
    text = _quote(data.decode("utf-8", "replace"))
    return f'{{"log":{text},"stream":{_quote(stream)},"time":"{timestamp(ns)}"}}\n'.encode()


class LogWriter:
    """Appends entries to the log file; a plain fd, so it survives fork and exec."""

    def __init__(self, path: str) -> None:
        flags = posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC
        self.fd = posix.open(path, flags, 0o640)
        self.partial: dict[str, bytes] = {}

    @classmethod
    def adopt(cls, fd: int) -> "LogWriter":
        """A writer on an already open log fd (the monitor after its exec)."""
        writer = cls.__new__(cls)
        writer.fd = fd
        writer.partial = {}
        return writer

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial.get(stream, b"") + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        out = [entry(stream, line + b"\n") for line in lines]
        while len(rest) >= MAX_PARTIAL:
            out.append(entry(stream, rest[:MAX_PARTIAL]))
            rest = rest[MAX_PARTIAL:]
        self.partial[stream] = rest
        if out:
            _write_all(self.fd, b"".join(out))

    def close(self) -> None:
        tail = [entry(s, b) for s, b in self.partial.items() if b]
        if tail:
            _write_all(self.fd, b"".join(tail))
        posix.close(self.fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view):]
