"""The runtime's own repairs: a container record left by a crash (a `run` whose CLI
died, a killed monitor) made true again. reconcile.py orchestrates these for `system
prune` and after a reboot; lifecycle and start call them when they meet such a record.

    reconcile_container   a dead run's record and init removed; a lost monitor's
                          container marked exited; networking of what is not live
                          released (net/repair.py)
    reap_container_name   the holder of a name is repaired, so the name may be free
    after_reboot          every container exited and its runtime fields cleared
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minidock.identity import container_live, mark_alive

if TYPE_CHECKING:
    from minidock.context import Container, Context


def reconcile_container(ctx: Context, ctr: Container) -> Container | None:
    """Repair one container record; returns it (fresh) or None if it was removed.

    Idempotent and safe when two processes repair the same container at once.
    """
    from minidock.net import repair as netrepair
    from minidock.runtime import container as records
    from minidock.runtime import lifecycle
    starter = ctr.get("_Starter")
    if starter and mark_alive(starter):
        return ctr                                       # a run in flight
    if starter:
        # `ctr` was read before the liveness check: the run may have recorded its
        # container (and its CLI exited) in between; a dead CLI writes no more
        fresh = records.get(ctx, ctr["Id"])
        if fresh is None:
            return None
        if fresh.get("_Starter") != starter:
            return reconcile_container(ctx, fresh)
    if starter:                                          # a run whose CLI died
        _kill_init(ctr)
        netrepair.release_container(ctx, ctr)
        lifecycle.destroy(ctx, ctr)
        return None
    ctr = lifecycle.refresh(ctx, ctr)                    # lost monitor: exited, released
    if not container_live(ctr):
        netrepair.release_container(ctx, ctr)
    else:
        netrepair.release_stale_endpoints(ctx, ctr)
    return records.get(ctx, ctr["Id"])


def _kill_init(ctr: Container) -> None:
    import signal
    from minidock.runtime.lifecycle import signal_container, wait_gone
    if signal_container(ctr, signal.SIGKILL):
        wait_gone(ctr["State"].get("Pid", 0), ctr.get("_PidStart"), 5)
    mon = ctr.get("_Monitor") or {}
    if mon:
        wait_gone(mon.get("Pid", 0), mon.get("Start"), 5)


def reap_container_name(ctx: Context, name: str) -> bool:
    """The holder of container name `name` failed or died: repair it; True if the name
    may be free now."""
    hit = ctx.store.get_by_name("container", name)
    if hit is None:
        return True
    return reconcile_container(ctx, hit[1]) is None


def after_reboot(ctx: Context) -> None:
    """Nothing of the previous boot runs: containers exited, runtime fields cleared
    (a dead run's record is left for the next touch to remove)."""
    from minidock.net.api import clear_runtime_fields
    from minidock.runtime import container as records
    from minidock.runtime.lifecycle import LOST_EXIT_CODE, mark_exited
    with ctx.store.transaction():
        for ctr in records.all_containers(ctx):
            if ctr.get("_Starter"):
                continue
            if ctr["State"].get("Running"):
                mark_exited(ctr, LOST_EXIT_CODE, "lost at reboot")
            clear_runtime_fields(ctr.get("NetworkSettings") or {})
            records.save(ctx, ctr)
