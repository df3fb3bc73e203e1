"""`stats`: a container's resource usage, read from its cgroup and its netns.

`sample` reads counters (kernel I/O); `row` turns two samples into the columns the
Docker CLI prints (pure). CPU % is Docker's: the container's CPU time delta over the
whole machine's (/proc/stat) delta, times the number of CPUs. Memory usage is the
cgroup's usage minus its inactive file cache (as the Docker 20.10 CLI computes it),
the limit is the cgroup's or the machine's memory. NET I/O sums the container's
interfaces (/proc/<pid>/net/dev shows the netns of that pid), without lo.
"""

from __future__ import annotations

import os
from minidock.hints import Any

from minidock.runtime.values import Values


class Sample(Values):
    cpu_ns: int = 0            # the container's CPU time
    system_ns: int = 0         # the machine's CPU time (all CPUs)
    ncpu: int = 1
    mem: int = 0
    limit: int = 0
    rx: int = 0
    tx: int = 0
    blk_read: int = 0
    blk_write: int = 0
    pids: int = 0


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _int(text: str) -> int:
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return 0


def _kv(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def system_ns() -> tuple[int, int]:
    """(the machine's CPU time in ns, online CPUs) from /proc/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, ncpu = 0, 0
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            total = sum(int(x) for x in line.split()[1:8])
        elif line.startswith("cpu"):
            ncpu += 1
    return total * 1_000_000_000 // ticks, max(ncpu, 1)


def host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return _int(line.split(":", 1)[1]) * 1024
    return 0


def net_io(pid: int) -> tuple[int, int]:
    rx = tx = 0
    for line in _read(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def sample(ctr: dict[str, Any]) -> Sample:
    paths = ctr.get("_Cgroup") or {}
    s = Sample()
    s.system_ns, s.ncpu = system_ns()
    pid = ctr["State"].get("Pid") or 0
    if pid:
        s.rx, s.tx = net_io(pid)
    if "" in paths:
        _sample_v2(s, paths[""])
    else:
        _sample_v1(s, paths)
    host = host_memory()
    if not s.limit or s.limit > host:
        s.limit = host
    return s


def _sample_v1(s: Sample, paths: dict[str, str]) -> None:
    if "cpuacct" in paths:
        s.cpu_ns = _int(_read(os.path.join(paths["cpuacct"], "cpuacct.usage")))
    if "memory" in paths:
        mem = paths["memory"]
        usage = _int(_read(os.path.join(mem, "memory.usage_in_bytes")))
        inactive = _kv(_read(os.path.join(mem, "memory.stat"))).get("total_inactive_file", 0)
        s.mem = max(0, usage - inactive)
        s.limit = _int(_read(os.path.join(mem, "memory.limit_in_bytes")))
    if "pids" in paths:
        s.pids = _int(_read(os.path.join(paths["pids"], "pids.current")))
    if "blkio" in paths:
        for line in _read(os.path.join(paths["blkio"],
                                       "blkio.throttle.io_service_bytes_recursive")).splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                s.blk_read += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                s.blk_write += int(parts[2])


def _sample_v2(s: Sample, path: str) -> None:
    s.cpu_ns = _kv(_read(os.path.join(path, "cpu.stat"))).get("usage_usec", 0) * 1000
    usage = _int(_read(os.path.join(path, "memory.current")))
    s.mem = max(0, usage - _kv(_read(os.path.join(path, "memory.stat"))).get("inactive_file", 0))
    limit = _read(os.path.join(path, "memory.max")).strip()
    s.limit = int(limit) if limit.isdigit() else 0
    s.pids = _int(_read(os.path.join(path, "pids.current")))
    for line in _read(os.path.join(path, "io.stat")).splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                s.blk_read += int(value)
            elif key == "wbytes":
                s.blk_write += int(value)


# -- formatting (pure) ------------------------------------------------------------------
def _custom(size: float, base: float, units: list[str], fmt: str) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return (fmt % size).rstrip() + units[i]


def binary_size(size: float) -> str:
    """go-units BytesSize: "%.4g" with KiB/MiB/GiB: 1572864 -> '1.5MiB'."""
    return _custom(size, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], "%.4g")


def decimal_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): 1234 -> '1.23kB'."""
    return _custom(size, 1000.0, ["B", "kB", "MB", "GB", "TB", "PB"], "%.3g")


def row(ctr: dict[str, Any], before: Sample, after: Sample) -> dict[str, str]:
    """The columns of one container, keyed by Docker's --format field names."""
    cpu = 0.0
    sys_delta = after.system_ns - before.system_ns
    cpu_delta = after.cpu_ns - before.cpu_ns
    if sys_delta > 0 and cpu_delta > 0:
        cpu = cpu_delta / sys_delta * after.ncpu * 100.0
    mem_pct = after.mem / after.limit * 100.0 if after.limit else 0.0
    return {
        "ID": ctr["Id"][:12], "Container": ctr["Id"][:12], "Name": ctr["Name"].lstrip("/"),
        "CPUPerc": f"{cpu:.2f}%",
        "MemUsage": f"{binary_size(after.mem)} / {binary_size(after.limit)}",
        "MemPerc": f"{mem_pct:.2f}%",
        "NetIO": f"{decimal_size(after.rx)} / {decimal_size(after.tx)}",
        "BlockIO": f"{decimal_size(after.blk_read)} / {decimal_size(after.blk_write)}",
        "PIDs": str(after.pids),
    }


HEADER = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
          "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
          "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
DEFAULT_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                  "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def render(fmt: str, rows: list[dict[str, str]]) -> str:
    """Docker's `--format` (a `table` prefix adds the header and aligns columns)."""
    from minidock.runtime.template import render as tpl
    table = fmt.startswith("table")
    body = fmt[5:].lstrip() if table else fmt
    lines = [tpl(body, r) for r in rows]
    if not table:
        return "".join(ln + "\n" for ln in lines)
    cells = [tpl(body, HEADER).split("\t")] + [ln.split("\t") for ln in lines]
    width = max(len(c) for c in cells)
    widths = [max(10, max(len(r[i]) for r in cells if i < len(r)) + 3)
              for i in range(width - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n"
                   for r in cells)
