"""Create and start a container: the start protocol, seen from the CLI.

`create` validates everything and stores the record (status "created"); `start` runs
the start pipeline. Every step registers its undo in a Pipeline, so a failure anywhere
(including the container command failing to exec) undoes everything and names the step.

    CLI                          monitor (double fork)        init child (PID 1)
    ---                          ---------------------        ------------------
    initialize_networking
    spawn_monitor  -- fork ----> setsid, unshare(NEWPID)
                                 fork ---------------------->  setsid, stdio
    read "P<pid>"  <------------ write "P<pid>", pump output  setns / unshare(mnt uts
                                                               ipc [net])
    read "R"       <------------------------------------------ write "R", block on go
    prestart(pid) (netns key,
      interfaces move in)
    write "G"      ------------------------------------------> mounts, pivot_root,
    record Running, Pid,                                       hostname, user, caps,
      StartedAt (meanwhile)                                    close fds, execve
    read EOF       <------------------------------------------ (sync pipe is CLOEXEC)
      or "E<code> <msg>"  -> rollback: back to "created", kill, verdict "0",
                             release networking
    write verdict "1" ---------> (exit of the init) record exit, release networking,
                                 --rm, write "<code>" on the exit pipe
    (foreground) read exit code <------

The sync pipe has two writers (monitor: P, child: R/E); messages are single short
writes, so they never interleave, and the reader accepts P and R in either order.
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its import builds three enums
from minidock.runtime.values import Values
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Internal, MinidockError, NotFound
from minidock.pipeline import Pipeline, group
from minidock.runtime import container as records
from minidock.runtime.container import Container, now_iso

if TYPE_CHECKING:
    from minidock.context import Context


class Started(Values):
    """A started container, with what a foreground CLI needs to wait for it."""

    ctr: Container
    exit_r: int | None = None      # read the exit code here (foreground)
    tty: int | None = None         # -t: the container's pty, for window size changes


def resolve_image(ctx: Context, ref: str) -> Any:
    """The image `ref` from the image store (minidock.image.store)."""
    from minidock.image.store import resolve
    return resolve(ctx, ref)


def create(ctx: Context, opts: Any, env: list[str], op: str = "create") -> Container:
    """Validate, make the record and the container dir; returns the stored document.

    op="run": the record carries `_Starter` (this CLI) until record_running, so that a
    run whose CLI dies is recognised as failed and removed (runtime/repair.py).
    """
    from minidock import ids
    from minidock.identity import starter_mark
    from minidock.locks import busy
    from minidock.net import api
    from minidock.runtime import rootfs
    from minidock.runtime.spec import validate_name

    ctx.config      # an invalid daemon.json refuses the container before anything is made
    name = validate_name(opts.name) if opts.name else None
    image = resolve_image(ctx, opts.image)
    cid = ids.new_id()
    cdir = ctx.container_dir(cid)
    ctr = records.build_doc(cid, name or ids.random_name(), image, opts, env,
                            os.path.join(cdir, cid + "-json.log"), now_iso())
    _mounts_and_cgroup(ctx, ctr, opts, op)
    if op == "run":
        ctr["_Starter"] = starter_mark()
    api.validate(ctx, ctr)
    privileges(ctx, ctr)      # a profile libseccomp refuses fails here; fills the cache
    with busy(ctx), Pipeline("create") as p:
        p.step("prepare_rootfs", rootfs.prepare, cdir)
        p.undo("prepare_rootfs", _rmtree, cdir)
        if ctr["_Mounts"]:
            p.step("create_volumes", _create_volumes, ctx, ctr, p)
        p.step("insert_record", _insert, ctx, ctr, name is None)
        p.undo("insert_record", _delete_record, ctx, cid)
        p.commit()
    return ctr


def privileges(ctx: Context, ctr: Container) -> Any:
    """The capability mask and seccomp program (cached in the exec-root) of `ctr`."""
    from minidock.runtime import caps, seccomp
    from minidock.runtime.init import Privileges
    hc = ctr["HostConfig"]
    have = caps.effective_caps(hc)
    return Privileges(caps.mask(have), seccomp.program(ctx.exec_root, hc, have))


def check_sysctls(ctr: Container, netns: tuple[str, str | None]) -> None:
    """net.* sysctls need the container's own netns; a container:X network whose X
    runs in the host's namespace has none (runc's message)."""
    for key in ctr["HostConfig"].get("Sysctls") or {}:
        if key.startswith("net.") and netns[0] == "host":
            from minidock.errors import InvalidArgument
            raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts network namespace')


def _insert(ctx: Context, ctr: Container, random_name: bool) -> None:
    """Insert the record; a random name is redrawn on a clash, a given name whose
    holder is a dead run is reclaimed once (runtime/repair.py), else Docker's conflict."""
    from minidock import ids
    for retry in range(1, 4):
        try:
            records.insert(ctx, ctr)
            return
        except MinidockError:
            if random_name and retry < 3:
                ctr["Name"] = "/" + ids.random_name(retry)
                continue
            from minidock.runtime.repair import reap_container_name
            if random_name or retry > 1 or \
                    not reap_container_name(ctx, ctr["Name"].lstrip("/")):
                raise


