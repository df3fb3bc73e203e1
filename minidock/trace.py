"""The pipeline trace: a tree of steps with durations and the kernel objects they made.

Imported only when tracing is on (`minidock --trace ...` or `MINIDOCK_TRACE=1|PATH`):
minidock.pipeline calls `begin` / `end` around every step and `note` for each object a
step makes (`+`) or removes (`-`). A span that opens while another is open is its child
(steps call sub-steps through the same Pipeline, so nesting follows the call stack).
When the outermost span of a command closes, its tree is written to stderr (or appended
to the file MINIDOCK_TRACE names):

    start                                                        21.30 ms
    ├─ initializeNetworking                                      10.02 ms
    │  ├─ allocateNetwork                                         4.10 ms
    │  │  └─ connectToNetwork bridge                              4.00 ms
    │  │     └─ CreateEndpoint                                    1.00 ms
    │  │          + endpoint 5f3a9c0d1e2b 172.17.0.2/16 02:42:ac:11:00:02
    ...

`parse` reads that text back (tests, bench/profile.py, the crash tests' step list).
"""

from __future__ import annotations

import os
import re
import sys
import time
from minidock.hints import Any, NamedTuple

_NAME_WIDTH = 58     # names (with their tree prefix) are padded to this column


class Span:
    """One step (or group of steps): its name, time, error and what it made."""

    __slots__ = ("name", "detail", "start", "ms", "error", "children", "notes", "pipeline")

    def __init__(self, name: str, detail: str = "", pipeline: bool = False) -> None:
        self.name, self.detail, self.pipeline = name, detail, pipeline
        self.start = time.perf_counter()
        self.ms = 0.0
        self.error = ""
        self.children: list[Span] = []
        self.notes: list[str] = []


_stack: list[Span] = []


def begin(name: str, detail: str = "", pipeline: bool = False) -> Span:
    """Open a span under the current one (a root when none is open); `pipeline` marks
    a Pipeline's own span (shown as "(pipeline)": not a step, so not a fault point)."""
    span = Span(name, detail, pipeline)
    if _stack:
        _stack[-1].children.append(span)
    _stack.append(span)
    return span


def end(span: Span, error: BaseException | None = None) -> None:
    """Close `span` (and any child left open by an exception); emit a finished root."""
    span.ms = (time.perf_counter() - span.start) * 1000
    if error is not None:
        span.error = str(error).splitlines()[0] if str(error) else type(error).__name__
    while _stack and _stack[-1] is not span:
        _stack.pop()
    if _stack:
        _stack.pop()
    if not _stack:
        emit(render(span))


def note(sign: str, kind: str, text: str) -> None:
    """Record an object the current step made (`+`) or removed (`-`)."""
    line = f"{sign} {kind} {text}"
    if _stack:
        _stack[-1].notes.append(line)
    else:
        emit(line + "\n")


def detail(text: str) -> None:
    """Name the object the current step works on (shown after the step's name)."""
    if _stack:
        _stack[-1].detail = text


def render(root: Span) -> str:
    out: list[str] = []
    _render(root, "", "", out)
    return "".join(out)


def _render(span: Span, head: str, tail: str, out: list[str]) -> None:
    label = head + span.name + (f" {span.detail}" if span.detail else "") \
        + (" (pipeline)" if span.pipeline else "")
    line = f"{label.ljust(_NAME_WIDTH)} {span.ms:8.2f} ms"
    if span.error:
        line += f"  FAILED: {span.error}"
    out.append(line + "\n")
    pad = tail + ("│  " if span.children else "   ")
    for text in span.notes:
        out.append(f"{pad}{text}\n")
    for i, child in enumerate(span.children):
        last = i == len(span.children) - 1
        _render(child, tail + ("└─ " if last else "├─ "), tail + ("   " if last else "│  "), out)


def emit(text: str) -> None:
    dest = os.environ.get("MINIDOCK_TRACE", "1")
    if dest in ("1", "stderr", "true", "yes"):
        sys.stderr.write(text)
        sys.stderr.flush()
        return
    with open(dest, "a", encoding="utf-8") as fh:
        fh.write(text)


# -- reading a trace back ---------------------------------------------------------------

class Node(NamedTuple):
    name: str
    detail: str
    ms: float
    error: str
    depth: int
    notes: list[str]
    children: list["Node"]
    pipeline: bool      # a Pipeline's own span, not a step


_GLYPHS = re.compile(r"^((?:│  |   |├─ |└─ )*)")
_STEP = re.compile(r"^(?P<name>\S+)(?: (?P<detail>.*?))?\s+(?P<ms>\d+\.\d+) ms"
                   r"(?:  FAILED: (?P<error>.*))?$")


def parse(text: str) -> list[Node]:
    """The root nodes of every tree in `text` (other lines are ignored)."""
    roots: list[Node] = []
    stack: list[Node] = []
    for raw in text.splitlines():
        prefix = _GLYPHS.match(raw).group(1)  # type: ignore[union-attr]
        body = raw[len(prefix):]
        stripped = body.strip()
        if stripped[:2] in ("+ ", "- ") and stack:
            stack[-1].notes.append(stripped)
            continue
        m = _STEP.match(body)
        if not m:
            continue
        depth = len(prefix) // 3
        text = (m["detail"] or "").strip()
        pipe = text.endswith("(pipeline)")
        text = text[:-len("(pipeline)")].strip() if pipe else text
        node = Node(m["name"], text, float(m["ms"]), m["error"] or "", depth, [], [], pipe)
        del stack[depth:]
        if depth == 0:
            roots.append(node)
        elif stack:
            stack[-1].children.append(node)
        else:
            continue
        stack.append(node)
    return roots


def walk(nodes: list[Node], path: tuple[str, ...] = ()) -> Any:
    """(path of names from the root, node) for every node, depth first."""
    for node in nodes:
        yield path + (node.name,), node
        yield from walk(node.children, path + (node.name,))
