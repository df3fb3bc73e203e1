"""The Go text/template subset that `inspect -f` scripts use, on JSON-shaped data.

Pure: `render(template, data) -> str`. Supported: text and `{{ }}` actions with `{{-`
/ `-}}` trimming; fields `.A.B` (also on variables: `$v.IPAddress`); `$` (the root);
string and number literals; pipelines with `|`; functions json, index, join, len,
upper, lower, title, split, print, println, printf (%s %d %v %q); `range` over lists
and maps (sorted keys, as Go), with `{{range $k, $v := .M}}` / `{{range $e := .L}}`;
`if` / `else` / `with`; `end`. Values print as Go prints them: maps as `map[k:v]`,
lists as `[a b]`, null as `<nil>` (a missing key gives `<no value>`).
"""

from __future__ import annotations

import json
import re
from minidock.hints import Any

from minidock.errors import InvalidArgument

_ACTION = re.compile(r"{{(-\s)?(.*?)(\s-)?}}", re.S)
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|`[^`]*`|[^\s|()]+|\|')
_MISSING = object()


class _Node:
    def __init__(self, kind: str, arg: Any = None) -> None:
        self.kind, self.arg = kind, arg
        self.body: list[Any] = []
        self.other: list[Any] = []
        self.vars: list[str] = []


def parse(template: str) -> list[Any]:
    """Text and action nodes, nested for range/if/with."""
    items: list[Any] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        items.append(text)
        items.append(m.group(2).strip())
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    if "{{" in template[pos:]:
        raise InvalidArgument("template: :1: unclosed action")
    items.append(template[pos:])
    root = _Node("root")
    stack = [root]
    for i, item in enumerate(items):
        cur = stack[-1]
        target = cur.other if getattr(cur, "in_else", False) else cur.body
        if i % 2 == 0:
            if item:
                target.append(item)
            continue
        word = item.split(None, 1)[0] if item else ""
        if word in ("range", "if", "with"):
            node = _Node(word, item[len(word):].strip())
            if word == "range":
                _range_vars(node)
            target.append(node)
            stack.append(node)
        elif word == "else":
            if len(stack) < 2:
                raise InvalidArgument("template: unexpected {{else}}")
            cur.in_else = True  # type: ignore[attr-defined]
        elif word == "end":
            if len(stack) < 2:
                raise InvalidArgument("template: unexpected {{end}}")
            stack.pop()
        elif item.startswith("/*"):
            continue
        else:
            target.append(_Node("action", item))
    if len(stack) != 1:
        raise InvalidArgument("template: unexpected EOF")
    return root.body


def _range_vars(node: _Node) -> None:
    head, sep, rest = node.arg.partition(":=")
    if sep:
        node.vars = [v.strip() for v in head.split(",")]
        node.arg = rest.strip()


def render(template: str, data: Any) -> str:
    out: list[str] = []
    _exec(parse(template), data, {"$": data}, out)
    return "".join(out)


def _exec(nodes: list[Any], dot: Any, env: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node.kind == "action":
            out.append(fmt(_pipeline(node.arg, dot, env)))
        elif node.kind in ("if", "with"):
            value = _pipeline(node.arg, dot, env)
            if _truth(value):
                _exec(node.body, value if node.kind == "with" else dot, env, out)
            else:
                _exec(node.other, dot, env, out)
        elif node.kind == "range":
            _range(node, dot, env, out)


def _range(node: _Node, dot: Any, env: dict[str, Any], out: list[str]) -> None:
    value = _pipeline(node.arg, dot, env)
    if isinstance(value, dict):
        pairs = [(k, value[k]) for k in sorted(value)]
    elif isinstance(value, list):
        pairs = list(enumerate(value))
    elif value in (None, _MISSING):
        pairs = []
    else:
        raise InvalidArgument(f"template: range can't iterate over {fmt(value)}")
    if not pairs:
        _exec(node.other, dot, env, out)
    for key, elem in pairs:
        scope = dict(env)
        if len(node.vars) == 1:
            scope[node.vars[0]] = elem
        elif len(node.vars) == 2:
            scope[node.vars[0]], scope[node.vars[1]] = key, elem
        _exec(node.body, elem, scope, out)


def _pipeline(text: str, dot: Any, env: dict[str, Any]) -> Any:
    tokens = _TOKEN.findall(text)
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if tok == "|":
            commands.append([])
        else:
            commands[-1].append(tok)
    value: Any = _MISSING
    for i, cmd in enumerate(commands):
        if not cmd:
            raise InvalidArgument(f"template: missing command in {text!r}")
        piped = [value] if i else []
        value = _command(cmd, piped, dot, env)
    return value


def _command(cmd: list[str], piped: list[Any], dot: Any, env: dict[str, Any]) -> Any:
    head = cmd[0]
    if head in FUNCS:
        args = [_operand(t, dot, env) for t in cmd[1:]] + piped
        return FUNCS[head](*args)
    if len(cmd) > 1 or piped:
        raise InvalidArgument(f"template: can't give argument to non-function {head}")
    return _operand(head, dot, env)


def _operand(tok: str, dot: Any, env: dict[str, Any]) -> Any:
    if tok.startswith('"'):
        return json.loads(tok)
    if tok.startswith("`"):
        return tok[1:-1]
    if tok.startswith("."):
        return _fields(dot, tok[1:])
    if tok.startswith("$"):
        name, dotpart, rest = tok.partition(".")
        if name not in env:
            raise InvalidArgument(f"template: undefined variable: {name}")
        return _fields(env[name], rest) if dotpart else env[name]
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if tok in ("true", "false"):
        return tok == "true"
    if tok == "nil":
        return None
    raise InvalidArgument(f'template: function "{tok}" not defined')


