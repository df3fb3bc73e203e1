"""The per-container monitor (podman's conmon): the parent of the container's init.

The CLI double-forks it (fork, setsid, fork) so it outlives the CLI and is in no
terminal's process group. The monitor unshares CLONE_NEWPID, forks the init child
(PID 1 of the new pid namespace), reports the child's host PID on the sync pipe, then:

* copies the container's stdout/stderr (or the pty master) into the json-file log and,
  when attached, to the stdout/stderr it inherited from the CLI (a killed CLI does not
  stop the container: its output keeps going to the log);
* waits for the CLI's verdict ("1": started and recorded; "0" or EOF: the start failed
  and the CLI rolls everything back, so the monitor leaves without touching anything);
* reaps the init (pidfd), records ExitCode / FinishedAt, releases networking, applies
  --rm, and finally writes the exit code on the exit pipe for a waiting CLI.
"""

from __future__ import annotations

import os
import select
import signal
from minidock.runtime.values import Values
from typing import Any

from minidock.runtime import syscalls as sc
from minidock.runtime.init import InitFds, container_init


class MonitorFds(Values):
    """Pipe ends the CLI made for one start (see start.py for the protocol)."""

    sync_w: int
    go_r: int
    verdict_r: int
    exit_w: int
    attach: bool                       # copy output to the inherited fds 1 and 2
    stdin: int | None = None           # -i: the CLI's fd 0
    tty: bool = False                  # -t: the init makes a pty and sends the master
    winsize: bytes | None = None       # -t: the CLI terminal's size
    close: list[int] = []  # the CLI's ends, closed here


def spawn(ctx: Any, ctr: dict[str, Any], netns: tuple[str, str | None],
          fds: MonitorFds) -> int:
    """Fork the monitor; returns its pid (the container pid arrives later on the sync
    pipe). Called in the CLI.

    One fork, not a double fork: the monitor calls setsid() so no terminal signal of
    the CLI's session reaches it, and when the CLI exits the kernel reparents it to
    init (or the nearest subreaper) by itself. A double fork would add a second fork
    and a wait to every start for nothing.
    """
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setsid()
        try:
            _monitor_main(ctx, ctr, netns, fds)
        except BaseException as err:  # tell the CLI, which rolls back
            import traceback
            traceback.print_exc()
            try:
                os.write(fds.sync_w, f"E125 monitor: {err}\n".encode()[:4000])
            except OSError:
                pass
    finally:
        os._exit(0)


def _monitor_main(ctx: Any, ctr: dict[str, Any], netns: tuple[str, str | None],
                  fds: MonitorFds) -> None:
    for fd in fds.close:
        os.close(fd)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
        signal.signal(sig, signal.SIG_IGN)
    if not fds.attach:  # keep nothing of the CLI's: `$(minidock run -d ...)` returns
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1):
            os.dup2(null, target)
        os.close(null)
        err = os.open(os.path.join(ctx.run_dir(ctr["Id"]), "monitor.log"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(err, 2)
        os.close(err)
    sc.unshare(sc.CLONE_NEWPID)
    from minidock.runtime.logs import LogWriter
    log = LogWriter(ctr["LogPath"])     # before the CLI can fail and remove the dir
    null = os.open(os.devnull, os.O_RDONLY)
    if fds.tty:
        import socket
        mine, theirs = socket.socketpair()
        stdin = fds.stdin if fds.stdin is not None else null
        child_fds = InitFds(null, null, null, fds.sync_w, fds.go_r,
                            console=theirs.detach(), winsize=fds.winsize)
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = fds.stdin if fds.stdin is not None else null
        child_fds = InitFds(stdin, out_w, err_w, fds.sync_w, fds.go_r)
        outputs = {out_r: "stdout", err_r: "stderr"}
    pid = os.fork()
    if pid == 0:
        container_init(ctr, ctx.container_dir(ctr["Id"]), netns, child_fds)
    for fd in {child_fds.stdout, child_fds.stderr, fds.go_r, child_fds.console}:
        if fd is not None and fd != null:
            _close_quietly(fd)
    os.write(fds.sync_w, f"P{pid}\n".encode())
    os.close(fds.sync_w)
    master = None
    if fds.tty:
        master = _receive_master(mine)
        outputs = {master: "stdout"} if master is not None else {}
    status = _pump(log, pid, outputs, fds, master)
    _finish(ctx, ctr, pid, status, fds)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _receive_master(sock: Any) -> int | None:
    """The pty master the init sends (None if it died before)."""
    import socket
    try:
        _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
    except OSError:
        fds = []
    sock.close()
    return fds[0] if fds else None


def _pump(log: Any, pid: int, outputs: dict[int, str], fds: MonitorFds,
          master: int | None) -> int:
    """Copy output until the init exits and its output is drained; returns wait status."""
    pidfd = os.pidfd_open(pid)
    stdin = fds.stdin if (master is not None and fds.stdin is not None) else None
    live = dict(outputs)
    sinks = {"stdout": 1, "stderr": 2} if fds.attach else {}
    status = None
    while live or status is None:
        watch = [*live, *([pidfd] if status is None else []), *([stdin] if stdin is not None else [])]
        ready, _, _ = select.select(watch, [], [])
        if pidfd in ready:
            status = os.waitpid(pid, 0)[1]
            os.close(pidfd)
            if master is not None:
                # every process of the container is gone now, but a reader of the
                # pty slave (a CLI's winsize fd) may keep it open: drain, do not wait
                stdin = None
                os.set_blocking(master, False)
                ready = [master]
        for fd in ready:
            if fd == pidfd:
                continue
            if fd == stdin:
                data = _read(fd)
                if data:
                    _write_all(master, data)  # type: ignore[arg-type]
                else:
                    stdin = None
                continue
            while True:
                data = _read(fd)
                if data:
                    _copy(log, live[fd], data, sinks)
                if not data or status is None or fd != master:
                    break
            if not data:
                del live[fd]
                os.close(fd)
    log.close()
    return status  # type: ignore[return-value]


def _copy(log: Any, stream: str, data: bytes, sinks: dict[str, int | None]) -> None:
    log.write(stream, data)
    sink = sinks.get(stream)
    if sink is not None and not _write_all(sink, data):
        sinks[stream] = None


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO on a pty master once the last slave closes
        return b""


def _write_all(fd: int, data: bytes) -> bool:
    try:
        while data:
            data = data[os.write(fd, data):]
        return True
    except OSError:
        return False


def exit_code(status: int) -> int:
    """Docker's exit code from a wait status: the code, or 128+N when killed by N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _finish(ctx: Any, ctr: dict[str, Any], pid: int, status: int, fds: MonitorFds) -> None:
    verdict = os.read(fds.verdict_r, 1)
    if verdict != b"1":
        os._exit(0)            # the CLI rolls back the failed start
    code = exit_code(status)
    from minidock.context import Context
    from minidock.runtime import lifecycle
    fresh = Context(root=ctx.root, exec_root=ctx.exec_root, config_path=ctx.config_path)
    report = _Reporter(fds.exit_w, code)
    try:
        lifecycle.record_exit(fresh, ctr["Id"], pid, code, recorded=report)
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        report()
        os._exit(0)


class _Reporter:
    """Tells a waiting CLI the exit code, once (nobody may be listening)."""

    def __init__(self, exit_w: int, code: int) -> None:
        self.exit_w: int | None = exit_w
        self.code = code

    def __call__(self) -> None:
        if self.exit_w is None:
            return
        fd, self.exit_w = self.exit_w, None
        try:
            os.write(fd, f"{self.code}\n".encode())
        except OSError:
            pass
        os.close(fd)
