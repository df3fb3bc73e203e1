"""After start: the container's state over time, signals, stop, removal.

Processes are never our children here (the monitor is), so liveness is checked by PID
*and* start time (/proc/<pid>/stat field 22): a recycled PID is never taken for the
container. Signals go through a pidfd opened after that check, and waiting uses the
monitor's pidfd (it exits only after recording the exit), so nothing polls.

`refresh` repairs a record whose monitor was killed: monitor and process both gone
means the container exited (code 255, as dockerd reports containers that died while
it was away); its networking is released then.
"""

from __future__ import annotations

import os
import select
import _signal as signal  # not `signal`: its import builds three enums
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Conflict
from minidock.identity import container_live, monitor_alive, process_alive, proc_start
from minidock.runtime import container as records
from minidock.runtime.container import Container, now_iso

if TYPE_CHECKING:
    from minidock.context import Context

LOST_EXIT_CODE = 255


def pidfd_checked(pid: int, start: int | None) -> int | None:
    """A pidfd for `pid` only if it is still the process that started at `start`."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if proc_start(pid) != start:
        os.close(fd)
        return None
    return fd


def record_exit(ctx: Context, cid: str, pid: int, code: int, error: str = "",
                recorded: Any = None) -> int | None:
    """The monitor's last words: state exited, networking released, --rm applied.

    `recorded` is called once the exit is in the store (not with --rm, whose CLI
    waits for the removal): a foreground CLI can return while networking goes.
    Returns the back-off (ms) when the restart policy restarts the container: the
    record says "restarting" and the caller (the monitor) restarts it (restart.py).
    """
    from minidock.runtime import cgroups, restart
    store = ctx.store
    with store.transaction():
        ctr = records.get(ctx, cid)
        if ctr is None or ctr["State"].get("Pid") != pid:
            return None
        monitor = ctr.get("_Monitor")
        mark_exited(ctr, code, error)
        ctr["State"]["OOMKilled"] = cgroups.oom_killed(ctr.get("_Cgroup"))
        delay = restart.plan_restart(ctr, code)
        if delay is not None:
            ctr["State"].update(Status="restarting", Restarting=True)
            ctr["_Monitor"] = monitor          # still alive: `stop` ends it
        if not ctr["HostConfig"].get("AutoRemove"):   # --rm: the record goes anyway
            records.save(ctx, ctr)
    if recorded is not None and not ctr["HostConfig"].get("AutoRemove"):
        recorded()
    from minidock.pipeline import deferred_kernel_cleanup
    with deferred_kernel_cleanup():     # its kernel-only tail runs after `recorded`
        _release(ctx, ctr)
        if ctr["HostConfig"].get("AutoRemove"):
            destroy(ctx, ctr, volumes=True)
            if recorded is not None:
                recorded()              # --rm: the record and files are gone
    return delay


def mark_exited(ctr: Container, code: int, error: str = "") -> None:
    state = ctr["State"]
    state.update(Status="exited", Running=False, Pid=0, ExitCode=code, Error=error,
                 FinishedAt=now_iso())
    ctr.pop("_PidStart", None)
    ctr.pop("_Monitor", None)


def _release(ctx: Context, ctr: Container) -> None:
    from minidock.net import api
    from minidock.runtime import cgroups
    api.release_networking(ctx, ctr)
    cgroups.remove(ctr.get("_Cgroup"))


def refresh(ctx: Context, ctr: Container) -> Container:
    """Fix a running record whose monitor and process are both gone (see module doc).

    A record left by a `run` whose CLI died (runtime/repair.py) is removed: NotFound.
    """
    if ctr.get("_Starter"):
        from minidock.identity import mark_alive
        from minidock.runtime.repair import reconcile_container
        if not mark_alive(ctr["_Starter"]):
            if reconcile_container(ctx, ctr) is None:
                from minidock.errors import NotFound
                raise NotFound(f"No such container: {ctr['Id']}")
            ctr = records.get(ctx, ctr["Id"]) or ctr
    if ctr["State"].get("Restarting") and not monitor_alive(ctr):
        return _restart_lost(ctx, ctr)
    if not ctr["State"].get("Running") or monitor_alive(ctr) or process_alive(ctr):
        return ctr
    with ctx.store.transaction():
        fresh = records.get(ctx, ctr["Id"])
        if fresh is None or not fresh["State"].get("Running"):
            return fresh or ctr
        if monitor_alive(fresh) or process_alive(fresh):
            return fresh
        mark_exited(fresh, LOST_EXIT_CODE, "monitor died")
        records.save(ctx, fresh)
    _release(ctx, fresh)
    return fresh


def _restart_lost(ctx: Context, ctr: Container) -> Container:
    """A restarting container whose monitor died before it restarted: exited."""
    with ctx.store.transaction():
        fresh = records.get(ctx, ctr["Id"])
        if fresh is None or not fresh["State"].get("Restarting") or monitor_alive(fresh):
            return fresh or ctr
        fresh["State"].update(Restarting=False, Status="exited")
        fresh.pop("_Monitor", None)
        records.save(ctx, fresh)
    return fresh


def end_restarts(ctx: Context, ctr: Container) -> Container:
    """`stop`, `kill`, `rm`: no restart policy applies any more (Docker's manual stop);
    a monitor waiting out its back-off is killed (it holds nothing else)."""
    policy = (ctr["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no"
    if policy == "no" and not ctr["State"].get("Restarting"):
        return ctr
    with ctx.store.transaction():
        fresh = records.get(ctx, ctr["Id"])
        if fresh is None:
            return ctr
        fresh["_ManuallyStopped"] = True
        records.save(ctx, fresh)
    if fresh["State"].get("Restarting"):
        mon = fresh.get("_Monitor") or {}
        fd = pidfd_checked(mon.get("Pid", 0), mon.get("Start"))
        if fd is not None:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], 10)
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)
        fresh = _restart_lost(ctx, fresh)
    return fresh


def refresh_all(ctx: Context) -> list[Container]:
    """Every container, refreshed; records of dead runs are removed and skipped."""
    from minidock.errors import NotFound
    out = []
    for ctr in records.all_containers(ctx):
        try:
            out.append(refresh(ctx, ctr))
        except NotFound:
            continue
    return out


def signal_container(ctr: Container, sig: int) -> bool:
    """Send `sig` to the container's init; False when it is not running."""
    fd = pidfd_checked(ctr["State"].get("Pid", 0), ctr.get("_PidStart"))
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def wait_gone(pid: int, start: int | None, timeout: float | None) -> bool:
    """Block until the process exits (pidfd readable); False on timeout."""
    fd = pidfd_checked(pid, start)
    if fd is None:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def wait_stopped(ctx: Context, ctr: Container, timeout: float | None = None) -> Container:
    """Wait for the monitor to record the exit (it exits right after), then reload."""
    mon = ctr.get("_Monitor") or {}
    if mon:
        wait_gone(mon.get("Pid", 0), mon.get("Start"), timeout)
    fresh = records.get(ctx, ctr["Id"])
    return refresh(ctx, fresh) if fresh else ctr


def stop(ctx: Context, ctr: Container, timeout: float = 10, sig: int = signal.SIGTERM,
         take_over: bool = False) -> Container:
    """SIGTERM, then SIGKILL after `timeout` seconds; returns the updated record.

    `take_over` (rm -f): once the init is gone, record the exit and release the
    networking here instead of waiting for the monitor to do it (the monitor's
    record_exit then sees another Pid and backs off); the record is removed next, so
    the exact exit status, which only the monitor can reap, does not matter.
    """
    ctr = end_restarts(ctx, refresh(ctx, ctr))
    if not ctr["State"].get("Running"):
        return ctr
    pid, start = ctr["State"]["Pid"], ctr.get("_PidStart")
    if not (signal_container(ctr, sig) and wait_gone(pid, start, timeout)):
        signal_container(ctr, signal.SIGKILL)
        wait_gone(pid, start, None)
    if take_over:
        return _take_over_exit(ctx, ctr, pid, 128 + int(signal.SIGKILL))
    return wait_stopped(ctx, ctr)


def _take_over_exit(ctx: Context, ctr: Container, pid: int, code: int) -> Container:
    with ctx.store.transaction():
        fresh = records.get(ctx, ctr["Id"])
        if fresh is None or fresh["State"].get("Pid") != pid:
            return fresh or ctr          # the monitor was first: it releases
        mark_exited(fresh, code)
        records.save(ctx, fresh)
    _release(ctx, fresh)
    return fresh


def remove(ctx: Context, ctr: Container, force: bool, volumes: bool = False) -> None:
    """`rm [-f]`: refuse a running container without force; leave nothing behind.

    Each step is idempotent (a killed rm is finished by the next one), and everything
    the container still holds goes: its networking even if its netns or veth is gone
    already, and its cgroup (runtime/repair.release_container), then its files, then
    the record, then with `volumes` (rm -v) its anonymous volumes."""
    from minidock.pipeline import section
    with section("rm", ctr["Name"].lstrip("/")):
        _remove_container(ctx, ctr, force, volumes)


def _remove_container(ctx: Context, ctr: Container, force: bool, volumes: bool) -> None:
    from minidock.pipeline import best_effort, deferred_kernel_cleanup, report
    from minidock.runtime import repair
    ctr = refresh(ctx, ctr)
    failed: list[str] = []
    # the kernel's RCU-bound steps (unguard, the veths' removal) overlap with the
    # rest of the removal and are complete when this block ends
    with deferred_kernel_cleanup(waits=True):
        if ctr["State"].get("Restarting"):
            if not force:
                raise Conflict(f"You cannot remove a restarting container {ctr['Id']}. "
                               "Stop the container before attempting removal or force remove")
            ctr = end_restarts(ctx, ctr)
        if ctr["State"].get("Running"):
            if not force:
                raise Conflict(f"You cannot remove a running container {ctr['Id']}. Stop "
                               "the container before attempting removal or force remove")
            ctr = stop(ctx, ctr, timeout=0, sig=signal.SIGKILL, take_over=True)
        if container_live(ctr):   # it came back (a concurrent start): keep it
            raise Conflict(f"You cannot remove a running container {ctr['Id']}. Stop the "
                           "container before attempting removal or force remove")
        failed += report(best_effort([("release_container",
                                       lambda: failed.extend(repair.release_container(ctx, ctr)))],
                                     "rm"), "rm")
        destroy(ctx, ctr, volumes)
    if failed:
        from minidock.errors import Internal
        raise Internal(f"container {ctr['Id'][:12]} removed, but {len(failed)} networking "
                       "teardown step(s) failed")


def rmtree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) without shutil, whose import (fnmatch,
    zlib, bz2, lzma) a `run --rm` would wait for in the monitor. Never follows a
    symlink: fwalk does not descend into one, and the link itself is unlinked."""
    try:
        for _dir, dirs, files, dfd in os.fwalk(path, topdown=False):
            for name in files:
                _remove(name, dfd, False)
            for name in dirs:
                _remove(name, dfd, True)
    except OSError:
        pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove(name: str, dfd: int, is_dir: bool) -> None:
    try:
        if is_dir:
            try:
                os.rmdir(name, dir_fd=dfd)
            except NotADirectoryError:          # a symlink to a directory
                os.unlink(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def destroy(ctx: Context, ctr: Container, volumes: bool = False) -> None:
    """Remove the files and the record (idempotent; the record goes last), then with
    `volumes` (rm -v, --rm) the container's anonymous volumes."""
    from minidock.net import api
    from minidock.pipeline import best_effort, report
    cid = ctr["Id"]

    def files() -> None:
        for path in (ctx.container_dir(cid), ctx.run_dir(cid)):
            rmtree(path)

    def record() -> None:
        with ctx.store.transaction():
            records.delete(ctx, cid)
    errors = best_effort([("forget_container", lambda: api.forget_container(ctx, ctr)),
                          ("remove_files", files)], "rm")
    record()
    if volumes and any(m.get("_Anonymous") for m in ctr.get("_Mounts") or []):
        from minidock.runtime import volumes as vols
        for name in vols.anonymous_of(ctr):
            vols.remove_quietly(ctx, name)
    report(errors, "rm")