def _fields(value: Any, path: str) -> Any:
    for name in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(name, _MISSING)
        elif value is _MISSING or value is None:
            return _MISSING
        else:
            raise InvalidArgument(f"template: can't evaluate field {name} in type {_gotype(value)}")
    return value


def _gotype(value: Any) -> str:
    return {str: "string", bool: "bool", int: "int", float: "float64",
            list: "[]interface {}"}.get(type(value), "interface {}")


def _truth(value: Any) -> bool:
    return value is not _MISSING and bool(value)


def fmt(value: Any) -> str:
    """Go's default %v formatting of JSON-shaped values."""
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}" if abs(value) >= 1e21 else str(int(value))
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{fmt(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(fmt(v) for v in value) + "]"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(None if value is _MISSING else value, separators=(",", ":"))


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, _MISSING)
        elif isinstance(value, list) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise InvalidArgument(f"template: index out of range: {key}")
            value = value[key]
        elif value is None or value is _MISSING:
            return _MISSING
        else:
            raise InvalidArgument(f"template: can't index item of type {_gotype(value)}")
    return value


def _printf(form: str, *args: Any) -> str:
    values = iter(args)

    def sub(m: re.Match) -> str:
        verb = m.group(0)
        if verb == "%%":
            return "%"
        value = next(values, _MISSING)
        return json.dumps(value) if verb == "%q" else fmt(value)
    return re.sub(r"%[sdvq%]", sub, form)


FUNCS: dict[str, Any] = {
    "json": _json,
    "index": _index,
    "join": lambda items, sep: sep.join(fmt(i) for i in (items or [])),
    "len": lambda v: len(v) if v not in (None, _MISSING) else 0,
    "upper": lambda s: fmt(s).upper(),
    "lower": lambda s: fmt(s).lower(),
    "title": lambda s: fmt(s).title(),
    "split": lambda s, sep: fmt(s).split(sep),
    "print": lambda *a: "".join(fmt(v) for v in a),
    "println": lambda *a: " ".join(fmt(v) for v in a) + "\n",
    "printf": _printf,
}