def _delete_record(ctx: Context, cid: str) -> None:
    with ctx.store.transaction():
        records.delete(ctx, cid)


def _rmtree(path: str) -> None:
    from minidock.runtime.lifecycle import rmtree
    rmtree(path)


def _mounts_and_cgroup(ctx: Context, ctr: Container, opts: Any, op: str) -> None:
    """--volumes-from (needs the store); a run's cgroup paths, stored with the record
    so that the cgroup of a run whose CLI is killed is found (runtime/repair.py)."""
    if opts.volumes_from:
        from minidock.runtime import hostopts
        hostopts.attach_volumes_from(ctx, ctr, opts.volumes_from)
    if op == "run":
        _plan_cgroup(ctx, ctr)


def _create_volumes(ctx: Context, ctr: Container, p: Pipeline) -> None:
    """Name and create the volumes the mounts need (inverse: remove those made here)."""
    from minidock.runtime import hostopts, volumes
    made = volumes.prepare(ctx, ctr["_Mounts"])
    p.undo("create_volumes", lambda: [volumes.remove_quietly(ctx, n) for n in made])
    hostopts.fill_sources(ctr)


def start(ctx: Context, ctr: Container, attach: bool = False, stdin: bool = False) -> Started:
    """Run the start pipeline (see module doc); returns once the command has exec'd."""
    from minidock.net import api
    from minidock.locks import busy
    tty = bool(ctr["Config"].get("Tty"))
    with busy(ctx), Pipeline("start") as p:
        netns = api.netns_mode(ctx, ctr)
        check_sysctls(ctr, netns)
        with group("initializeNetworking"):
            api.initialize_networking(ctx, ctr, p)
        os.makedirs(ctx.run_dir(ctr["Id"]), exist_ok=True)
        cgroup = p.step("create_cgroup", _create_cgroup, ctx, ctr)
        p.undo("create_cgroup", _remove_cgroup, cgroup)
        proto = p.step("spawn_monitor", _spawn, ctx, ctr, netns, attach, stdin, tty)
        p.undo("spawn_monitor", proto.abort)
        pid = p.step("wait_for_start", proto.wait_ready)
        with group("setNetworkNamespaceKey", "(prestart hook)"):
            api.prestart(ctx, ctr, pid, p)  # meanwhile the init joins its cgroup (init.py)
        p.step("release_init", proto.release)
        # recorded while the init mounts and execs (undone if the exec fails)
        p.step("record_running", _record_running, ctx, ctr, pid, proto.monitor_pid)
        p.undo("record_running", _record_created, ctx, ctr)
        p.step("wait_for_exec", proto.wait_exec)
        proto.confirm()
        p.commit()
    return Started(ctr, proto.exit_r, _open_tty(pid) if tty else None)


_LIMIT_KEYS = ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "PidsLimit", "CpusetCpus")


def _plan_cgroup(ctx: Context, ctr: Container) -> None:
    from minidock.runtime import cgroups
    try:
        ctr["_Cgroup"] = cgroups.plan(ctx.root, ctr["Id"])
    except OSError:
        ctr.pop("_Cgroup", None)


def _create_cgroup(ctx: Context, ctr: Container) -> dict[str, str] | None:
    """The container's cgroup with its limits (cgroups.py). Without limits a host
    where cgroups cannot be made still runs containers (no stats, no OOM flag).
    A `run` planned the paths at create (same process); a `start` plans them now."""
    from minidock.runtime import cgroups
    hc = ctr["HostConfig"]
    try:
        if not (ctr.get("_Starter") and ctr.get("_Cgroup")):
            _plan_cgroup(ctx, ctr)
        paths = ctr["_Cgroup"]
        cgroups.create(paths, hc)
    except (OSError, Internal, KeyError):
        if any(hc.get(k) for k in _LIMIT_KEYS):
            raise
        ctr.pop("_Cgroup", None)
        return None
    ctr["_Cgroup"] = paths
    return paths


