"""Reconciliation: make the store, the kernel and the exec-root agree again after a
crash (a CLI or monitor killed mid-pipeline, a reboot, a flushed firewall).

minidock has no daemon to restart, so no single process owns the truth. The rules:

* **Who is working on what.** A pipeline that creates things marks its records with
  its *starter* (the CLI's pid + start time, `starter_mark()`): the record of a `run`
  (`_Starter`, cleared by record_running), each endpoint (`extra.starter`), a network
  being created (`_Starter`, cleared by its last write). A record whose starter is
  alive is in flight and never touched; a dead starter means the pipeline failed and
  its leftovers are repaired here, as its own rollback would have done.
* **Liveness, not time.** A container is live when its monitor or init runs (pid +
  start time); an endpoint is legitimate while its starter runs, or while its
  container is live and its record names the endpoint. Everything else of a container
  is released (idempotent teardown: a gone netns or veth counts as removed).
* **Ownership chains.** A claim's owner is an endpoint, stored in the same transaction
  as the address claim; an endpoint names its container and its sandbox key; so every
  kernel object and claim can be traced to a record or declared an orphan.
* **Where it runs.** Off the hot path: `reconcile_all` from `system prune` (under the
  exclusive lock, so no creating pipeline is in flight: they hold it shared through
  `busy()`); `reconcile_container` / `reap_network` when a command meets an object or
  a conflict whose owner may be dead (check, repair, retry once); `check_boot` at the
  start of every command (one stat: a missing exec-root marker means a reboot).

Locks are POSIX record locks (`lockf`): they are not inherited across fork, so a
monitor forked while a start holds the shared lock never pins it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

LOCK = "reconcile.lock"
BOOT_MARKER = "minidock.boot"

Container = dict[str, Any]


# -- starters and liveness ---------------------------------------------------------------
_mark: dict[str, int | None] = {}


def starter_mark() -> dict[str, int | None]:
    """This process as the starter of a pipeline: pid + start time (cached)."""
    pid = os.getpid()
    if _mark.get("Pid") != pid:
        from minidock.runtime.lifecycle import proc_start
        _mark.update(Pid=pid, Start=proc_start(pid))
    return dict(_mark)


def mark_alive(mark: dict[str, Any] | None) -> bool:
    """True while the process that wrote `mark` still runs (a recycled pid is not it)."""
    if not mark:
        return False
    from minidock.runtime.lifecycle import alive
    return alive(mark.get("Pid", 0), mark.get("Start"))


def container_live(ctr: Container) -> bool:
    """Running, and its monitor or its init still runs."""
    from minidock.runtime.lifecycle import monitor_alive, process_alive
    return bool(ctr["State"].get("Running")) and (monitor_alive(ctr) or process_alive(ctr))


def endpoint_legit(ep: Any, ctr: Container | None) -> bool:
    """An endpoint in flight (live starter), or of a live container that names it."""
    if mark_alive((ep.extra or {}).get("starter")):
        return True
    if ctr is None or not container_live(ctr):
        return False
    nets = (ctr.get("NetworkSettings") or {}).get("Networks") or {}
    return any(e.get("EndpointID") == ep.id for e in nets.values())


# -- locks -------------------------------------------------------------------------------
def _lock_fd(ctx: Any) -> int:
    os.makedirs(ctx.exec_root, mode=0o700, exist_ok=True)
    return os.open(os.path.join(ctx.exec_root, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                   0o600)


@contextmanager
def busy(ctx: Any) -> Iterator[None]:
    """Shared lock for a creating pipeline: a full reconcile waits for it (and it for
    a running reconcile). Microseconds when uncontended."""
    import fcntl
    fd = _lock_fd(ctx)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)   # closing drops this process's POSIX lock


@contextmanager
def exclusive(ctx: Any) -> Iterator[None]:
    """No creating pipeline runs while the body runs (full reconcile, reboot cleanup)."""
    import fcntl
    fd = _lock_fd(ctx)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- one container -----------------------------------------------------------------------
def reconcile_container(ctx: Any, ctr: Container) -> Container | None:
    """Repair one container record; returns it (fresh) or None if it was removed.

    Idempotent and safe when two processes repair the same container at once.
    """
    from minidock.runtime import lifecycle
    from minidock.runtime import container as records
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
        lifecycle.destroy(ctx, ctr)
        return None
    ctr = lifecycle.refresh(ctx, ctr)                    # lost monitor: exited, released
    if not container_live(ctr):
        release_container(ctx, ctr)
    else:
        _release_stale_endpoints(ctx, ctr)
    return records.get(ctx, ctr["Id"])


def _kill_init(ctr: Container) -> None:
    from minidock.runtime.lifecycle import signal_container, wait_gone
    import signal
    if signal_container(ctr, signal.SIGKILL):
        wait_gone(ctr["State"].get("Pid", 0), ctr.get("_PidStart"), 5)
    mon = ctr.get("_Monitor") or {}
    if mon:
        wait_gone(mon.get("Pid", 0), mon.get("Start"), 5)


def release_container(ctx: Any, ctr: Container) -> None:
    """Everything networking of a container that is not live (idempotent)."""
    from minidock.net import api, attach
    from minidock.net import endpoint as eps
    endpoints = eps.of_container(ctx.store, ctr["Id"])
    for ep in endpoints:      # leave: the veth goes now, even if a process pins the netns
        if ep.ports and not ep.rules:      # killed between applying and recording them
            ep = ep.with_(rules=tuple(_planned_port_rules(ctx, ep)))
        attach.release_endpoint(ctx, ep, leave=True)
    api.release_networking(ctx, ctr)
    for key in _sandbox_keys(endpoints):
        destroy_key(key)


def _planned_port_rules(ctx: Any, ep: Any) -> list[Any]:
    """The port rules program_external_connectivity makes for `ep` (as stored data)."""
    from ipaddress import IPv4Address
    from minidock.net import iptables, rules
    doc = ctx.store.get("network", ep.network_id)
    if doc is None or not ctx.config.iptables:
        return []
    bridge = (doc.get("_net") or {}).get("bridge", "")
    out: list[Any] = []
    for b in ep.ports:
        out += rules.port_rules(bridge, IPv4Address(ep.ip), b["proto"], b["host_ip"],
                                b["host_port"], b["container_port"], ctx.config.userland_proxy)
    return [(r[0], r[1], tuple(r[2]), r[3]) for r in iptables.to_data(out)]


def _release_stale_endpoints(ctx: Any, ctr: Container) -> None:
    """A live container's endpoints that a killed connect left behind."""
    from minidock.net import attach
    from minidock.net import endpoint as eps
    for ep in eps.of_container(ctx.store, ctr["Id"]):
        if not endpoint_legit(ep, ctr):
            attach.release_endpoint(ctx, ep, leave=True)


