"""The default seccomp filter, run on a small classic-BPF interpreter (no kernel needed),
its syscall numbers checked against the kernel headers, and --security-opt parsing."""

from __future__ import annotations

import os
import re
import struct

import pytest

from minidock.errors import InvalidArgument
from minidock.runtime import seccomp as sc

ALLOW, EPERM, ENOSYS = sc.SECCOMP_RET_ALLOW, sc.SECCOMP_RET_ERRNO | 1, sc.SECCOMP_RET_ERRNO | 38


def run_bpf(code: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Interpret the filter on one struct seccomp_data (only the opcodes we emit)."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack("=HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = insns[pc]
        if op == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
        elif op == 0x06:
            return k
        elif op in (0x15, 0x35, 0x45):
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if hit else jf
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
        pc += 1


@pytest.mark.parametrize("machine", sorted(sc.ARCHES))
def test_decisions(machine):
    arch, table, x32 = sc.ARCHES[machine]
    code = sc.build_filter(machine)
    assert len(code) % 8 == 0 and len(code) // 8 < 120

    def verdict(name_or_nr, *args, a=arch):
        nr = table[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
        return run_bpf(code, nr, a, args)

    for name in sc.DENIED:
        if name in table:
            assert verdict(name) == EPERM, name
    assert verdict(0) == ALLOW and verdict(1) == ALLOW          # read/write or their kin
    assert verdict("clone", 0x01200011) == ALLOW                 # fork()'s flags
    assert verdict("clone", 0x003D0F00) == ALLOW                 # pthread_create's
    for flag in (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000):
        assert verdict("clone", 0x11 | flag) == EPERM, hex(flag)
    assert verdict("clone3") == ENOSYS
    for ok in sc.PERSONALITY_OK:
        assert verdict("personality", ok) == ALLOW
    assert verdict("personality", 0x0400000) == EPERM           # READ_IMPLIES_EXEC
    assert verdict("personality", 0x1_0000_0000) == EPERM       # high word set
    assert verdict(0, a=0x40000003) == EPERM                     # i386 on x86_64
    if x32:
        assert verdict(0x40000000 | 0) == EPERM


def _header_numbers(path: str) -> dict[str, int]:
    out = {}
    with open(path) as fh:
        for m in re.finditer(rf"#define __NR(?:3264)?_(\w+)\s+(\d+)", fh.read()):
            out[m.group(1)] = int(m.group(2))
    return out


@pytest.mark.parametrize("machine, header", [
    ("x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    ("aarch64", "/usr/include/asm-generic/unistd.h"),
])
def test_numbers_match_kernel_headers(machine, header):
    if not os.path.exists(header):
        pytest.skip(f"{header} not installed")
    known = _header_numbers(header)
    table = sc.ARCHES[machine][1]
    for name, nr in table.items():
        if name in known:
            assert known[name] == nr, name


def test_building_is_deterministic():
    # the start path builds it every time: same bytes each time (bench/ measures cost)
    assert len({sc.build_filter("x86_64") for _ in range(5)}) == 1


@pytest.mark.parametrize("values, want", [
    ((), None),
    (("seccomp=unconfined",), ["seccomp=unconfined"]),
    (("seccomp:unconfined",), ["seccomp=unconfined"]),
    (("no-new-privileges",), ["no-new-privileges"]),
    (("no-new-privileges:true",), ["no-new-privileges"]),
])
def test_security_opts(values, want):
    assert sc.validate_security_opts(values) == want


@pytest.mark.parametrize("value, message", [
    ("bogus", 'Invalid --security-opt: "bogus"'),
    ("no-new-privileges=false", 'Invalid --security-opt: "no-new-privileges=false"'),
    ("apparmor=unconfined", 'Invalid --security-opt: "apparmor=unconfined"'),
    ("seccomp=/tmp/profile.json", "seccomp profile /tmp/profile.json is not supported"),
])
def test_security_opts_refused(value, message):
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        sc.validate_security_opts([value])


def test_wanted():
    assert sc.wanted({}) and sc.wanted({"SecurityOpt": None})
    assert not sc.wanted({"SecurityOpt": ["seccomp=unconfined"]})
