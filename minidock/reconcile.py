"""Reconciliation: make the store, the kernel and the exec-root agree again after a
crash (a CLI or monitor killed mid-pipeline, a reboot, a flushed firewall).

This module only orchestrates; each subsystem owns its repairs: process identity and
liveness (identity.py), the locks (locks.py), container records (runtime/repair.py),
networking (net/repair.py, and each driver's sweep), links (net/links/links.py). Only the
CLI imports it:

* `check_boot` at the start of every command (one stat: a missing exec-root marker
  means a reboot): the previous boot's runtime state is dropped, then containers
  whose restart policy says so start again (runtime/restart.py).
* `reconcile_all` for `system prune`: under the exclusive lock (no creating pipeline
  in flight: they hold it shared), every record repaired, then every orphan swept
  (sweep.py).

Commands that meet an object or a conflict whose owner may be dead repair just that
(runtime/repair.reconcile_container, net controller.reap_networks, attach's
reap_claim_owners): check, repair, retry once.
"""

from __future__ import annotations

import os
from minidock.hints import TYPE_CHECKING

from minidock.locks import exclusive

if TYPE_CHECKING:
    from minidock.context import Context

BOOT_MARKER = "minidock.boot"


def boot_marker(ctx: Context) -> str:
    return os.path.join(ctx.exec_root, BOOT_MARKER)


def check_boot(ctx: Context) -> None:
    """Cheap (one stat): if the exec-root marker is missing, this is the first command
    since boot (or since the exec-root was wiped): drop the previous boot's runtime
    state, then write the marker."""
    if os.path.exists(boot_marker(ctx)):
        return
    with exclusive(ctx):
        if os.path.exists(boot_marker(ctx)):
            return
        booted = os.path.exists(os.path.join(ctx.root, "minidock.db"))
        if booted:
            after_reboot(ctx)
        with open(boot_marker(ctx), "w") as fh:
            fh.write(_boot_id())
    if booted:                    # restart policies, once the lock is released
        from minidock.runtime import container as records
        from minidock.runtime.restart import restart_after_boot
        restart_after_boot(ctx, records.all_containers(ctx))


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def after_reboot(ctx: Context) -> None:
    """Nothing of the previous boot runs: containers exited, endpoints and their claims,
    DNS records and link rules dropped. Networks stay (their bridges are rebuilt by the
    next network initialisation, whose marker the reboot removed too)."""
    from minidock.net.links import links
    from minidock.net import repair as netrepair
    from minidock.runtime import repair as rtrepair
    rtrepair.after_reboot(ctx)
    netrepair.after_reboot(ctx)
    links.forget_rules(ctx)


def reconcile_all(ctx: Context) -> list[str]:
    """`system prune`: repair every record, then sweep orphans in store, kernel and
    exec-root. Returns what was repaired (one line each)."""
    from minidock import sweep
    check_boot(ctx)
    with exclusive(ctx):
        return sweep.run(ctx)
