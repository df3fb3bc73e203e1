"""A throwaway multi-host cluster for overlay tests: an underlay, hosts, etcd members.

    underlay netns  mdu-<hex>: bridge ul0 192.0.2.1/24 (the "outside world")
    etcd members    mde-<hex>-<i>: own netns, veth on ul0, 192.0.2.2<i>, etcd's client
                    port 2379 and peer port 2380 on that address only; data dirs under
                    the cluster's tmp dir; started and stopped by PID
    test hosts      TestHost (conftest), a veth `ul0` on the underlay, 192.0.2.1<i>;
                    daemon.json with cluster-store (the three members) and
                    cluster-advertise (the host's address)

Everything lives in netns the cluster made; teardown removes hosts, members and the
underlay, and `leaks()` lists keys still in etcd under minidock's prefix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from tests.integration.conftest import TestHost

UNDERLAY_GW = "192.0.2.1"
PREFIX = "/minidock/"
TTL = 5


def _ns(name: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["nsenter", f"--net=/run/netns/{name}", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script!r} in {name} exited {proc.returncode}: {proc.stderr}")
    return proc


class Member:
    """One etcd member in its own netns on the underlay."""

    def __init__(self, cluster: "Cluster", i: int) -> None:
        self.i = i
        self.name = f"{cluster.tag}-e{i}"
        self.addr = f"192.0.2.2{i}"
        self.data = os.path.join(cluster.dir, f"etcd{i}")
        self.proc: subprocess.Popen | None = None
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        cluster.plug(self.name, f"{cluster.tag[-4:]}e{i}", self.addr)

    def start(self, initial: str, token: str) -> None:
        log = open(self.data + ".log", "ab")
        peer, client = f"http://{self.addr}:2380", f"http://{self.addr}:2379"
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.name}", "etcd", "--name", f"m{self.i}",
             "--data-dir", self.data, "--listen-peer-urls", peer,
             "--initial-advertise-peer-urls", peer, "--listen-client-urls", client,
             "--advertise-client-urls", client, "--initial-cluster", initial,
             "--initial-cluster-state", "new", "--initial-cluster-token", token,
             "--heartbeat-interval", "100", "--election-timeout", "1000"],
            stdout=log, stderr=log, start_new_session=True)
        log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def destroy(self) -> None:
        self.kill()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class Cluster:
    """The underlay, `n_members` etcd members and `n_hosts` minidock hosts."""

    def __init__(self, n_hosts: int = 3, n_members: int = 3, ttl: int = TTL) -> None:
        self.tag = "mdc" + uuid.uuid4().hex[:6]
        self.dir = tempfile.mkdtemp(prefix=self.tag + "-", dir="/tmp")
        self.underlay = f"{self.tag}-u"
        self.members: list[Member] = []
        self.hosts: list[TestHost] = []
        self._plugs = 0
        subprocess.run(["ip", "netns", "add", self.underlay], check=True)
        _ns(self.underlay, f"ip link set lo up; ip link add ul0 type bridge; "
                           f"ip addr add {UNDERLAY_GW}/24 dev ul0; ip link set ul0 up")
        try:
            self.members = [Member(self, i) for i in range(1, n_members + 1)]
            initial = ",".join(f"m{m.i}=http://{m.addr}:2380" for m in self.members)
            for m in self.members:
                m.start(initial, self.tag)
            self.store_url = "etcd://" + ",".join(f"{m.addr}:2379" for m in self.members)
            for i in range(1, n_hosts + 1):
                self.add_host(i, ttl)
            self.wait_healthy()
        except BaseException:
            self.destroy()
            raise

    def plug(self, netns: str, tag: str, addr: str, ifname: str = "ul0") -> None:
        """A veth from the underlay bridge into `netns`, named `ifname` there, `addr`/24."""
        self._plugs += 1
        outer, inner = f"u{tag}", f"i{tag}"
        _ns(self.underlay, f"ip link add {outer} type veth peer name {inner}; "
                           f"ip link set {outer} master ul0 up; "
                           f"ip link set {inner} netns /run/netns/{netns}")
        _ns(netns, f"ip link set lo up; ip link set {inner} name {ifname}; "
                   f"ip addr add {addr}/24 dev {ifname}; ip link set {ifname} up")

    def add_host(self, i: int, ttl: int) -> TestHost:
        h = TestHost()
        self.hosts.append(h)
        h.addr = f"192.0.2.1{i}"  # type: ignore[attr-defined]
        self.plug(h.name, f"{self.tag[-4:]}h{i}", h.addr)  # type: ignore[attr-defined]
        h.write_daemon_json(json.dumps({
            "cluster-store": self.store_url, "cluster-advertise": h.addr,  # type: ignore[attr-defined]
            "cluster-store-opts": {"discovery.ttl": str(ttl)}}))
        return h

    # -- etcd, seen from the underlay -------------------------------------------------
    def etcdctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        eps = ",".join(f"http://{m.addr}:2379" for m in self.members if m.proc)
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.underlay}", "etcdctl",
                               f"--endpoints={eps}", "--command-timeout=5s", *args],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, ETCDCTL_API="3"))
        if check and proc.returncode != 0:
            raise AssertionError(f"etcdctl {args} exited {proc.returncode}: {proc.stderr}")
        return proc

    def keys(self, prefix: str = PREFIX) -> list[str]:
        out = self.etcdctl("get", "--prefix", "--keys-only", prefix).stdout
        return [k for k in out.splitlines() if k]

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self.etcdctl("endpoint", "health", check=False)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"etcd cluster not healthy: {proc.stdout}{proc.stderr}")
            time.sleep(0.5)

    def restart_members(self) -> None:
        """Start the killed members again (same data dirs) and wait for a healthy cluster."""
        initial = ",".join(f"m{m.i}=http://{m.addr}:2380" for m in self.members)
        for m in self.members:
            if m.proc is None:
                m.start(initial, self.tag)
        self.wait_healthy()

    def leaks(self) -> list[str]:
        """Keys under minidock's prefix other than predefined state (none expected)."""
        return [f"etcd key: {k}" for k in self.keys()]

    def kill_host(self, h: TestHost) -> None:
        """A host dies: every process in its netns killed, its netns and files gone."""
        h.destroy()
        self.hosts.remove(h)

    def destroy(self) -> None:
        for h in list(self.hosts):
            h.destroy()
        self.hosts = []
        for m in self.members:
            m.destroy()
        subprocess.run(["ip", "netns", "del", self.underlay], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(pred, timeout: float = 60, interval: float = 0.3, what: str = "condition"):
    """Poll `pred` until truthy (generous timeouts: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


