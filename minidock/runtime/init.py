"""The container's init child: from fork to exec, in the container's namespaces.

Forked by the monitor right after the monitor's unshare(CLONE_NEWPID), so this process
is PID 1 of the new pid namespace. It never prints and never returns: it either execs
the container command, or reports one error line on the sync pipe and exits. The
sync pipe is close-on-exec, so a successful exec is seen by the CLI as EOF.

    setsid, stdio on 0 1 2 (tty: after pivot_root, see below)
    setns(netns path)            only for a "join" network mode
    unshare(mnt uts ipc [net])   net only for a "new" network mode
    write "R"  ----------------> CLI runs the prestart hook (interfaces move in)
    join the container's cgroup (meanwhile)
    read  "G"  <---------------- CLI releases (EOF instead: the CLI gave up, exit)
    rootfs.setup: mounts, pivot_root, masks
    tty: open /dev/ptmx of the container's own devpts, send the master to the
         monitor (SCM_RIGHTS), take the slave (/dev/pts/0) as controlling terminal
    sethostname, workdir, user (from the container's own /etc/passwd)
    capabilities, no_new_privs, every fd >= 3 close-on-exec, seccomp filter
                                 (sysctls: right after "G", see write_sysctls)
    execve  -> EOF on the sync pipe (success) | "E<code> <message>" (failure)
"""

from __future__ import annotations

import os
import stat
from minidock.runtime.values import Values
from minidock.hints import Any

from minidock.errors import CannotInvoke, CommandNotFound, MinidockError
from minidock.runtime import syscalls as sc


TIOCGPTN = 0x80045430     # not in Python's termios
TIOCSPTLCK = 0x40045431


class InitFds(Values):
    """What the monitor hands to the init child."""

    stdin: int
    stdout: int
    stderr: int
    sync_w: int          # child -> CLI: "R", then "E..." or EOF
    go_r: int            # CLI -> child: "G"
    console: int | None = None   # tty: unix socket to the monitor, for the pty master
    winsize: bytes | None = None


class Privileges(Values):
    """What the CLI decided the process may do (caps.py, seccomp/): the capability
    mask and the seccomp program (None: unconfined)."""

    caps: int
    seccomp: bytes | None = None


def container_init(ctr: dict[str, Any], cdir: str, netns: tuple[str, str | None],
                   fds: InitFds, privs: Privileges) -> None:
    """Never returns: exec the command or report and _exit."""
    code = 125
    try:
        not_dumpable()
        _stdio(fds)
        _namespaces(netns)
        os.write(fds.sync_w, b"R\n")
        _while_prestart(ctr)
        # everything used after pivot_root must be imported before it: the host's
        # filesystem (and minidock's source) is gone from view then. Done while the
        # CLI runs the prestart hook.
        if fds.console is not None:     # the pty's modules (socket alone is ~5 ms)
            import fcntl, socket, struct, termios  # noqa: F401,E401
        from minidock.runtime import caps, container, rootfs, seccomp, users  # noqa: F401
        if os.read(fds.go_r, 1) != b"G":
            os._exit(1)
        os.close(fds.go_r)
        write_sysctls(ctr["HostConfig"].get("Sysctls") or {})
        _enter_rootfs(ctr, cdir)
        seal_imports()
        if fds.console is not None:
            _console(fds.console, fds.winsize)
        argv, env = _command(ctr, privs.caps)
        reset_signals()
        sc.cloexec_from(3)
        seccomp.install(privs.seccomp)
        if ctr.get("_InitReaper"):                 # --init without a binary (reaper.py)
            from minidock.runtime import reaper
            reaper.fork_command(fds.sync_w)
        exec_command(argv, env)
    except MinidockError as err:
        code, msg = err.exit_code, str(err)
    except OSError as err:
        msg = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
    except BaseException as err:  # a bug: still report, never run outside the rootfs
        msg = f"{type(err).__name__}: {err}"
    try:
        os.write(fds.sync_w, f"E{code} {msg}\n".encode()[:4000])
    finally:
        os._exit(code)


