"""Network load: the servers that run in a container's netns and the clients that drive
them, the same for every engine.

busybox has no iperf, and its `nc` copies through a small buffer (about 0.7 Gbit/s on
loopback here), so a busybox server would measure busybox. These run with the host's
Python, entered into the container's network namespace (`nsenter --net=/proc/PID/ns/net`):
the path measured is the engine's (veth, bridge, proxy or DNAT), not the server's.

    python -m bench.netload sink PORT            read each connection to EOF, answer the count
    python -m bench.netload rr PORT WORKERS      "ping" -> "pong", close (WORKERS processes)
    python -m bench.netload send HOST PORT BYTES     prints Gbit/s
    python -m bench.netload conns HOST PORT SECONDS CLIENTS   prints connections/s
Servers print "ready" once listening.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sys
import time

CHUNK = 1 << 20


def _listen(port: int) -> socket.socket:
    lsock = socket.create_server(("0.0.0.0", port), backlog=4096, reuse_port=False)
    print("ready", flush=True)
    return lsock


def sink(port: int) -> None:
    """Read each connection to EOF, answer the byte count (8 bytes, big-endian)."""
    lsock = _listen(port)
    buf = bytearray(CHUNK)
    while True:
        conn, _ = lsock.accept()
        total = 0
        while n := conn.recv_into(buf):
            total += n
        conn.sendall(total.to_bytes(8, "big"))
        conn.close()


def _rr_loop(lsock: socket.socket) -> None:
    while True:
        conn, _ = lsock.accept()
        conn.recv(64)
        conn.sendall(b"pong")
        conn.close()


def rr(port: int, workers: int) -> None:
    lsock = _listen(port)
    for _ in range(workers - 1):
        if os.fork() == 0:
            _rr_loop(lsock)
    _rr_loop(lsock)


def send(host: str, port: int, nbytes: int) -> float:
    """Gbit/s for nbytes through one connection, until the sink has counted them all."""
    block = memoryview(bytes(CHUNK))
    with socket.create_connection((host, port), timeout=60) as conn:
        t0 = time.perf_counter()
        sent = 0
        while sent < nbytes:
            sent += conn.send(block[:min(CHUNK, nbytes - sent)])
        conn.shutdown(socket.SHUT_WR)
        got = int.from_bytes(conn.recv(8), "big")
        dt = time.perf_counter() - t0
    if got != nbytes:
        raise SystemExit(f"netload: sink counted {got} of {nbytes} bytes")
    return nbytes * 8 / dt / 1e9


def _conn_client(addr: tuple[str, int], seconds: float, out: "mp.Queue[int]") -> None:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        with socket.create_connection(addr, timeout=10) as conn:
            conn.sendall(b"ping")
            if conn.recv(4) != b"pong":
                raise SystemExit("netload: bad answer")
        n += 1
    out.put(n)


def conns(host: str, port: int, seconds: float, clients: int) -> float:
    """Connections/s: `clients` processes each doing connect, ping, pong, close."""
    out: "mp.Queue[int]" = mp.Queue()
    procs = [mp.Process(target=_conn_client, args=((host, port), seconds, out))
             for _ in range(clients)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.perf_counter() - t0)


def main(argv: list[str]) -> None:
    verb, args = argv[0], argv[1:]
    if verb == "sink":
        sink(int(args[0]))
    elif verb == "rr":
        rr(int(args[0]), int(args[1]))
    elif verb == "send":
        print(f"{send(args[0], int(args[1]), int(args[2])):.3f}")
    elif verb == "conns":
        print(f"{conns(args[0], int(args[1]), float(args[2]), int(args[3])):.1f}")
    else:
        raise SystemExit(f"netload: unknown verb {verb!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
