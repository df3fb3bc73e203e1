"""The per-host overlay agent: this host's lease, the networks' namespaces, the peers.

One process per exec-root, started on demand by agent.py, gone when the host has no
overlay endpoint left (after IDLE seconds without a request). It

  * holds this host's etcd lease (TTL = daemon.json `cluster-store-opts`
    `discovery.ttl`, default 20 s) and refreshes it every TTL/3; the CLI puts this
    host's address claims and endpoint records on it, so that when the host dies they
    leave the store within the TTL. A restarted agent reuses the lease while etcd still
    has it, else takes a new one and re-puts this host's keys (from the local store);
  * makes each overlay network's namespace on request (datapath.py);
  * keeps every namespace's FDB and neighbour entries equal to the other hosts'
    endpoints in etcd, and mirrors their names into the local DNS records so the
    embedded resolver answers them. It re-reads the store on every change an etcd watch
    (`etcd3gw`, the maintained client; ~200 ms of imports, paid here once) reports,
    and every TTL/3 in any case: a watch lost with a dead member costs latency, not
    correctness;
  * removes the namespace of a network this host no longer uses or etcd no longer has.

Threads: the control socket's, the watch's, and the main loop that does all store and
kernel work (under one lock, which requests share).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from minidock.hints import Any

from minidock.cluster import gstore
from minidock.spawn import read_line
from minidock.context import Context
from minidock.errors import MinidockError
from minidock.net.drivers.overlay import datapath, records
from minidock.cluster.agent import Paths

IDLE = 10.0
ORPHAN_GRACE = 10.0
WATCH_RENEW = 15.0


class Agent:
    def __init__(self, paths: Paths, ctx: Context, listener: socket.socket) -> None:
        self.paths, self.listener = paths, listener
        self.args = (ctx.root, ctx.exec_root, ctx.config_path)
        self.tls = threading.local()      # a Context (SQLite handle) per thread
        self.gs = gstore.open_gstore(ctx)
        self.ttl = records.lease_ttl(ctx.config)
        self.vtep = records.advertise_address(ctx.config)
        self.lease = 0
        self.lock = threading.RLock()      # store and kernel work
        self.lease_lock = threading.Lock()   # the lease only (etcd, local reads)
        self.wake = threading.Event()
        self.last_request = time.monotonic()
        self.ensured: dict[str, float] = {}
        self.watcher: Any = None
        self.orphans: dict[str, float] = {}
        self.built: set[str] = set()
        self.running = True

    @property
    def ctx(self) -> Context:
        ctx = getattr(self.tls, "ctx", None)
        if ctx is None:
            ctx = self.tls.ctx = Context(*self.args)
        return ctx

    # -- lease ---------------------------------------------------------------------------
    def ensure_lease(self) -> int:
        """The live lease (re-granted, and this host's keys re-put, if it expired)."""
        with self.lease_lock:
            return self._ensure_lease()

    def _ensure_lease(self) -> int:
        if self.lease and self.gs.etcd.lease_keepalive(self.lease) > 0:
            return self.lease
        old = _read_int(self.paths.lease)
        if old and self.gs.etcd.lease_keepalive(old) > 0:
            self.lease = old
        else:
            self.lease = self.gs.etcd.lease_grant(self.ttl)
            _write(self.paths.lease, str(self.lease))
            log(f"lease {self.lease:x} granted (ttl {self.ttl}s)")
        self.republish()
        return self.lease

    def republish(self) -> None:
        """Put this host's address claims and endpoint records on the current lease."""
        for ep, net in records.local_endpoints(self.ctx.store):
            records.publish(self.gs, self.ctx, ep, self.vtep, self.lease)

    # -- requests ----------------------------------------------------------------------
    def handle(self, line: str) -> str:
        op, _sp, arg = line.partition(" ")
        self.last_request = time.monotonic()
        try:
            if op == "lease":   # never behind the work lock: a CLI may ask it while
                return f"ok {self.lease or self.ensure_lease()}"   # holding SQLite's
            if op == "sync":
                self.wake.set()
                return "ok"
            if op == "ensure":
                with self.lock:
                    return f"ok {self.ensure_network(arg)}"
        except gstore.E.StoreUnavailable as err:
            return f"unavailable {err}"
        except (MinidockError, OSError) as err:
            return f"error overlay agent: {op} {arg[:12]}: {err}"
        return f"error unknown request {op!r}"

    def ensure_network(self, nid: str) -> str:
        doc = self.ctx.store.get("network", nid)
        if doc is None:
            raise MinidockError(f"network {nid} not found")
        path = self.paths.netns(nid)
        p = doc["_net"]
        if nid not in self.built or not os.path.exists(path):
            datapath.ensure_network(path, nid, p["state"]["vni"], p["gateway"],
                                    int(p["subnet"].split("/")[1]))
            self.built.add(nid)
        self.ensured[nid] = time.monotonic()
        if not self.lease:
            self.ensure_lease()
        self.wake.set()
        return path

    # -- the loop ----------------------------------------------------------------------
    def reconcile(self) -> None:
        """Peers, DNS mirror and namespaces equal to the store's endpoints."""
        with self.lock:
            self.ensure_lease()
            eps, _rev = gstore.list_endpoints(self.gs)
            mine = records.local_endpoints(self.ctx.store)
            in_use = {net["Id"]: net for _ep, net in mine}
            for nid in list(self.ensured):
                if nid in in_use or time.monotonic() - self.ensured[nid] < IDLE:
                    continue
                del self.ensured[nid]
            for nid, path in self.namespaces().items():
                if nid not in in_use and nid not in self.ensured:
                    datapath.delete_netns(path)
                    self.built.discard(nid)
                    log(f"network {nid[:12]}: namespace removed")
                    continue
                peers = {datapath.Peer(r["ip"], r["mac"], r["vtep"])
                         for (n, _e), r in eps.items() if n == nid and r["vtep"] != self.vtep}
                added, removed = datapath.program_peers(path, peers)
                if added or removed:
                    log(f"network {nid[:12]}: peers +{added} -{removed}")
            records.mirror_dns(self.ctx.store, eps, self.vtep, set(in_use))
            self.sweep_orphans({ep.id for ep, _n in mine})

    def sweep_orphans(self, local: set[str]) -> None:
        """Delete keys on this host's lease that no local endpoint owns (a CLI that
        could not release them: etcd was down), once seen so for ORPHAN_GRACE seconds
        (a claim is made in etcd just before its local record is committed)."""
        kvs, _rev = self.gs.etcd.get_prefix(self.gs.keys.base)
        now, seen = time.monotonic(), {}
        for kv in kvs:
            if kv.lease != self.lease:
                continue
            owner = kv.key.rsplit("/", 1)[1] if "/endpoint/" in kv.key else kv.value
            if owner in local:
                continue
            seen[kv.key] = self.orphans.get(kv.key, now)
            if now - seen[kv.key] >= ORPHAN_GRACE:
                self.gs.etcd.txn([gstore.E.cmp_value(kv.key, kv.value)],
                                 [gstore.E.op_delete(kv.key)])
                log(f"orphan {kv.key} removed")
                del seen[kv.key]
        self.orphans = seen

    def namespaces(self) -> dict[str, str]:
        """{nid: path} of the namespaces on this host (nid from the local store)."""
        out = {}
        try:
            names = os.listdir(self.paths.netns_dir)
        except FileNotFoundError:
            return {}
        nets = {nid[:10]: nid for nid, d in self.ctx.store.list("network")
                if d.get("Scope") == "global"}
        for name in names:
            nid = nets.get(name[2:])
            path = os.path.join(self.paths.netns_dir, name)
            if nid is None:
                datapath.delete_netns(path)   # its network is gone from etcd
            else:
                out[nid] = path
        return out

    def run(self) -> None:
        threading.Thread(target=self.serve, daemon=True).start()
        next_watch = 0.0
        while self.running:
            if time.monotonic() >= next_watch:
                self.renew_watch()
                next_watch = time.monotonic() + WATCH_RENEW
            try:
                gstore.sync_networks(self.ctx, self.gs)
                self.reconcile()
            except MinidockError as err:
                log(f"reconcile: {err}")
            if self.idle() and self.idle_exit():
                return
            self.wake.wait(max(1.0, self.ttl / 3))
            self.wake.clear()

    def idle(self) -> bool:
        return (time.monotonic() - self.last_request > IDLE and not self.ensured
                and not records.local_endpoints(self.ctx.store))

    def idle_exit(self) -> bool:
        """No overlay endpoint here: drop namespaces, mirror and lease, and leave."""
        with self.paths.locked(), self.lock:
            if not self.idle():
                return False
            for path in self.namespaces().values():
                datapath.delete_netns(path)
            records.mirror_dns(self.ctx.store, {}, self.vtep, set())
            try:
                if self.lease:
                    self.gs.etcd.lease_revoke(self.lease)
            except MinidockError as err:
                log(f"revoke: {err}")
            for path in (self.paths.lease, self.paths.sock, self.paths.pid):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            self.running = False
        return True

    def renew_watch(self) -> None:
        """(Re)open the etcd watch on minidock's prefix, on the first live member."""
        import etcd3gw
        from etcd3gw.watch import Watcher
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        base = self.gs.keys.base
        for host, port in list(self.gs.etcd.members):
            try:
                client = etcd3gw.client(host=host, port=port, timeout=None)
                self.watcher = Watcher(client, base, lambda _ev: self.wake.set(),
                                       range_end=gstore.E.prefix_end(base))
                return
            except Exception as err:   # requests' errors: try the next member
                log(f"watch on {host}:{port}: {err}")

    def serve(self) -> None:
        while self.running:
            try:
                conn, _a = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.reply, args=(conn,), daemon=True).start()

    def reply(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(30)
                line = read_line(conn)
                conn.sendall(self.handle(line).encode() + b"\n")
            except OSError:
                pass


def _read_int(path: str) -> int:
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text + "\n")
    os.rename(tmp, path)


def log(msg: str) -> None:
    print(f"minidock-overlay[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    """`python -m minidock.net.drivers.overlay.agentd ROOT EXEC_ROOT CONFIG LISTEN_FD`."""
    root, exec_root, config, fd = argv[0], argv[1], argv[2], int(argv[3])
    os.chdir("/")
    listener = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    agent = Agent(Paths(exec_root), Context(root, exec_root, config), listener)
    _write(agent.paths.pid, str(os.getpid()))
    log(f"started (vtep {agent.vtep})")
    agent.run()
    log("no overlay endpoint on this host: exiting")
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
