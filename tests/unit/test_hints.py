"""minidock.hints: typing's names without typing; NamedTuple as typing's."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from minidock.hints import NamedTuple


class Point(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    @property
    def named(self) -> bool:
        return bool(self.label)


class TPoint(typing.NamedTuple):
    x: int
    y: int = 0
    label: str = ""


def test_behaves_as_typing_namedtuple() -> None:
    p, t = Point(1), TPoint(1)
    assert p == t == (1, 0, "")
    assert repr(p) == "Point(x=1, y=0, label='')" and repr(t) == "TPoint(x=1, y=0, label='')"
    assert Point._fields == TPoint._fields
    assert Point._field_defaults == TPoint._field_defaults
    q = p._replace(y=-2, label="a")
    assert type(q) is Point and q.norm1() == 3 and q.named
    assert Point._make([3, 4, "b"]) == (3, 4, "b")
    assert q._asdict() == {"x": 1, "y": -2, "label": "a"}
    assert Point.__doc__ == "A point." and Point.__module__ == __name__
    x, y, label = q
    assert (x, y, label) == (1, -2, "a")
    assert hash(p) == hash((1, 0, ""))
    with pytest.raises(AttributeError):
        p.z = 1                                     # type: ignore[attr-defined]


def test_a_field_without_default_after_one_with_it_is_refused() -> None:
    with pytest.raises(TypeError):
        class Bad(NamedTuple):                      # noqa: F841
            a: int = 0
            b: int


def test_the_start_path_does_not_import_typing() -> None:
    code = ("import sys; from minidock.cli import main\n"
            "from minidock.runtime import start, container, lifecycle\n"
            "from minidock.net import api, sandbox, endpoint, network\n"
            "print('typing' in sys.modules)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
    assert out.stdout.strip() == "False"
