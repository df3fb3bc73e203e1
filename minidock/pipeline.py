"""Named steps with undo: the shape of every setup sequence in minidock.

A pipeline (container start, network create, connect, link) runs small named steps.
Each step that succeeds registers its inverse; if a later step fails, the inverses run
in reverse order and the error names the failing step. This is the article's "setup
queue" plus libnetwork's deferred rollbacks, made explicit:

    with Pipeline("run") as p:
        ep = p.step("create_endpoint", driver.create_endpoint, nw, ep_id)
        p.undo("create_endpoint", driver.delete_endpoint, nw, ep_id)
        p.step("SetKey", sandbox.set_key, pid)
        ...
        p.commit()            # success: forget the undo list

Two cross-cutting hooks cost nothing when off:

* ``MINIDOCK_FAULT=<step>`` raises FaultInjected right after the named step succeeds
  (its undo is already registered, so the rollback is exercised); ``<step>:kill``
  SIGKILLs the process there instead (what reconciliation must survive). Every step is
  a fault point: one with an undo fires when the undo is registered, one without fires
  when the pipeline moves on (next step, commit). Teardown steps (`best_effort`) fire
  after each step. Several specs may be given, comma-separated.
* ``minidock --trace`` or ``MINIDOCK_TRACE=1`` (or a file path) prints a tree of the
  steps (nested as they call each other, each with its duration) and of the kernel
  objects each made or removed (`note`), rendered by minidock.trace. When off, that
  module is never imported and no string is built: callers that describe an object
  guard the f-string with ``if pipeline.TRACING:``.
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its import builds three enums
import sys
from minidock.hints import Any, Callable

from minidock.errors import FaultInjected, MinidockError

_FAULT = os.environ.get("MINIDOCK_FAULT", "")
_TRACE = os.environ.get("MINIDOCK_TRACE", "")
TRACING = bool(_TRACE)      # read by callers before they build a note's text


def _tracer() -> Any:
    from minidock import trace
    return trace


def note(sign: str, kind: str, text: str) -> None:
    """An object the current step made (`+`) or removed (`-`): `veth`, `addr`, `route`,
    `iptables`, `mount`, `netns`, `proxy`, `dns`, ... (callers check TRACING first)."""
    if _TRACE:
        _tracer().note(sign, kind, text)


def detail(text: str) -> None:
    """Name what the current step works on (a network, a container); tracing only."""
    if _TRACE:
        _tracer().detail(text)


class _NoSpan:
    """The group() of a run with neither trace nor fault hook: does nothing."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class _Group:
    """A named group of steps (the article's function that calls them): a span in the
    trace, and a fault point once it completes (unless it is a whole `section`)."""

    def __init__(self, name: str, detail: str, section: bool = False) -> None:
        self.name = "" if section else name
        self.span = _tracer().begin(name, detail, pipeline=section) if _TRACE else None

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.span is not None:
            _tracer().end(self.span, exc)
        if exc_type is None and self.name:
            fault_point(self.name)


def group(name: str, detail: str = "") -> Any:
    """`with group("initializeNetworking"): ...` nests the steps run inside under one
    name in the trace; free (a shared no-op object) when tracing and faults are off."""
    if not (_TRACE or _FAULT):
        return _NO_SPAN
    return _Group(name, detail)


def section(name: str, detail: str = "") -> Any:
    """Like a Pipeline's own span (`rm web`): one tree in the trace for a command whose
    steps are best-effort ones; not a step, so not a fault point."""
    if not _TRACE:
        return _NO_SPAN
    return _Group(name, detail, section=True)


def fault_point(name: str) -> None:
    """Called right after step `name`; acts only when MINIDOCK_FAULT names it."""
    if not _FAULT:
        return
    for spec in _FAULT.split(","):
        step, _, how = spec.partition(":")
        if step == name:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise FaultInjected(f"fault injected after step {name}")


