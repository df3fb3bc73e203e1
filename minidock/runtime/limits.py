"""Resource flags (`--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`,
`--cpuset-cpus`) -> Docker's HostConfig resource fields, and those fields -> the values
each cgroup version writes.

Pure logic: the CLI hands the raw strings, `parse` checks them with Docker's rules and
messages before anything exists; cgroups.py writes what `v1_files` / `v2_files` return.
"""

from __future__ import annotations

import os
from minidock.hints import Any

from minidock.errors import InvalidArgument
from minidock.runtime.mounts import parse_bytes
from minidock.runtime.values import Values

MIN_MEMORY = 6 * 1024 * 1024          # Docker's linuxMinMemory
CFS_PERIOD = 100000


class Limits(Values):
    """The raw resource flags of `run` / `create` ("" = not given)."""

    memory: str = ""
    memory_swap: str = ""
    cpus: str = ""
    cpu_shares: str = ""
    pids_limit: str = ""
    cpuset_cpus: str = ""


def _flag_int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: '
                              f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def parse(lim: Limits, ncpu: int | None = None) -> dict[str, Any]:
    """HostConfig fields for the given flags (only those set); Docker's errors."""
    out: dict[str, Any] = {}
    if lim.memory:
        out["Memory"] = parse_bytes(lim.memory, "--memory")
        if out["Memory"] and out["Memory"] < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if lim.memory_swap:
        swap = -1 if lim.memory_swap == "-1" else parse_bytes(lim.memory_swap, "--memory-swap")
        if not out.get("Memory"):
            raise InvalidArgument("You should always set the Memory limit when using "
                                  "Memoryswap limit, see usage")
        if swap != -1 and swap < out["Memory"]:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory "
                                  "limit, see usage")
        out["MemorySwap"] = swap
    elif out.get("Memory"):
        out["MemorySwap"] = 2 * out["Memory"]      # dockerd's default, shown by inspect
    ncpu = ncpu or os.cpu_count() or 1
    if lim.cpus:
        out["NanoCpus"] = _nano_cpus(lim.cpus, ncpu)
    if lim.cpu_shares:
        shares = _flag_int(lim.cpu_shares, "-c, --cpu-shares")
        if shares < 0:
            raise InvalidArgument(f"invalid CPU shares: {shares}: it must not be negative")
        out["CpuShares"] = shares
    if lim.pids_limit:
        out["PidsLimit"] = _flag_int(lim.pids_limit, "--pids-limit")
    if lim.cpuset_cpus:
        cpus = parse_cpuset(lim.cpuset_cpus)
        if max(cpus) >= ncpu:
            raise InvalidArgument(f"Requested CPUs are not available - requested "
                                  f"{lim.cpuset_cpus}, available: 0-{ncpu - 1}")
        out["CpusetCpus"] = lim.cpuset_cpus
    return out


def _nano_cpus(text: str, ncpu: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag: failed to '
                              f"parse {text} as a rational number") from None
    nano = int(round(value * 1e9))
    if nano < 10_000_000 or nano > ncpu * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only "
                              f"{ncpu} CPUs available")
    return nano


def parse_cpuset(text: str) -> list[int]:
    """"0-2,4" -> [0, 1, 2, 4]; Docker's message for a malformed list."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, dash, hi = part.partition("-")
            a, b = int(lo), int(hi) if dash else int(lo)
            if a < 0 or b < a:
                raise ValueError
            out.extend(range(a, b + 1))
    except ValueError:
        raise InvalidArgument(f"Invalid value {text} for cpuset cpus") from None
    return out


def memory_swap(hc: dict[str, Any]) -> int:
    """The memory+swap limit the kernel gets: Docker gives twice the memory when
    --memory-swap is not set; -1 is unlimited; 0 = none."""
    mem, swap = hc.get("Memory") or 0, hc.get("MemorySwap") or 0
    if not mem:
        return 0
    if swap == 0:
        return 2 * mem
    return swap


def v1_files(hc: dict[str, Any], has_memsw: bool) -> dict[str, dict[str, str]]:
    """{controller: {file: value}} for cgroup v1, in the order they must be written."""
    out: dict[str, dict[str, str]] = {"memory": {}, "cpu": {}, "pids": {}, "cpuset": {}}
    if hc.get("Memory"):
        out["memory"]["memory.limit_in_bytes"] = str(hc["Memory"])
        swap = memory_swap(hc)
        if has_memsw and swap:
            out["memory"]["memory.memsw.limit_in_bytes"] = str(swap)
    if hc.get("NanoCpus"):
        out["cpu"]["cpu.cfs_period_us"] = str(CFS_PERIOD)
        out["cpu"]["cpu.cfs_quota_us"] = str(hc["NanoCpus"] * CFS_PERIOD // 1_000_000_000)
    if hc.get("CpuShares"):
        out["cpu"]["cpu.shares"] = str(max(2, hc["CpuShares"]))
    if hc.get("PidsLimit") and hc["PidsLimit"] > 0:
        out["pids"]["pids.max"] = str(hc["PidsLimit"])
    if hc.get("CpusetCpus"):
        out["cpuset"]["cpuset.cpus"] = hc["CpusetCpus"]
    return out


def v2_files(hc: dict[str, Any]) -> dict[str, str]:
    """{file: value} for a cgroup v2 directory (runc's conversions)."""
    out: dict[str, str] = {}
    if hc.get("Memory"):
        out["memory.max"] = str(hc["Memory"])
        swap = memory_swap(hc)
        if swap == -1:
            out["memory.swap.max"] = "max"
        elif swap:
            out["memory.swap.max"] = str(swap - hc["Memory"])
    if hc.get("NanoCpus"):
        out["cpu.max"] = f"{hc['NanoCpus'] * CFS_PERIOD // 1_000_000_000} {CFS_PERIOD}"
    if hc.get("CpuShares"):
        shares = max(2, hc["CpuShares"])
        out["cpu.weight"] = str(1 + ((shares - 2) * 9999) // 262142)
    if hc.get("PidsLimit") and hc["PidsLimit"] > 0:
        out["pids.max"] = str(hc["PidsLimit"])
    if hc.get("CpusetCpus"):
        out["cpuset.cpus"] = hc["CpusetCpus"]
    return out
