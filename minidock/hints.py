"""The names minidock's modules take from `typing`, without importing `typing`.

Every minidock command starts a new interpreter, and `typing` is among the costliest
imports on the start path (~2 ms), and a `typing.NamedTuple` class costs ~0.3 ms to
create against ~0.04 ms for `collections.namedtuple` (the start path defines a dozen).
Every module has `from __future__ import annotations`, so annotations are strings that
nothing evaluates: at run time a name from here only has to exist, and to work where a
module uses it as a value. Type checkers read the TYPE_CHECKING branch (`typing`).

Used as values: `Any` in aliases (`Container = dict[str, Any]`), `Callable` in an
alias, `NamedTuple` and `Protocol` as base classes.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import (IO, Any, Callable, Iterable, Iterator, NamedTuple, Protocol,
                        Sequence)
else:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from collections import namedtuple as _namedtuple

    Any = object
    IO = object

    class Protocol:
        """A structural type for checkers; an ordinary base class at run time."""

        __slots__ = ()

    class _NamedTupleMeta(type):
        """`class P(NamedTuple): x: int; y: str = ""` -> a collections.namedtuple
        with those fields and defaults, the class body's methods and docstring on a
        subclass of it (as typing.NamedTuple, without its type checks)."""

        def __new__(mcs, name: str, bases: tuple, ns: dict) -> type:
            if ns.get("_root"):
                return super().__new__(mcs, name, bases, ns)
            fields = list(ns.get("__annotations__", {}))
            defaults = [ns[f] for f in fields if f in ns]
            if defaults and any(f not in ns for f in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{name}: a field without a default follows one with it")
            base = _namedtuple(name, fields, defaults=defaults or None,
                               module=ns.get("__module__"))
            body = {k: v for k, v in ns.items() if k not in fields}
            body["__slots__"] = ()
            return type(name, (base,), body)

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base class for typed named tuples (see _NamedTupleMeta)."""

        _root = True

__all__ = ["IO", "TYPE_CHECKING", "Any", "Callable", "Iterable", "Iterator", "NamedTuple",
           "Protocol", "Sequence"]