class Pipeline:
    """Runs named steps and rolls back the done ones on failure (see module doc)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._span: Any = None
        self._undo: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._pending = ""   # a step done whose fault point has not fired yet
        self._last = ""      # the last step run (an undo of it is not a step of its own)

    def _fire_pending(self) -> None:
        if self._pending:
            name, self._pending = self._pending, ""
            fault_point(name)

    def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one step; on failure re-raise with the step named (rollback on exit)."""
        if _FAULT:
            self._fire_pending()
        span = _tracer().begin(name) if _TRACE else None
        try:
            result = fn(*args, **kwargs)
        except OSError as err:
            if span is not None:
                _tracer().end(span, err)
            from minidock.errors import Internal
            raise Internal(f"{self.name}: step {name} failed: {err}") from err
        except BaseException as err:
            if span is not None:
                _tracer().end(span, err)
            raise
        if span is not None:
            _tracer().end(span)
        self._last = name
        if _FAULT:
            self._pending = name
        return result

    def undo(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Register the inverse of step `name`, then hit the fault point for it."""
        self._undo.append((name, fn, args, kwargs))
        if self._pending == name:
            self._pending = ""
        if _TRACE and self._last != name:   # an undo with no step of its own: a fault point
            _tracer().end(_tracer().begin(name))
        if _FAULT:
            self._fire_pending()
            fault_point(name)

    def done(self, name: str) -> None:
        """Mark a step that has no inverse (for the fault hook and trace symmetry)."""
        if self._pending == name:
            self._pending = ""
        if _FAULT:
            self._fire_pending()
            fault_point(name)

    def commit(self) -> None:
        """Everything succeeded: the undo list is dropped."""
        if _FAULT:
            self._fire_pending()
        self._undo.clear()

    def rollback(self) -> list[str]:
        """Run every registered inverse, newest first; keep going on errors."""
        errors: list[str] = []
        while self._undo:
            name, fn, args, kwargs = self._undo.pop()
            span = _tracer().begin("undo_" + name) if _TRACE else None
            try:
                fn(*args, **kwargs)
            except Exception as err:  # teardown is best-effort: collect, continue
                errors.append(f"undo {name}: {err}")
                if span is not None:
                    _tracer().end(span, err)
                    span = None
            if span is not None:
                _tracer().end(span)
        return errors

    def __enter__(self) -> "Pipeline":
        if _TRACE:
            self._span = _tracer().begin(self.name, pipeline=True)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None:
            report(self.rollback(), f"{self.name}: rollback")
        if self._span is not None:
            _tracer().end(self._span, exc)


def report(errors: list[str], what: str) -> list[str]:
    """Teardown errors, one line each on stderr (the command's status says the rest);
    returns them."""
    for line in errors:
        print(f"minidock: {what}: {line}", file=sys.stderr)
    return errors


def best_effort(steps: list[tuple[str, Callable[[], Any]]], pipeline: str = "teardown"
                ) -> list[str]:
    """Run teardown steps in order, all of them, and return the errors joined later.

    Teardown is idempotent: each step must treat "already gone" as success. The fault
    hook fires after each step (FaultInjected propagates: it simulates a crash).
    """
    if _TRACE:
        return _traced_best_effort(steps, pipeline)
    errors: list[str] = []
    for name, fn in steps:
        try:
            fn()
        except FaultInjected:
            raise
        except Exception as err:
            errors.append(f"{name}: {err}")
        fault_point(name)
    return errors


def _traced_best_effort(steps: list[tuple[str, Callable[[], Any]]], pipeline: str
                        ) -> list[str]:
    """best_effort with a span per step (under a `pipeline` root when none is open)."""
    tr = _tracer()
    root = tr.begin(pipeline, pipeline=True) if not tr._stack else None
    errors: list[str] = []
    try:
        for name, fn in steps:
            span = tr.begin(name)
            try:
                fn()
            except FaultInjected as err:
                tr.end(span, err)
                raise
            except Exception as err:
                errors.append(f"{name}: {err}")
                tr.end(span, err)
            else:
                tr.end(span)
            fault_point(name)
    finally:
        if root is not None:
            tr.end(root)
    return errors


_later: list[Callable[[], Any]] | None = None
_waits: list[Callable[[], Any]] | None = None


def later(fn: Callable[[], Any]) -> None:
    """Run a kernel-only cleanup now, or queue it inside `deferred_kernel_cleanup`."""
    if _later is None:
        fn()
    else:
        _later.append(fn)


def later_wait(fn: Callable[[], Any]) -> bool:
    """Queue a wait for the kernel's asynchronous teardown (a netns's veths going) to
    the end of the active `deferred_kernel_cleanup(waits=True)` block, after its other
    cleanups; False (the caller waits now) outside one."""
    if _waits is None:
        return False
    _waits.append(fn)
    return True


class deferred_kernel_cleanup:
    """Inside it, `later(fn)` queues `fn` instead of running it; the queue runs (best
    effort) on exit of the block.

    Some teardown is kernel-only and slow: removing a veth's anti-spoofing elements is
    one netlink batch whose commit waits for an RCU grace period (~15 ms). It touches
    no record and no name, address or port, so a monitor tearing down a `--rm`
    container can tell the waiting CLI first and run the queue right after.

    `waits=True` (rm): the waits for the kernel's removal of a sandbox's veths
    (another RCU-bound step, run by the kernel once the key is unmounted) are queued
    too (`later_wait`), after the rest, so both grace periods and the rest of the
    removal overlap instead of following each other; all is done when the block ends.
    """

    def __init__(self, waits: bool = False) -> None:
        self.waits = waits

    def __enter__(self) -> "deferred_kernel_cleanup":
        global _later, _waits
        _later = []
        if self.waits:
            _waits = []
        return self

    def __exit__(self, *exc: object) -> None:
        global _later, _waits
        queue, _later = _later or [], None
        waits: list[Callable[[], Any]] = []
        if self.waits:
            waits, _waits = _waits or [], None
        report(best_effort([("kernel_cleanup", fn) for fn in queue], "teardown"), "teardown")
        report(best_effort([("veths_gone", fn) for fn in waits], "teardown"), "teardown")
