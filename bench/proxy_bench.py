"""Benchmark (not a test): the userland proxy vs a direct connection, on loopback.

Runs as root in a throwaway netns (created and removed here): a "container" at
127.0.0.2 (a sink on :5001, a tiny request/response server on :5002), published on
127.0.0.1:15001/15002 through minidock's proxy. Prints, direct and proxied:
- throughput: N bytes (default 2 GiB) through one connection, Gbit/s;
- connections/s: C client processes doing connect, 1 request, 1 response, close;
- the proxy's memory (RSS, PSS) and the cost of publish (cold: starts the proxy).
Targets (brief E): >= 1.3x docker-proxy's 13.6 Gbit/s and 2,590 conn/s.

    .venv/bin/python bench/proxy_bench.py [--bytes 2G] [--seconds 5] [--clients 2]
"""

from __future__ import annotations

import argparse
import fcntl
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SINK, RR = 5001, 5002                  # the "container" on 127.0.0.2
P_SINK, P_RR = 15001, 15002            # published on 127.0.0.1
CHUNK = 1 << 20


def _sink_server(lsock: socket.socket) -> None:
    """Drain each connection to EOF into /dev/null (splice: the sink costs ~nothing),
    answer the byte count."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK)
    null = os.open(os.devnull, os.O_WRONLY)
    while True:
        conn, _ = lsock.accept()
        total = 0
        while n := os.splice(conn.fileno(), w, CHUNK):
            total += n
            while n:
                n -= os.splice(r, null, n)
        conn.sendall(total.to_bytes(8, "big"))
        conn.close()


def _rr_server(lsock: socket.socket) -> None:
    while True:
        conn, _ = lsock.accept()
        conn.recv(64)
        conn.sendall(b"pong")
        conn.close()


def _start_servers(workers: int) -> list[mp.Process]:
    procs = []
    for port, target, n in ((SINK, _sink_server, 1), (RR, _rr_server, workers)):
        lsock = socket.create_server(("127.0.0.2", port), backlog=4096)
        for _ in range(n):
            p = mp.Process(target=target, args=(lsock,), daemon=True)
            p.start()
            procs.append(p)
        lsock.close()
    return procs


def throughput(addr: tuple, nbytes: int) -> float:
    """Gbit/s for nbytes through one connection (until the sink has counted them).
    The source is sendfile from a 64 MiB memfd: the client costs ~nothing either."""
    src = os.memfd_create("bench-src")
    os.ftruncate(src, 64 * CHUNK)
    os.pwrite(src, b"x" * 64 * CHUNK, 0)
    with socket.create_connection(addr) as c, os.fdopen(src, "rb") as _src:
        t0 = time.perf_counter()
        sent = 0
        while sent < nbytes:
            sent += os.sendfile(c.fileno(), src, sent % (64 * CHUNK),
                                min(64 * CHUNK - sent % (64 * CHUNK), nbytes - sent))
        c.shutdown(socket.SHUT_WR)
        got = int.from_bytes(c.recv(8), "big")
        dt = time.perf_counter() - t0
    assert got == nbytes, (got, nbytes)
    return nbytes * 8 / dt / 1e9


def _rr_client(addr: tuple, seconds: float, out: "mp.Queue") -> None:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        with socket.socket() as c:                          # not create_connection:
            c.connect(addr)                                 # no getaddrinfo per round
            c.sendall(b"ping")
            if c.recv(4) != b"pong":
                raise SystemExit("bad answer")
        n += 1
    out.put(n)


def conns_per_second(addr: tuple, seconds: float, clients: int) -> float:
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_rr_client, args=(addr, seconds, out)) for _ in range(clients)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.perf_counter() - t0)


def memory(pid: int) -> str:
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        fields = {ln.split(":")[0]: ln.split()[1] for ln in fh.read().splitlines()[1:]}
    return (f"RSS {int(fields['Rss']) / 1024:.1f} MiB, PSS {int(fields['Pss']) / 1024:.1f} MiB, "
            f"private {int(fields['Private_Clean']) / 1024 + int(fields['Private_Dirty']) / 1024:.1f} MiB")


def inside(args: argparse.Namespace) -> None:
    from minidock.context import Context
    from minidock.net.ports import proxy
    from minidock.net.ports.portspec import PortBinding

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/tcp_tw_reuse", "w") as fh:
        fh.write("1")
    servers = _start_servers(args.clients)
    tmp = tempfile.mkdtemp(prefix="mdbench-")
    ctx = Context(root=os.path.join(tmp, "root"), exec_root=os.path.join(tmp, "run"))
    try:
        t0 = time.perf_counter()
        proxy.publish(ctx, "bench", [PortBinding("tcp", SINK, "127.0.0.1", P_SINK,
                                                 container_ip="127.0.0.2")])
        t1 = time.perf_counter()
        proxy.publish(ctx, "bench", [PortBinding("tcp", RR, "127.0.0.1", P_RR,
                                                 container_ip="127.0.0.2")])
        t2 = time.perf_counter()
        pid = proxy.pid(ctx)
        print(f"publish: cold (starts the proxy) {1000 * (t1 - t0):.1f} ms, "
              f"warm {1000 * (t2 - t1):.1f} ms; proxy {memory(pid)}")
        rows = [("direct 127.0.0.2", ("127.0.0.2", SINK), ("127.0.0.2", RR)),
                ("proxy  127.0.0.1", ("127.0.0.1", P_SINK), ("127.0.0.1", P_RR))]
        results = {}
        for label, taddr, raddr in rows:
            gbps = throughput(taddr, args.bytes)
            cps = conns_per_second(raddr, args.seconds, args.clients)
            results[label] = (gbps, cps)
            print(f"{label}: {gbps:6.2f} Gbit/s  {cps:8.0f} conn/s")
        gbps, cps = results[rows[1][0]]
        print(f"vs docker-proxy (13.6 Gbit/s, 2590 conn/s): {gbps / 13.6:.2f}x throughput, "
              f"{cps / 2590:.2f}x conn/s; proxy after the run: {memory(pid)}")
        proxy.unpublish(ctx, "bench")
    finally:
        for p in servers:
            p.kill()
        subprocess.run(["rm", "-rf", tmp])


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=parse_size, default=2 << 30)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        inside(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("proxy_bench: run as root")
    name = "mdbench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["nsenter", f"--net=/run/netns/{name}", sys.executable,
                        os.path.abspath(__file__), "--inside", "--bytes", str(args.bytes),
                        "--seconds", str(args.seconds), "--clients", str(args.clients)], check=True)
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
        if pids.split():
            print(f"proxy_bench: left in the netns: {pids.split()}", file=sys.stderr)
        subprocess.run(["ip", "netns", "del", name])


if __name__ == "__main__":
    main()
