"""argparse set up the way Docker parses flags: errors exit 125 with one line."""

from __future__ import annotations

import argparse

from minidock.errors import InvalidArgument


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise InvalidArgument (exit 125) instead of exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InvalidArgument(f"{message}\nSee '{self.prog} --help'.")


def parser(prog: str, description: str = "", **kwargs: object) -> Parser:
    return Parser(prog=f"minidock {prog}", description=description, **kwargs)  # type: ignore[arg-type]