def _sandbox_keys(endpoints: list[Any]) -> set[str]:
    return {k for ep in endpoints if (k := (ep.extra or {}).get("sandbox"))}


def destroy_key(key: str) -> None:
    """Unpin a sandbox key and its /run/netns link (idempotent)."""
    from minidock.net import netns
    from minidock.net.sandbox import RUN_NETNS
    try:
        for name in os.listdir(RUN_NETNS):
            netns.unlink_name(name, key, RUN_NETNS)
    except OSError:
        pass
    netns.unbind_key(key)


# -- networks ----------------------------------------------------------------------------
def reap_networks(ctx: Any) -> bool:
    """Remove networks whose `network create` died half-way; True if any was."""
    found = False
    for nid, doc in ctx.store.list("network"):
        mark = doc.get("_Starter")
        if mark and not mark_alive(mark):
            # read before the liveness check: its creator may have finished (and
            # exited) in between; a dead creator writes no more, so read again
            doc = ctx.store.get("network", nid)
            if doc is None or doc.get("_Starter") != mark:
                continue
            from minidock.net.controller import delete_network
            delete_network(ctx, nid, doc)
            found = True
    return found


# -- conflicts that may be stale -----------------------------------------------------------
def reap_container_name(ctx: Any, name: str) -> bool:
    """The holder of container name `name` failed or died: repair it; True if the name
    may be free now."""
    hit = ctx.store.get_by_name("container", name)
    if hit is None:
        return True
    return reconcile_container(ctx, hit[1]) is None