def _remove_cgroup(paths: dict[str, str] | None) -> None:
    from minidock.runtime import cgroups
    cgroups.remove(paths)


class _Protocol:
    """The CLI's pipe ends for one start, and the steps that use them."""

    def __init__(self) -> None:
        self.sync_r, self.sync_w = os.pipe()
        self.go_r, self.go_w = os.pipe()
        self.verdict_r, self.verdict_w = os.pipe()
        self.exit_r, self.exit_w = os.pipe()
        self.pid = 0
        self.monitor_pid = 0
        self._buf = b""

    def wait_ready(self) -> int:
        got_ready = False
        while not (self.pid and got_ready):
            kind, body = self._message()
            if kind == "P":
                self.pid = int(body)
            elif kind == "R":
                got_ready = True
        return self.pid

    def release(self) -> None:
        os.write(self.go_w, b"G")
        os.close(self.go_w)
        self.go_w = -1

    def wait_exec(self) -> None:
        """EOF: the command exec'd (the pipe is close-on-exec); "E": it did not."""
        kind, body = self._message(eof_ok=True)
        if kind == "":
            return
        code, _, msg = body.partition(" ")
        err = error_for(int(code) if code.isdigit() else 125, msg)
        raise err

    def _message(self, eof_ok: bool = False) -> tuple[str, str]:
        while b"\n" not in self._buf:
            data = os.read(self.sync_r, 4096)
            if not data:
                if eof_ok:
                    return "", ""
                raise Internal("container init exited before it was ready")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        text = line.decode(errors="replace")
        if text[:1] == "E" and not eof_ok:
            code, _, msg = text[1:].partition(" ")
            raise error_for(int(code) if code.isdigit() else 125, msg)
        return text[:1], text[1:]

    def confirm(self) -> None:
        os.write(self.verdict_w, b"1")
        self._close_all()

    def abort(self) -> None:
        """Undo of spawn_monitor: kill the init (if any), tell the monitor to leave."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.write(self.verdict_w, b"0")
        except OSError:
            pass
        self._close_all()
        if self.exit_r is not None:
            os.close(self.exit_r)
            self.exit_r = None

    def _close_all(self) -> None:
        for name in ("sync_r", "go_w", "verdict_w"):
            fd = getattr(self, name)
            if fd is not None and fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def error_for(code: int, msg: str) -> MinidockError:
    from minidock.errors import CannotInvoke, CommandNotFound
    cls = {126: CannotInvoke, 127: CommandNotFound}.get(code, Internal)
    return cls(msg)


def _spawn(ctx: Context, ctr: Container, netns: tuple[str, str | None], attach: bool,
           stdin: bool, tty: bool) -> _Protocol:
    """The monitor for this start: a detached start asks the monitor template
    (montemplate.py), else (attached, or no template ready) it is forked here."""
    from minidock.runtime import montemplate
    if not attach:
        proto = _from_template(ctx, ctr, netns, tty)
        if proto is not None:
            return proto
    proto = _fork_monitor(ctx, ctr, netns, attach, stdin, tty)
    if not attach:          # for the next detached start: in the background
        montemplate.ensure_running(ctx)
    return proto


def _monitor_fds(ctx: Context, ctr: Container, proto: _Protocol, attach: bool,
                 stdin: bool, tty: bool) -> Any:
    from minidock.runtime import monitor
    return monitor.MonitorFds(
        sync_w=proto.sync_w, go_r=proto.go_r, verdict_r=proto.verdict_r,
        exit_w=proto.exit_w, attach=attach, stdin=0 if stdin else None,
        tty=tty, winsize=_winsize() if tty else None,
        close=[proto.sync_r, proto.go_w, proto.verdict_w, proto.exit_r],
        privs=privileges(ctx, ctr))


def _from_template(ctx: Context, ctr: Container, netns: tuple[str, str | None],
                   tty: bool) -> _Protocol | None:
    """The protocol with a monitor the template forked, or None. On None every pipe
    sent is abandoned (closed here): a monitor the template forked too late sees no
    verdict and leaves, and the caller forks one with fresh pipes."""
    from minidock.runtime import montemplate
    proto = _Protocol()
    try:
        fds = _monitor_fds(ctx, ctr, proto, False, False, tty)
        proto.monitor_pid = montemplate.request(ctx, ctr, netns, fds) or 0
    finally:
        for fd in (proto.sync_w, proto.go_r, proto.verdict_r, proto.exit_w):
            os.close(fd)
        os.close(proto.exit_r)
        proto.exit_r = None  # type: ignore[assignment]
    if not proto.monitor_pid:
        proto._close_all()
        return None
    return proto


def _fork_monitor(ctx: Context, ctr: Container, netns: tuple[str, str | None],
                  attach: bool, stdin: bool, tty: bool) -> _Protocol:
    from minidock.runtime import monitor
    from minidock.libc import lib as _lib

    _lib()   # load libc once here, not in the monitor on the critical path
    if attach:      # the monitor is forked next: let it inherit prestart's modules
        from minidock.net import api
        api.preload(ctr)
    proto = _Protocol()
    _drop_store(ctx)
    fds = _monitor_fds(ctx, ctr, proto, attach, stdin, tty)
    try:
        proto.monitor_pid = monitor.spawn(ctx, ctr, netns, fds)
    finally:
        for fd in (proto.sync_w, proto.go_r, proto.verdict_r, proto.exit_w):
            os.close(fd)
    if not attach:
        os.close(proto.exit_r)
        proto.exit_r = None  # type: ignore[assignment]
    return proto


def _winsize() -> bytes | None:
    import fcntl
    import termios
    try:
        return fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def _open_tty(pid: int) -> int | None:
    """The container's pty slave, reopened through its init's fd 0 (for SIGWINCH)."""
    try:
        return os.open(f"/proc/{pid}/fd/0", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None


def _drop_store(ctx: Context) -> None:
    """Close the CLI's SQLite connection before forking the monitor.

    SQLite state must not cross a fork: the child would inherit the connection's
    shared-memory and lock bookkeeping (but not the POSIX locks) and a fresh connection
    in the child reuses it, rewriting the WAL from scratch. The CLI reopens lazily.
    """
    store = ctx._store
    if store is not None:
        if store._depth:
            raise Internal("spawn_monitor inside a store transaction")
        store.close()
        ctx._store = None


def _record_running(ctx: Context, ctr: Container, pid: int, monitor_pid: int) -> None:
    from minidock.identity import proc_start
    ctr["State"].update(Status="running", Running=True, Pid=pid, ExitCode=0, Error="",
                        StartedAt=now_iso(), FinishedAt="0001-01-01T00:00:00Z",
                        Restarting=False, OOMKilled=False)
    ctr.pop("_ManuallyStopped", None)
    ctr["_PidStart"] = proc_start(pid)
    ctr["_Monitor"] = {"Pid": monitor_pid, "Start": proc_start(monitor_pid)}
    # From here the container is a running container: if this CLI dies before it
    # confirms, the monitor kills the init and the record is an exited container.
    ctr.pop("_Starter", None)
    with ctx.store.transaction():
        if records.get(ctx, ctr["Id"]) is None:
            raise NotFound(f"No such container: {ctr['Id']}")
        records.save(ctx, ctr)


def _record_created(ctx: Context, ctr: Container) -> None:
    """Undo of record_running: the container is back to "created"."""
    ctr["State"].update(Status="created", Running=False, Pid=0,
                        StartedAt="0001-01-01T00:00:00Z")
    ctr.pop("_PidStart", None)
    ctr.pop("_Monitor", None)
    ctr.pop("_Starter", None)
    with ctx.store.transaction():
        if records.get(ctx, ctr["Id"]) is not None:
            records.save(ctx, ctr)


def record_start_failure(ctx: Context, ctr: Container, err: MinidockError) -> None:
    """A failed start leaves the container "created" with the error, as Docker does."""
    with ctx.store.transaction():
        fresh = records.get(ctx, ctr["Id"])
        if fresh is None:
            return
        fresh["State"].update(ExitCode=err.exit_code if err.exit_code != 125 else 128,
                              Error=str(err))
        fresh.pop("_Starter", None)   # rolled back by its own CLI: not a dead run
        records.save(ctx, fresh)
