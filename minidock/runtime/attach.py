"""A foreground CLI attached to a running container: wait, proxy signals, the terminal.

The container's output does not pass through the CLI: the monitor inherited the
CLI's stdout/stderr and writes to them directly (and to the log). The CLI only waits
for the exit code on the exit pipe, forwards SIGINT/SIGTERM/SIGHUP... to the container
(Docker's sig-proxy), and with -t puts its own terminal in raw mode and copies its
window size to the pty at start and on every SIGWINCH. If the CLI is killed the
container keeps running; the monitor still records its exit.
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its import builds three enums
from minidock.hints import TYPE_CHECKING, Any

from minidock.runtime.container import Container

if TYPE_CHECKING:
    from minidock.context import Context

_PROXIED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
            signal.SIGUSR1, signal.SIGUSR2)


def wait_exit(ctx: Context, ctr: Container, exit_r: int, tty: int | None, raw: bool = False) -> int:
    """Block until the monitor reports the exit; returns the container's exit code."""
    restore = raw_terminal() if raw else None
    master = tty
    old = {}
    try:
        if master is not None:
            copy_winsize(0, master)
            old[signal.SIGWINCH] = signal.signal(
                signal.SIGWINCH, lambda *_: copy_winsize(0, master))
        else:
            for sig in _PROXIED:
                old[sig] = signal.signal(sig, _proxy(ctr))
        data = b""
        while True:
            try:
                chunk = os.read(exit_r, 64)
            except InterruptedError:
                continue
            if not chunk:
                break
            data += chunk
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if restore:
            restore()
        os.close(exit_r)
        if master is not None:
            os.close(master)
    text = data.decode().strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return _code_from_store(ctx, ctr)


def _code_from_store(ctx: Context, ctr: Container) -> int:
    """The monitor died without a word: the record (repaired) knows the outcome."""
    from minidock.runtime import container as records
    from minidock.runtime.lifecycle import refresh
    fresh = records.get(ctx, ctr["Id"])
    return refresh(ctx, fresh)["State"]["ExitCode"] if fresh else 125


def _proxy(ctr: Container) -> Any:
    def handler(sig: int, _frame: Any) -> None:
        from minidock.runtime.lifecycle import signal_container
        signal_container(ctr, sig)
    return handler


def copy_winsize(src: int, dst: int) -> None:
    """Give the pty `dst` the window size of terminal `src` (no-op if not a tty)."""
    import fcntl
    import termios
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def raw_terminal() -> Any:
    """Put fd 0 in raw mode if it is a terminal; returns the function that restores."""
    if not os.isatty(0):
        return None
    import termios
    import tty
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    return lambda: termios.tcsetattr(0, termios.TCSADRAIN, saved)
