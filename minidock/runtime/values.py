"""Small value objects for the start path, without dataclasses.

`@dataclass` costs an import of dataclasses/inspect and an exec() per class (about
2 ms per class here); the start path of every container pays for each. `Values`
takes its fields from the class annotations, in order, with class attributes as
defaults (a list or dict default is copied per instance): keyword or positional
construction, equality and repr, which is all the runtime needs.
"""

from __future__ import annotations

from minidock.hints import Any


class Values:
    _fields: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init_subclass__(cls) -> None:
        own = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_")]
        cls._fields = tuple(f for f in cls._fields if f not in own) + tuple(own)
        cls._defaults = {**cls._defaults, **{n: cls.__dict__[n] for n in own if n in cls.__dict__}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__}: too many arguments")
        values = dict(zip(self._fields, args))
        for key, value in kwargs.items():
            if key not in self._fields or key in values:
                raise TypeError(f"{type(self).__name__}: bad argument {key!r}")
            values[key] = value
        for name in self._fields:
            if name in values:
                value = values[name]
            elif name in self._defaults:
                value = self._defaults[name]
                if isinstance(value, (list, dict)):
                    value = type(value)(value)
            else:
                raise TypeError(f"{type(self).__name__}: missing argument {name!r}")
            self.__dict__[name] = value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"