def _stdio(fds: InitFds) -> None:
    os.setsid()
    for target, fd in ((0, fds.stdin), (1, fds.stdout), (2, fds.stderr)):
        if fd != target:
            os.dup2(fd, target)


def _console(sock: int, winsize: bytes | None) -> None:
    """A pty of the container's devpts (so `tty` says /dev/pts/0, as in Docker)."""
    import fcntl
    import socket
    import struct
    import termios
    master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    if winsize:
        fcntl.ioctl(master, termios.TIOCSWINSZ, winsize)
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR)
    with socket.socket(fileno=sock) as conn:
        socket.send_fds(conn, [b"m"], [master])
    os.close(master)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _namespaces(netns: tuple[str, str | None]) -> None:
    mode, path = netns
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
    if mode == "join" and path:
        sc.setns_path(path, sc.CLONE_NEWNET)
    elif mode == "new":
        flags |= sc.CLONE_NEWNET
    sc.unshare(flags)


def write_sysctls(sysctls: dict[str, str]) -> None:
    """`--sysctl`, written before pivot_root through the host's /proc/sys: a sysctl
    file shows the namespace of the process that opens it (as under `ip netns exec`),
    and this process is already in the container's net and ipc namespaces, with its
    interfaces moved in. Keys were checked at create (no "/", no empty part)."""
    for key, value in sysctls.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as err:
            raise OSError(err.errno, f"write sysctl key {key}: "
                          f"{(err.strerror or str(err)).lower()}") from None


def _enter_rootfs(ctr: dict[str, Any], cdir: str) -> None:
    from minidock.runtime import rootfs
    rootfs.setup(ctr, cdir)
    sc.sethostname(ctr["Config"]["Hostname"])


def _command(ctr: dict[str, Any], caps: int) -> tuple[list[str], list[str]]:
    """Inside the rootfs: workdir, user, privileges; returns argv and env."""
    from minidock.runtime.caps import drop_privileges
    from minidock.runtime.container import runtime_env
    from minidock.runtime.users import read_or_none, resolve_user

    cfg = ctr["Config"]
    user = resolve_user(cfg.get("User") or "", read_or_none("/etc/passwd"),
                        read_or_none("/etc/group"))
    workdir = cfg.get("WorkingDir") or "/"
    fd = workdir_fd(workdir, create=True)
    try:
        drop_privileges(user.uid, user.gid, user.groups, caps)
        enter_workdir(fd, workdir)
    finally:
        os.close(fd)
    argv = [ctr["Path"], *ctr["Args"]]
    if ctr["HostConfig"].get("Init") and not ctr.get("_InitReaper"):   # usermounts.py
        argv = ["/sbin/minidock-init", "--", *argv]
    return argv, runtime_env(ctr, user.home)


def _cwd_error(workdir: str, err: OSError) -> CannotInvoke:
    return CannotInvoke(f"chdir to cwd (\"{workdir}\") set in config.json failed: "
                        f"{(err.strerror or str(err)).lower()}")


