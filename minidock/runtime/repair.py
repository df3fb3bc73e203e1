"""The runtime's own repairs: a container record left by a crash (a `run` whose CLI
died, a killed monitor) made true again. reconcile.py orchestrates these for `system
prune` and after a reboot; lifecycle and start call them when they meet such a record.

    reconcile_container   a dead run's record and init removed (its anonymous volumes
                          too); a lost monitor's container marked exited; what a
                          container that is not live holds released
    release_container     its networking (net/repair.py) and its cgroup
    reap_container_name   the holder of a name is repaired, so the name may be free
    after_reboot          every container exited and its runtime fields cleared
    sweep_cgroups         container cgroups (below this root's parent) of no live
                          container (system prune)
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING

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
        release_container(ctx, ctr)
        lifecycle.destroy(ctx, ctr, volumes=True)
        return None
    ctr = lifecycle.refresh(ctx, ctr)                    # lost monitor: exited, released
    if not container_live(ctr):
        release_container(ctx, ctr)
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


def release_container(ctx: Context, ctr: Container) -> list[str]:
    """Everything a container that is not live holds (idempotent): its networking,
    then its cgroup (stored at create, so a killed run's is found too); the networking
    teardown errors, each already reported on stderr."""
    from minidock.net import repair as netrepair
    from minidock.runtime import cgroups
    errors = netrepair.release_container(ctx, ctr)
    cgroups.remove(ctr.get("_Cgroup"))
    return errors


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
            if ctr["State"].get("Running") or ctr["State"].get("Restarting"):
                mark_exited(ctr, LOST_EXIT_CODE, "lost at reboot")
                ctr["State"]["Restarting"] = False
            clear_runtime_fields(ctr.get("NetworkSettings") or {})
            records.save(ctx, ctr)


def sweep_cgroups(ctx: Context) -> list[str]:
    """Container cgroups below this root's parent whose container is not live (nor
    waiting out a restart back-off); one line per removal."""
    from minidock.runtime import cgroups
    from minidock.runtime import container as records
    live = {c["Id"] for c in records.all_containers(ctx) if container_live(c)
            or c["State"].get("Restarting")}
    out = []
    for ctrl, path in cgroups.plan(ctx.root, "x").items():
        parent = os.path.dirname(path)
        for cid in listdir(parent):
            if len(cid) == 64 and cid not in live and os.path.isdir(os.path.join(parent, cid)):
                cgroups.remove({ctrl: os.path.join(parent, cid)}, wait=0)
                out.append(f"cgroup {ctrl or 'unified'}/{cid[:12]}: removed")
    return out


def listdir(path: str) -> list[str]:
    """Sorted names in `path`; [] when it cannot be read (sweeps are best effort)."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
