"""The per-container monitor (podman's conmon): the parent of the container's init.

Who forks it: for a detached start (`run -d`, `start`, a restart policy) the monitor
template of the exec-root (montemplate.py, montemplated.py) when one is ready; for an
attached start, and as the fallback, the CLI (`spawn`). Either way the monitor
unshares CLONE_NEWPID, forks the init child (PID 1 of the new pid namespace), reports
the child's host PID on the sync pipe, then runs monitor_main, which:

* copies the container's stdout/stderr (or the pty master) into the json-file log and,
  when attached, to the stdout/stderr it inherited from the CLI (a killed CLI does not
  stop the container: its output keeps going to the log);
* waits for the CLI's verdict ("1": started and recorded; "0" or EOF: the start failed
  and the CLI rolls everything back, so the monitor kills the init if it still runs
  and leaves without touching anything else);
* reaps the init (pidfd), records ExitCode / FinishedAt, releases networking, applies
  --rm, and finally writes the exit code on the exit pipe for a waiting CLI.

    CLI                 monitor (forked by the CLI or the template)      init
    fork, or ask ---->  setsid, signals, stdio, unshare(NEWPID)
      the template      log fd, output pipes / console socketpair
                        fork -------------------------------------------> (init.py)
    read "P<pid>" <---- write "P<pid>", close sync pipe
    (start pipeline)    CLI-forked, detached: wait for the verdict, then
    write "1" --------> exec python -I -S (monitor_main), keeping the pid, the
    exit                child and exactly the fds it still needs
                        template-forked (run_in_place) or attached (_supervise):
                        monitor_main.run in this process, verdict included

Why the exec of a CLI-forked monitor: it would keep the CLI's whole interpreter for
the container's life (~7.5 MiB of PSS each once the CLI has exited, as refcount
writes un-share the pages; ~2.7 MiB lean). The fork stays because it costs the start
path nothing: the exec runs while the CLI moves the interfaces in and the init
mounts, and nothing waits for it. A template-forked monitor needs no exec: it shares
the template's frozen, lean heap and owns ~1.4 MiB (README, Performance).
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its import builds three enums
import sys
from minidock.hints import TYPE_CHECKING, Any

from minidock.runtime import syscalls as sc
from minidock.runtime.init import InitFds, Privileges, container_init
from minidock.runtime.monitor_main import exit_code  # noqa: F401  (execute.py, tests)
from minidock.runtime.values import Values

if TYPE_CHECKING:
    from minidock.context import Context

ENTRY = "minidock.runtime.monitor_main:main"
# exec the lean monitor for attached (foreground) runs too? (see _supervise)
LEAN_WHEN_ATTACHED = False


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
    privs: Privileges | None = None    # capabilities and seccomp program of the init


def spawn(ctx: Context, ctr: dict[str, Any], netns: tuple[str, str | None],
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
        _supervise(prepare_or_report(ctx, ctr, netns, fds))
    finally:
        os._exit(0)


def run_in_place(ctx: Context, ctr: dict[str, Any], netns: tuple[str, str | None],
                 fds: MonitorFds, path: list[str]) -> None:
    """The monitor forked by the monitor template (montemplated.py): the same steps
    up to "P<pid>", then monitor_main.run in this very process. No exec: the pages
    it shares with the template stay shared. `path` is the CLI's sys.path (the
    template runs without site-packages). Never returns."""
    try:
        os.setsid()
        params = prepare_or_report(ctx, ctr, netns, fds)
        params["path"] = path
        from minidock.runtime import monitor_main
        monitor_main.run(params)
    finally:
        os._exit(0)


def prepare_or_report(ctx: Context, ctr: dict[str, Any], netns: tuple[str, str | None],
                      fds: MonitorFds) -> dict[str, Any]:
    """_prepare; an error goes to the CLI as "E125 monitor: ..." and this process
    leaves (the CLI rolls back)."""
    try:
        return _prepare(ctx, ctr, netns, fds)
    except BaseException as err:
        import traceback
        traceback.print_exc()
        try:
            os.write(fds.sync_w, f"E125 monitor: {err}\n".encode()[:4000])
        except OSError:
            pass
        os._exit(0)


def _prepare(ctx: Context, ctr: dict[str, Any], netns: tuple[str, str | None],
             fds: MonitorFds) -> dict[str, Any]:
    """Everything up to "P<pid>"; returns what the lean monitor needs (monitor_main)."""
    for fd in fds.close:
        os.close(fd)
    from minidock import pipeline
    pipeline._FAULT = ""        # MINIDOCK_FAULT targets the CLI, never its monitor
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
        signal.signal(sig, signal.SIG_IGN)    # SIG_IGN survives the exec
    if not fds.attach:
        _detach_stdio(os.path.join(ctx.run_dir(ctr["Id"]), "monitor.log"))
    sc.unshare(sc.CLONE_NEWPID)
    from minidock.runtime.logwriter import LogWriter
    log = LogWriter(ctr["LogPath"])     # before the CLI can fail and remove the dir
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    stdin = fds.stdin if fds.stdin is not None else null
    console = None
    outputs: dict[int, str] = {}
    if fds.tty:
        import socket
        mine, theirs = socket.socketpair()
        console = mine.detach()
        child_fds = InitFds(null, null, null, fds.sync_w, fds.go_r,
                            console=theirs.detach(), winsize=fds.winsize)
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child_fds = InitFds(stdin, out_w, err_w, fds.sync_w, fds.go_r)
        outputs = {out_r: "stdout", err_r: "stderr"}
    pid = os.fork()
    if pid == 0:
        container_init(ctr, ctx.container_dir(ctr["Id"]), netns, child_fds, fds.privs)
    for fd in {child_fds.stdout, child_fds.stderr, fds.go_r, child_fds.console, null}:
        if fd is not None:
            _close_quietly(fd)
    os.write(fds.sync_w, f"P{pid}\n".encode())
    os.close(fds.sync_w)
    return {"pid": pid, "log": log.fd, "outputs": outputs, "console": console,
            "stdin": fds.stdin, "verdict": fds.verdict_r, "exit": fds.exit_w,
            "attach": fds.attach, "cid": ctr["Id"], "root": ctx.root,
            "exec_root": ctx.exec_root, "config": ctx.config_path, "path": list(sys.path)}


def _detach_stdio(monitor_log: str) -> None:
    """Keep nothing of the CLI's (`$(minidock run -d ...)` returns); errors go to
    monitor.log."""
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1):
        os.dup2(null, target)
    os.close(null)
    err = os.open(monitor_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(err, 2)
    os.close(err)


def _supervise(params: dict[str, Any]) -> None:
    """Supervise the container: wait for the CLI's verdict, then exec the lean monitor
    (monitor_main.py).

    Waiting first keeps the new interpreter's start-up off the CLI's critical path
    (it runs while the CLI exits, not while it starts the container); the output
    the command writes meanwhile waits in the pipes. "0" or EOF instead of "1": the
    start failed (or the CLI died), the init is killed, the monitor leaves.

    With a CLI attached, the same pump runs here, in the forked interpreter, without
    an exec: that CLI waits for the exit code, and a lean monitor would first import
    the store, the lifecycle and the teardown (~40 ms, more under load) that this
    interpreter holds already, on `run --rm`'s critical path; and while the CLI
    lives, it shares most of these pages with this monitor. Also the fallback when
    the exec fails.
    """
    from minidock.runtime import monitor_main
    if params["attach"] and not LEAN_WHEN_ATTACHED:
        monitor_main.run(params)
    if monitor_main.read(params["verdict"])[:1] != b"1":
        os.kill(params["pid"], signal.SIGKILL)   # pid 1 of its pid ns: all of it goes
        os.waitpid(params["pid"], 0)
        os._exit(0)
    os.close(params["verdict"])
    params["verdict"] = None                     # confirmed
    keep = [params["log"], *params["outputs"], params["exit"]]
    if params["console"] is not None:
        keep.append(params["console"])
    try:
        from minidock import leanboot
        for fd in keep:
            os.set_inheritable(fd, True)
        env = {k: v for k, v in os.environ.items() if k != "MINIDOCK_FAULT"}
        os.execve(sys.executable, leanboot.argv(ENTRY, monitor_main.encode(params)), env)
    except OSError:
        import traceback
        traceback.print_exc()
    monitor_main.run(params)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
