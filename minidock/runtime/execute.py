"""`exec`: run another process inside a running container.

The CLI pins the container's init with a pidfd (checked against its start time),
opens its namespace files, and forks a helper that joins ipc, uts, net, pid and
finally mnt (which also moves root and cwd to the container's root). Joining a pid
namespace only affects children, so the helper forks the exec'd process, waits for it
and exits with its code. The process gets the same privileges as the container's init
(its capability set and seccomp program, no_new_privs, only fds 0 1 2), its user resolved in the
container's /etc/passwd. Errors before exec come back on a close-on-exec pipe.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING

from minidock.errors import Conflict, MinidockError
from minidock.runtime.container import Container
from minidock.runtime.values import Values

if TYPE_CHECKING:
    from minidock.context import Context

NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")


class ExecOptions(Values):
    args: tuple[str, ...]
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None


def exec_in(ctx: Context, ctr: Container, opts: ExecOptions) -> int:
    """Run `opts.args` in the container; returns its exit code (0 when detached)."""
    # after setns(mnt) the host's files (minidock's source too) are out of view:
    # load everything the helper and the process need now
    import fcntl  # noqa: F401
    import termios  # noqa: F401

    from minidock.runtime import (attach, caps, container, init, monitor, rootfs,  # noqa: F401
                                  seccomp, spec, users)
    from minidock.runtime import syscalls  # noqa: F401
    from minidock.runtime.lifecycle import pidfd_checked, refresh
    from minidock.runtime.start import error_for, privileges

    ctr = refresh(ctx, ctr)
    pidfd = pidfd_checked(ctr["State"].get("Pid", 0), ctr.get("_PidStart"))
    if not ctr["State"].get("Running") or pidfd is None:
        raise Conflict(f"Container {ctr['Id']} is not running")
    pid = ctr["State"]["Pid"]
    privs = privileges(ctx, ctr)
    from minidock.libc import lib
    lib()                       # ctypes loaded before the namespaces are entered
    nsfds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
    os.close(pidfd)
    err_r, err_w = os.pipe()
    master = slave = None
    if opts.tty:
        master, slave = os.openpty()
    helper = os.fork()
    if helper == 0:
        os.close(err_r)
        _helper(ctr, opts, nsfds, err_w, slave, master, privs)
    for fd in [*nsfds, err_w, *([slave] if slave is not None else [])]:
        os.close(fd)
    msg = _read_all(err_r)
    if msg:
        os.waitpid(helper, 0)
        code, _, text = msg.decode(errors="replace").strip()[1:].partition(" ")
        raise error_for(int(code) if code.isdigit() else 125, text)
    if opts.detach:
        return 0
    if master is not None:
        return _pump_tty(master, helper)
    from minidock.runtime.monitor import exit_code
    return exit_code(os.waitpid(helper, 0)[1])


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    os.close(fd)
    return data


def _helper(ctr: Container, opts: ExecOptions, nsfds: list[int], err_w: int,
            slave: int | None, master: int | None, privs: Any) -> None:
    """The forked helper: join, fork the process, wait, exit with its code."""
    code = 125
    try:
        from minidock.runtime import init
        from minidock.runtime import syscalls as sc
        from minidock.runtime.monitor import exit_code
        if master is not None:
            os.close(master)
        if ctr.get("_Cgroup"):           # the exec'd process counts against the limits
            from minidock.runtime import cgroups
            cgroups.join(ctr["_Cgroup"], os.getpid())
        init.seal_imports()    # the mnt namespace joined below shows the image's files
        for fd in nsfds:
            sc.setns(fd)
            os.close(fd)
        child = os.fork()
        if child == 0:
            _exec_child(ctr, opts, err_w, slave, privs)
        os.close(err_w)
        if opts.detach:
            os._exit(0)
        os._exit(exit_code(os.waitpid(child, 0)[1]))
    except BaseException as err:
        os.write(err_w, f"E{code} {err}\n".encode()[:4000])
        os._exit(code)


def _exec_child(ctr: Container, opts: ExecOptions, err_w: int, slave: int | None,
                privs: Any) -> None:
    from minidock.runtime import seccomp
    from minidock.runtime import syscalls as sc
    from minidock.runtime.caps import drop_privileges
    from minidock.runtime.container import runtime_env
    from minidock.runtime.init import exec_command, enter_workdir, not_dumpable, reset_signals, workdir_fd
    from minidock.runtime.spec import merge_env
    from minidock.runtime.users import read_or_none, resolve_user

    code, msg = 126, ""
    try:
        not_dumpable()
        os.setsid()
        if slave is not None:
            import fcntl
            import termios
            for target in (0, 1, 2):
                os.dup2(slave, target)
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        elif opts.detach or not opts.interactive:
            null = os.open(os.devnull, os.O_RDWR if opts.detach else os.O_RDONLY)
            for target in ((0, 1, 2) if opts.detach else (0,)):
                os.dup2(null, target)
        cfg = ctr["Config"]
        user = resolve_user(opts.user if opts.user is not None else cfg.get("User") or "",
                            read_or_none("/etc/passwd"), read_or_none("/etc/group"))
        env = merge_env(runtime_env(ctr, user.home), list(opts.env))
        drop_privileges(user.uid, user.gid, user.groups, privs.caps)
        workdir = opts.workdir or cfg.get("WorkingDir") or "/"
        fd = workdir_fd(workdir, create=False)
        enter_workdir(fd, workdir)
        os.close(fd)
        reset_signals()
        sc.cloexec_from(3)
        seccomp.install(privs.seccomp)
        exec_command(list(opts.args), env)
    except MinidockError as err:
        code, msg = err.exit_code, str(err)
    except BaseException as err:
        msg = str(err)
    os.write(err_w, f"E{code} {msg}\n".encode()[:4000])
    os._exit(code)


def _pump_tty(master: int, helper: int) -> int:
    """exec -t: copy the CLI's terminal to the pty and back until the process exits."""
    import select

    from minidock.runtime.attach import raw_terminal, copy_winsize
    from minidock.runtime.monitor_main import exit_code, read as _read, write_all as _write_all
    restore = raw_terminal()
    copy_winsize(0, master)
    watch = [master, 0]
    try:
        while master in watch:
            ready, _, _ = select.select(watch, [], [])
            for fd in ready:
                data = _read(fd)
                if not data:
                    watch.remove(fd)
                elif fd == master:
                    _write_all(1, data)
                else:
                    _write_all(master, data)
    finally:
        if restore:
            restore()
        os.close(master)
    return exit_code(os.waitpid(helper, 0)[1])
