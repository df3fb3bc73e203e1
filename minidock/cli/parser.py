"""argparse set up the way Docker parses flags: errors exit 125 with one line."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from typing import Any

from minidock.errors import InvalidArgument

# argparse translates each of its own messages through gettext, and gettext looks for
# a catalogue on disk at every call (and imports `locale` at the first): ~1-2 ms per
# command for messages that are always English here, as Docker's are.
argparse._ = lambda message: message  # type: ignore[attr-defined]
argparse.ngettext = lambda one, many, n: one if n == 1 else many  # type: ignore[attr-defined]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise InvalidArgument (exit 125) instead of exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidArgument(f"{message}\nSee '{self.prog} --help'.")


def parser(prog: str, description: str = "", **kwargs: object) -> Parser:
    return Parser(prog=f"minidock {prog}", description=description, **kwargs)  # type: ignore[arg-type]


def report(err: Exception) -> None:
    """Docker's line for an error about one of several objects (the others go on)."""
    import sys
    print(f"Error response from daemon: {err}", file=sys.stderr)


def for_each(refs: list[str], fn: Any) -> int:
    """Apply `fn(ref)` to every ref, Docker-style: a failure is reported and the rest
    still run; exit status 1 if any failed. `fn` prints its own output."""
    from minidock.errors import MinidockError
    status = 0
    for ref in refs:
        try:
            fn(ref)
        except MinidockError as err:
            report(err)
            status = 1
    return status


def confirm(warning: str) -> bool:
    """The prune prompt: the warning, then `Are you sure ...? [y/N]` on stdin."""
    import sys
    sys.stdout.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
