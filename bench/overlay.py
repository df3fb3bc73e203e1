"""Overlay benchmarks: `run --rm` on an overlay network beside the bridge, and
container-to-container throughput across two hosts beside a bare VXLAN.

The setup is the overlay tests' (tests/integration/cluster.py): an underlay bridge,
two test hosts on veths, a three-member etcd cluster, each host with its own minidock
root and cluster-store. Both `run` figures are measured on host 1, interleaved, after
one warm-up each (the first overlay run also starts the agent, ~0.4 s, once per host).

Throughput: a netload sink in a container on host 2, the sender in a container on
host 1 (over VXLAN, through both namespaces' bridges); and the same sender/sink
between the two hosts' own netns over a bare VXLAN device (VNI 4242, same port, MTU
1450, one static FDB entry): the kernel's ceiling for this encapsulation. The two
are measured in turn, one transfer each per round, so that both see the same load.

`python -m bench --only overlay` runs it; `figures(s)` is what bench/__main__ calls.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from bench.engines import REPO
from bench.report import Figure, Target, median
from bench.session import Session

SINK = 5001


def _timed(h: Any, *args: str) -> float:
    t0 = time.perf_counter()
    h.md(*args, timeout=120)
    return (time.perf_counter() - t0) * 1000


def _netload(enter: str, *args: str) -> list[str]:
    return ["nsenter", f"--net={enter}", sys.executable, "-m", "bench.netload", *args]


def _sink(server_ns: str) -> subprocess.Popen:
    srv = subprocess.Popen(_netload(server_ns, "sink", str(SINK)), stdout=subprocess.PIPE,
                           text=True, cwd=REPO, start_new_session=True)
    if srv.stdout is None or srv.stdout.readline().strip() != "ready":
        raise RuntimeError("netload sink did not start")
    return srv


def _throughputs(paths: dict[str, tuple[str, str, str]], nbytes: int,
                 reps: int) -> dict[str, float]:
    """Median Gbit/s of each path {name: (server netns, client netns, destination)},
    the paths measured in turn, rep by rep, so that both see the same machine."""
    sinks = []
    rates: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for server_ns, _client, _dst in paths.values():
            sinks.append(_sink(server_ns))
        for _ in range(reps):
            for name, (_server, client_ns, dst) in paths.items():
                out = subprocess.run(_netload(client_ns, "send", dst, str(SINK), str(nbytes)),
                                     capture_output=True, text=True, cwd=REPO, timeout=300,
                                     check=True).stdout
                rates[name].append(float(out.strip()))
    finally:
        import os
        import signal
        for srv in sinks:
            try:
                os.killpg(srv.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            srv.wait()
    return {name: median(r) for name, r in rates.items()}


def _bare_vxlan(h1: Any, h2: Any) -> None:
    for h, me, peer in ((h1, "10.99.0.1", h2.addr), (h2, "10.99.0.2", h1.addr)):
        h.sh(f"ip link add bvx0 type vxlan id 4242 dstport 4789 nolearning; "
             f"ip link set bvx0 mtu 1450 up; ip addr add {me}/24 dev bvx0; "
             f"bridge fdb append 00:00:00:00:00:00 dev bvx0 dst {peer}")


def figures(s: Session) -> list[Figure]:
    from tests.integration.cluster import Cluster
    c = Cluster(2, 3, ttl=20)
    try:
        h1, h2 = c.hosts
        for h in c.hosts:
            h.load_busybox()
        h1.md("network", "create", "-d", "overlay", "ov")
        runs = {"ov": [], "bridge": []}
        for net in runs:
            h1.md("run", "--rm", "--net", net, "busybox", "true", timeout=120)   # warm-up
        h1.md("run", "-d", "--name", "keep", "--net", "ov", "busybox", "sleep", "100000")
        for _ in range(s.n(15, 3)):
            for net, times in runs.items():
                times.append(_timed(h1, "run", "--rm", "--net", net, "busybox", "true"))
        h2.md("run", "-d", "--name", "sink", "--net", "ov", "busybox", "sleep", "100000")
        pid1 = h1.md("inspect", "-f", "{{.State.Pid}}", "keep").stdout.strip()
        pid2 = h2.md("inspect", "-f", "{{.State.Pid}}", "sink").stdout.strip()
        ip2 = h2.md("inspect", "-f", "{{.NetworkSettings.Networks.ov.IPAddress}}",
                    "sink").stdout.strip()
        nbytes, reps = s.n(1 << 30, 256 << 20), s.n(5, 1)
        _bare_vxlan(h1, h2)
        got = _throughputs({"ov": (f"/proc/{pid2}/ns/net", f"/proc/{pid1}/ns/net", ip2),
                            "bare": (h2.netns, h1.netns, "10.99.0.2")}, nbytes, reps)
        ov, bare = got["ov"], got["bare"]
        for h in c.hosts:
            h.sh("ip link del bvx0", check=False)
            h.md("rm", "-f", *h.md("ps", "-aq").stdout.split(), check=False)
    finally:
        c.destroy()
    bridge_ms = median(runs["bridge"])
    return [
        Figure("run --rm --net <overlay> busybox true", "ms", median(runs["ov"]),
               None, {"bridge (md)": bridge_ms}, base="bridge (md)",
               note="same host, interleaved; agent already running; reported"),
        Figure("container to container, overlay across two hosts", "Gbit/s", ov,
               Target(">=", 0.9), {"bare VXLAN": bare}, base="bare VXLAN",
               note="the two measured in turn"),
    ]


if __name__ == "__main__":
    from bench.report import table
    sess = Session(quick="--quick" in sys.argv)
    print(table(figures(sess)))
