"""Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`), daemonless.

There is no daemon to restart a container, so its monitor does: when the process
exits, `record_exit` asks `decide` (Docker's restartmanager rules, pure), marks the
record "restarting" and keeps the monitor; the monitor waits the back-off and runs
the ordinary start pipeline again (`restart_from_monitor`), which forks a new monitor
and exits. The old sandbox was torn down with the exit (release_networking), and the
start sets everything up again: one start path, so links, DNS records and the
parents' hosts files follow the new address exactly as on `minidock restart`.

Back-off as Docker: 100 ms, doubled after each restart, back to 100 ms when the
process had run for 10 s or more. `stop`, `kill` and `rm` set `_ManuallyStopped`,
which ends every policy (and a waiting monitor is killed: nothing else runs then).
After a reboot, `restart_after_boot` starts the containers whose policy says so.
"""

from __future__ import annotations

import os
import time
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import InvalidArgument

if TYPE_CHECKING:
    from minidock.context import Context

BACKOFF_START_MS = 100
BACKOFF_RESET_S = 10
BACKOFF_MAX_MS = 60_000


def parse_policy(text: str) -> dict[str, Any]:
    """HostConfig.RestartPolicy from the flag (Docker's ParseRestartPolicy messages)."""
    name, colon, count = text.partition(":")
    if name in ("always", "unless-stopped"):
        if colon:
            raise InvalidArgument(
                f"maximum retry count cannot be used with restart policy '{name}'")
        return {"Name": name, "MaximumRetryCount": 0}
    if name in ("no", ""):
        if colon:
            raise InvalidArgument(f"invalid restart policy {text}")
        return {"Name": "no", "MaximumRetryCount": 0}
    if name == "on-failure":
        try:
            n = int(count) if colon else 0
        except ValueError:
            raise InvalidArgument(f'strconv.Atoi: parsing "{count}": invalid syntax') from None
        if n < 0:
            raise InvalidArgument("maximum retry count cannot be negative")
        return {"Name": name, "MaximumRetryCount": n}
    raise InvalidArgument(f"invalid restart policy {name}")


def decide(policy: dict[str, Any], exit_code: int, restart_count: int,
           manually_stopped: bool) -> bool:
    """Docker's restartmanager.ShouldRestart."""
    if manually_stopped:
        return False
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = policy.get("MaximumRetryCount") or 0
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


def next_delay_ms(previous_ms: int, ran_for_s: float) -> int:
    """The back-off before the next restart."""
    if ran_for_s >= BACKOFF_RESET_S or previous_ms <= 0:
        return BACKOFF_START_MS
    return min(previous_ms * 2, BACKOFF_MAX_MS)


def uptime_s(started_at: str) -> float:
    """Seconds since State.StartedAt (RFC 3339, UTC)."""
    import calendar
    try:
        base = calendar.timegm(time.strptime(started_at[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0
    return max(0.0, time.time() - base)


def plan_restart(ctr: dict[str, Any], code: int) -> int | None:
    """At the exit: the back-off in ms when the policy restarts, else None. Updates
    the record's private back-off state (the caller saves it)."""
    if ctr["HostConfig"].get("AutoRemove"):
        return None
    if not decide(ctr["HostConfig"].get("RestartPolicy") or {}, code,
                  ctr.get("RestartCount", 0), bool(ctr.get("_ManuallyStopped"))):
        return None
    delay = next_delay_ms(ctr.get("_RestartDelay", 0), uptime_s(ctr["State"]["StartedAt"]))
    ctr["_RestartDelay"] = delay
    return delay


def restart_from_monitor(ctx: Context, cid: str, delay_ms: int) -> None:
    """In the monitor, after the exit is recorded as "restarting": wait, then start.

    The monitor unshared CLONE_NEWPID for the old init, whose namespace is dead now:
    a fork would fail (ENOMEM), so the monitor first takes its own pid namespace back
    for its children. A `stop` meanwhile kills this monitor (lifecycle.stop).
    """
    from minidock.runtime import syscalls as sc
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, sc.CLONE_NEWPID)
    finally:
        os.close(fd)
    time.sleep(delay_ms / 1000)
    from minidock.runtime import container as records
    from minidock.runtime import start as starter
    with ctx.store.transaction():
        ctr = records.get(ctx, cid)
        if ctr is None or not ctr["State"].get("Restarting") or ctr.get("_ManuallyStopped"):
            return
        ctr["RestartCount"] = ctr.get("RestartCount", 0) + 1
        records.save(ctx, ctr)
    try:
        starter.start(ctx, ctr, attach=False)
    except Exception as err:  # noqa: BLE001  (recorded, the monitor has no one to tell)
        from minidock.errors import MinidockError
        starter.record_start_failure(ctx, ctr, err if isinstance(err, MinidockError)
                                     else MinidockError(str(err)))
        _clear_restarting(ctx, cid)


def _clear_restarting(ctx: Context, cid: str) -> None:
    from minidock.runtime import container as records
    with ctx.store.transaction():
        ctr = records.get(ctx, cid)
        if ctr is not None and ctr["State"].get("Restarting"):
            ctr["State"].update(Restarting=False, Status="exited")
            ctr.pop("_Monitor", None)
            records.save(ctx, ctr)


def boots_again(ctr: dict[str, Any]) -> bool:
    """Whether a container stopped by a reboot is started again (see below)."""
    if ctr.get("_Starter") or ctr["State"].get("StartedAt", "").startswith("0001"):
        return False
    policy = ctr["HostConfig"].get("RestartPolicy") or {}
    manual = bool(ctr.get("_ManuallyStopped")) and policy.get("Name") != "always"
    return decide(policy, ctr["State"].get("ExitCode", 0), ctr.get("RestartCount", 0), manual)


def restart_after_boot(ctx: Context, ctrs: list[dict[str, Any]]) -> None:
    """Start the containers a reboot stopped whose policy brings them back, as
    Docker's daemon does at its start: `always` even after a manual stop,
    `unless-stopped` unless stopped by hand, `on-failure` after a failure (a
    container lost at reboot exited 255); never one that was never started."""
    from minidock.runtime import start as starter
    for ctr in ctrs:
        if not boots_again(ctr):
            continue
        try:
            starter.start(ctx, ctr, attach=False)
        except Exception as err:  # noqa: BLE001  (the command that noticed must go on)
            import sys
            print(f"minidock: restarting {ctr['Name'].lstrip('/')} after reboot: {err}",
                  file=sys.stderr)
