"""A progress bar for `load` and `import` on a terminal (Docker's "Loading layer" line).

`Progress(raw, label, out)` wraps the reader of one layer: every read redraws, at most
every 0.1 s, `<id>: Loading layer [=====>     ]  1.2MB/4.3MB` on `out` with a carriage
return, and `finish()` ends the line. The CLI only wraps readers when its stdout is a
terminal, as docker/cli shows the JSON progress stream only then: piped output is
exactly the lines it was before.
"""

from __future__ import annotations

import os
import time
from minidock.hints import IO, Any

from minidock.image.humanize import human_size

WIDTH = 50


def bar(done: int, total: int) -> str:
    """`[=====>     ]` as docker/pkg/jsonmessage draws it (50 columns). Pure."""
    if total <= 0:
        return ""
    filled = min(WIDTH, WIDTH * done // total)
    arrow = ">" if filled < WIDTH else ""
    if filled == WIDTH:
        return "[" + "=" * (WIDTH - 1) + ">]"
    return "[" + "=" * filled + arrow + " " * (WIDTH - filled - len(arrow)) + "]"


def line(label: str, action: str, done: int, total: int) -> str:
    """`abc123: Loading layer [==>   ]  1.2MB/4.3MB` (no total: bytes only). Pure."""
    if total > 0:
        return f"{label}: {action} {bar(done, total)}  {human_size(done)}/{human_size(total)}"
    return f"{label}: {action}  {human_size(done)}"


class Progress:
    """A seekable binary reader that draws its position while it is read."""

    def __init__(self, raw: IO[bytes], label: str, out: Any, action: str = "Loading layer"
                 ) -> None:
        self.raw, self.label, self.out, self.action = raw, label, out, action
        self.total = _size(raw)
        self._drawn = 0.0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self._draw()
        return data

    def readinto(self, buf: Any) -> int:
        count = self.raw.readinto(buf)  # type: ignore[attr-defined]
        self._draw()
        return count

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self.finish()
        finally:
            self.raw.close()

    def finish(self) -> None:
        if self.out is not None:
            self.out.write("\r" + line(self.label, self.action, self.tell(), self.total)
                           + "\x1b[K\n")
            self.out.flush()
            self.out = None

    def _draw(self) -> None:
        now = time.monotonic()
        if self.out is None or now - self._drawn < 0.1:
            return
        self._drawn = now
        self.out.write("\r" + line(self.label, self.action, self.tell(), self.total) + "\x1b[K")
        self.out.flush()


def _size(raw: IO[bytes]) -> int:
    try:
        pos = raw.tell()
        end = raw.seek(0, os.SEEK_END)
        raw.seek(pos)
        return end
    except (OSError, ValueError, AttributeError):
        return 0