def reap_claim_owner(ctx: Any, space: str, keys: list[str] | None = None) -> bool:
    """The endpoints holding claims in `space` (only `keys`, if given) whose owner is
    not legitimate are released; True if any was."""
    from minidock.net import attach
    from minidock.net import endpoint as eps
    store = ctx.store
    found = False
    for key, owner in store.claimed(space).items():
        if keys is not None and not any(key == k or key.endswith(":" + k) for k in keys):
            continue
        doc = store.get("endpoint", owner)
        if doc is None:
            continue                  # in flight (claim and record share a transaction)
        ep = eps.from_doc(doc)
        ctr = store.get("container", ep.container_id)
        if ctr is not None and ctr.get("_Starter") and mark_alive(ctr["_Starter"]):
            continue
        if not endpoint_legit(ep, ctr):
            # judged on records read before the liveness checks: a starter that
            # finished and exited in between left newer ones (it writes no more)
            doc = store.get("endpoint", owner)
            ctr = store.get("container", ep.container_id)
            if doc is None:
                continue
            ep = eps.from_doc(doc)
            if ctr is not None and ctr.get("_Starter") and mark_alive(ctr["_Starter"]):
                continue
        if not endpoint_legit(ep, ctr):
            if ctr is not None:
                reconcile_container(ctx, ctr)
            attach.release_endpoint(ctx, ep, leave=True)
            found = True
    return found


# -- reboot ------------------------------------------------------------------------------
def boot_marker(ctx: Any) -> str:
    return os.path.join(ctx.exec_root, BOOT_MARKER)


def check_boot(ctx: Any) -> None:
    """Cheap (one stat): if the exec-root marker is missing, this is the first command
    since boot (or since the exec-root was wiped): drop the previous boot's runtime
    state, then write the marker."""
    if os.path.exists(boot_marker(ctx)):
        return
    with exclusive(ctx):
        if os.path.exists(boot_marker(ctx)):
            return
        if os.path.exists(os.path.join(ctx.root, "minidock.db")):
            after_reboot(ctx)
        with open(boot_marker(ctx), "w") as fh:
            fh.write(_boot_id())


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def after_reboot(ctx: Any) -> None:
    """Nothing of the previous boot runs: containers exited, endpoints and their claims,
    DNS records and link rules dropped. Networks stay (their bridges are rebuilt by the
    next network initialisation, whose marker the reboot removed too)."""
    from minidock.runtime import container as records
    from minidock.runtime.lifecycle import LOST_EXIT_CODE, _mark_exited
    from minidock.net.api import _clear_runtime_fields
    store = ctx.store
    with store.transaction():
        for ctr in records.all_containers(ctx):
            if ctr.get("_Starter"):
                continue                  # a dead run: the next touch removes it
            if ctr["State"].get("Running"):
                _mark_exited(ctr, LOST_EXIT_CODE, "lost at reboot")
            _clear_runtime_fields(ctr.get("NetworkSettings") or {})
            records.save(ctx, ctr)
        for eid, _doc in store.list("endpoint"):
            store.release_owner(eid)
            store.delete("endpoint", eid)
        for lid, doc in store.list("link"):
            if doc.get("Rules"):
                doc["Rules"] = []
                store.put("link", lid, doc)
    try:
        from minidock.net import dnsrecords
        with store.transaction():
            db = dnsrecords._db(store)
            for table in ("dns_names", "dns_endpoints"):
                db.execute(f"DELETE FROM {table}")
    except ImportError:
        pass


# -- everything --------------------------------------------------------------------------
def reconcile_all(ctx: Any) -> list[str]:
    """`system prune`: repair every record, then sweep orphans in store, kernel and
    exec-root. Returns what was repaired (one line each)."""
    from minidock import sweep
    check_boot(ctx)
    with exclusive(ctx):
        return sweep.run(ctx)