def workdir_fd(workdir: str, create: bool) -> int:
    """O_PATH fd of the working directory, resolved inside the container's root:
    no symlink or /proc/self/fd/N magic link can lead it out (runc's CVE-2024-21626)."""
    from minidock.runtime import rootfs
    root = os.open("/", rootfs.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if create:
            return rootfs.ensure_dir(root, workdir)
        return rootfs.resolve(root, workdir, rootfs.O_PATH | os.O_DIRECTORY)
    except OSError as err:
        raise _cwd_error(workdir, err) from None
    finally:
        os.close(root)


def enter_workdir(fd: int, workdir: str) -> None:
    """fchdir as the container's user (search permission is checked then)."""
    try:
        os.fchdir(fd)
    except OSError as err:
        raise _cwd_error(workdir, err) from None


def seal_imports() -> None:
    """No more imports: sys.path now names paths in the container's filesystem.

    A module first imported after pivot_root (or setns into the container's mount
    namespace) would be read from the image, and run as root with every capability:
    an image shipping /usr/lib/python3.11/<module>.py would own the host. Everything
    the rest of the way needs was imported before; a forgotten import fails loudly.
    """
    import sys
    sys.path[:] = []
    sys.path_importer_cache.clear()


def reset_signals() -> None:
    """Default dispositions and an empty mask for the exec'd command.

    Ignored signals survive execve: Python ignores SIGPIPE and SIGXFSZ, the monitor
    ignores SIGTERM & co., and a shell cannot trap a signal ignored at its start.
    """
    import _signal as signal    # built in: importable after pivot_root
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def find_executable(name: str, env: list[str]) -> str:
    """Go's exec.LookPath in the container's PATH, with runc's error texts."""
    if "/" in name:
        try:
            st = os.stat(name)
        except FileNotFoundError:
            raise CommandNotFound(
                f'exec: "{name}": stat {name}: no such file or directory') from None
        if stat.S_ISDIR(st.st_mode):
            raise CannotInvoke(f'exec: "{name}": is a directory')
        return name
    path = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise CommandNotFound(f'exec: "{name}": executable file not found in $PATH')


PR_SET_DUMPABLE = 4


def not_dumpable() -> None:
    """Until execve, other processes in the container cannot open this (host
    Python) process's /proc/<pid>/exe, root, cwd or fds (runc does the same)."""
    sc.prctl(PR_SET_DUMPABLE, 0)


def check_inside_root(path: str, name: str) -> None:
    """The file execve will run, and a script's interpreters, resolve inside the
    container's root without magic links: an image's `/proc/self/exe` (or a script
    `#!/proc/self/exe`) would otherwise run the host's Python in the container, which
    could then write to the host's binary through its own /proc/self/exe."""
    from minidock.runtime import rootfs
    for _ in range(5):                                   # the kernel nests up to 4
        if not path.startswith("/"):
            path = os.path.join(os.getcwd(), path)
        root = os.open("/", rootfs.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = rootfs.resolve(root, path)
        except OSError as err:
            if err.errno == 40:                          # ELOOP: a magic link
                raise CannotInvoke(f'exec: "{name}": {path} leads outside the container') from None
            return                                       # execve reports it
        finally:
            os.close(root)
        path = _interpreter(fd)
        if path is None:
            return


def _interpreter(fd: int) -> str | None:
    """The `#!` interpreter of the regular file behind O_PATH `fd` (closed here)."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None                                  # exec-only: not a script we
        try:                                             # (or its interpreter) can read
            head = os.read(rfd, 256)
        finally:
            os.close(rfd)
    finally:
        os.close(fd)
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return os.fsdecode(words[0]) if words else None


def exec_command(argv: list[str], env: list[str]) -> None:
    path = find_executable(argv[0], env)
    check_inside_root(path, argv[0])
    envd = dict(e.partition("=")[::2] for e in env)
    try:
        os.execve(path, argv, envd)
    except PermissionError:
        raise CannotInvoke(f'exec: "{argv[0]}": permission denied') from None
    except FileNotFoundError:
        raise CommandNotFound(f'exec: "{argv[0]}": no such file or directory') from None
    except OSError as err:
        raise CannotInvoke(f'exec: "{argv[0]}": {err.strerror.lower()}') from None


def _while_prestart(ctr: dict[str, Any]) -> None:
    """While the CLI moves the interfaces in: join the container's cgroup (a v1
    migration costs ~10 ms, an RCU grace period per hierarchy: off the critical path
    here) and import the built-in --init reaper (no import after pivot_root)."""
    if ctr.get("_Cgroup"):
        from minidock.runtime import cgroups
        cgroups.join(ctr["_Cgroup"], 0)
    if ctr.get("_InitReaper"):
        from minidock.runtime import reaper  # noqa: F401
