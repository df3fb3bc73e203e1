"""The load/import progress line (pure parts) and the reader that draws it."""

from __future__ import annotations

import io

from minidock.image.progress import Progress, bar, line


def test_bar_is_dockers_fifty_columns() -> None:
    assert bar(0, 100) == "[>" + " " * 49 + "]"
    assert bar(50, 100) == "[" + "=" * 25 + ">" + " " * 24 + "]"
    assert bar(100, 100) == "[" + "=" * 49 + ">]"
    assert len(bar(37, 100)) == 52


def test_line_with_and_without_a_total() -> None:
    assert line("5f3a9c0d1e2b", "Loading layer", 1_200_000, 4_300_000).endswith(
        "]  1.2MB/4.3MB")
    assert line("rootfs", "Importing", 5000, 0) == "rootfs: Importing  5kB"


def test_reader_passes_bytes_through_and_ends_the_line() -> None:
    out = io.StringIO()
    raw = io.BytesIO(b"x" * 1000)
    p = Progress(raw, "abc", out)
    assert p.read(10) == b"x" * 10
    p.seek(0)
    assert p.read() == b"x" * 1000 and p.tell() == 1000
    p.close()
    assert out.getvalue().endswith("]  1kB/1kB\x1b[K\n") and raw.closed
