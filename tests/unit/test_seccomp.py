"""The seccomp filter: Docker's default profile compiled by libseccomp, run here on a
classic-BPF interpreter (no kernel needed) for every syscall number 0-1023 on x86_64
and aarch64, and every argument condition of the profile; its includes/excludes logic
on small profiles; the cache; --security-opt parsing."""

from __future__ import annotations

import json
import os
import re
import struct

import pytest

from minidock.errors import InvalidArgument
from minidock.runtime import caps as capmod
from minidock.runtime import seccomp as sc
from minidock.runtime.seccomp import profile as prof

pyseccomp = pytest.importorskip("pyseccomp")

ALLOW, EPERM, ENOSYS = sc.SECCOMP_RET_ALLOW, sc.SECCOMP_RET_ERRNO | 1, sc.SECCOMP_RET_ERRNO | 38
AUDIT = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "x86": 0x40000003, "arm": 0x40000028}
SCMP = {"x86_64": pyseccomp.Arch.X86_64, "aarch64": pyseccomp.Arch.AARCH64}
RELEASE = "6.1.0"
DEFAULT = frozenset(capmod.DEFAULT_CAPS)
CLONE_NEWUSER, CLONE_NEWNS, AF_VSOCK = 0x10000000, 0x20000, 40


def run_bpf(code: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Interpret a classic BPF program on one struct seccomp_data."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack("=HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, a, x, mem = 0, 0, 0, [0] * 16
    for _ in range(100000):
        op, jt, jf, k = insns[pc]
        cls = op & 0x07
        if op == 0x20:                                    # ld [k]
            a = struct.unpack_from("=I", data, k)[0]
        elif op == 0x00:                                  # ld #k
            a = k
        elif op == 0x60:                                  # ld M[k]
            a = mem[k]
        elif op == 0x61:                                  # ldx M[k]
            x = mem[k]
        elif op == 0x02:                                  # st M[k]
            mem[k] = a
        elif op == 0x03:                                  # stx M[k]
            mem[k] = x
        elif cls == 0x04:                                 # alu
            src = x if op & 0x08 else k
            fn = {0x00: lambda: a + src, 0x10: lambda: a - src, 0x50: lambda: a & src,
                  0x40: lambda: a | src, 0xA0: lambda: a ^ src}[op & 0xF0]
            a = fn() & 0xFFFFFFFF
        elif op == 0x05:                                  # ja k
            pc += k
        elif cls == 0x05:                                 # conditional jumps
            src = x if op & 0x08 else k
            hit = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op & 0xF0]
            pc += jt if hit else jf
        elif op == 0x06:
            return k
        elif op == 0x16:
            return a
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
        pc += 1
    raise AssertionError("no verdict")


def _default_profile() -> dict:
    with open(sc.DEFAULT_PROFILE) as fh:
        return json.load(fh)


_CACHE: dict = {}


def program(machine: str, caps: frozenset[str] = DEFAULT) -> bytes:
    key = (machine, caps)
    if key not in _CACHE:
        _CACHE[key] = sc.compile_profile(json.dumps(_default_profile()), caps, machine, RELEASE)
    return _CACHE[key]


def nr_of(machine: str, name: str) -> int:
    return pyseccomp.resolve_syscall(SCMP[machine], name)


def expected_unconditional(machine: str, caps: frozenset[str]) -> dict[str, int]:
    """The profile read independently of profile.py: name -> verdict, for the entries
    without argument conditions (those are checked one by one below)."""
    goarch = prof.MACHINES[machine][0]
    out: dict[str, int] = {}
    for call in _default_profile()["syscalls"]:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        if call.get("args") or goarch in exc.get("arches", ()) or \
                any(c in caps for c in exc.get("caps", ())) or \
                (inc.get("arches") and goarch not in inc["arches"]) or \
                any(c not in caps for c in inc.get("caps", ())):
            continue
        verdict = ALLOW if call["action"] == "SCMP_ACT_ALLOW" else \
            sc.SECCOMP_RET_ERRNO | call.get("errnoRet", 1)
        for name in call["names"]:
            out.setdefault(name, verdict)
    return out


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("caps", [DEFAULT, DEFAULT | {"CAP_SYS_ADMIN"},
                                  frozenset(capmod.ALL_CAPS)], ids=["default", "sysadmin", "all"])
def test_every_number_0_to_1023(machine, caps):
    code = program(machine, caps)
    want = expected_unconditional(machine, caps)
    conditional = {"socket", "personality", "clone"}
    for nr in range(1024):
        try:
            name = pyseccomp.resolve_syscall(SCMP[machine], nr).decode()
        except ValueError:
            name = None
        if name in conditional and name not in want:
            continue
        got = run_bpf(code, nr, AUDIT[machine])
        assert got == want.get(name, EPERM), (nr, name, hex(got))


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_argument_conditions(machine):
    code, admin = program(machine), program(machine, DEFAULT | {"CAP_SYS_ADMIN"})
    arch = AUDIT[machine]

    def verdict(name, *args, prog=code):
        return run_bpf(prog, nr_of(machine, name), arch, args)

    for family in (0, 1, 2, 10, 16, 17, 37, 39, 41, 45):
        assert verdict("socket", family, 1) == ALLOW, family
    assert verdict("socket", AF_VSOCK, 1) == EPERM
    for value in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert verdict("personality", value) == ALLOW
    assert verdict("personality", 0x0400000) == EPERM            # READ_IMPLIES_EXEC
    assert verdict("clone", 0x01200011) == ALLOW                 # fork()'s flags
    assert verdict("clone", 0x003D0F00) == ALLOW                 # pthread_create's
    for flag in (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000):
        assert verdict("clone", 0x11 | flag) == EPERM, hex(flag)
        assert verdict("clone", 0x11 | flag, prog=admin) == ALLOW, hex(flag)
    assert verdict("clone3") == ENOSYS and verdict("clone3", prog=admin) == ALLOW
    assert verdict("unshare", CLONE_NEWUSER) == EPERM
    assert verdict("unshare", CLONE_NEWNS, prog=admin) == ALLOW
    assert verdict("keyctl") == EPERM and verdict("getpid") == ALLOW


def test_other_architectures():
    code = program("x86_64")
    assert run_bpf(code, 20, AUDIT["x86"]) == ALLOW              # i386 getpid: archMap
    assert run_bpf(code, 0x40000000 | 39, AUDIT["x86_64"]) == ALLOW   # x32 getpid
    assert run_bpf(code, 172, AUDIT["aarch64"]) != ALLOW         # not in the filter
    assert run_bpf(program("aarch64"), 20, AUDIT["arm"]) == ALLOW     # arm getpid


def test_capabilities_open_their_syscalls():
    for cap, name in [("CAP_SYS_PTRACE", "ptrace"), ("CAP_SYS_TIME", "settimeofday"),
                      ("CAP_SYS_BOOT", "reboot"), ("CAP_SYS_MODULE", "init_module"),
                      ("CAP_SYSLOG", "syslog"), ("CAP_DAC_READ_SEARCH", "open_by_handle_at")]:
        with_cap = program("x86_64", DEFAULT | {cap})
        nr = nr_of("x86_64", name)
        if name == "ptrace":      # minKernel 4.8 allows it to everyone
            assert run_bpf(program("x86_64"), nr, AUDIT["x86_64"]) == ALLOW
        else:
            assert run_bpf(program("x86_64"), nr, AUDIT["x86_64"]) == EPERM, name
        assert run_bpf(with_cap, nr, AUDIT["x86_64"]) == ALLOW, name


# -- profile.select on small profiles -------------------------------------------------------
def _select(calls, caps=(), machine="x86_64", release="5.4.0", **top):
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": calls, **top}
    return prof.select(doc, machine, frozenset(caps), release)


def test_includes_and_excludes():
    calls = [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_X", "CAP_Y"]}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_X"]}},
        {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["d"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["e"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.5"}},
        {"names": ["f"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.4"}},
        {"name": "g", "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["h"], "action": "SCMP_ACT_ERRNO"},            # equals the default
    ]
    names = lambda flt: sorted(r.name for r in flt.rules)  # noqa: E731
    assert names(_select(calls)) == ["b", "g"]
    assert names(_select(calls, caps=["CAP_X"])) == ["g"]
    assert names(_select(calls, caps=["CAP_X", "CAP_Y"])) == ["a", "g"]
    assert names(_select(calls, machine="aarch64", release="5.3")) == ["b", "c", "d", "f", "g"]
    assert names(_select(calls, release="6.0")) == ["b", "e", "g"]


def test_conditions_and_ors():
    same = [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1},
            {"index": 0, "op": "SCMP_CMP_EQ", "value": 2}]
    flt = _select([{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": same}])
    assert [len(r.conds) for r in flt.rules] == [1, 1]           # same index: OR
    two = [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1},
           {"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 3, "valueTwo": 1}]
    flt = _select([{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": two}])
    assert flt.rules[0].conds == (prof.Cond(0, "SCMP_CMP_EQ", 1), prof.Cond(1, "SCMP_CMP_MASKED_EQ", 3, 1))


def test_arches():
    assert _select([], archMap=_default_profile()["archMap"]).arches == \
        ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert _select([], architectures=["SCMP_ARCH_X86"]).arches == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")


@pytest.mark.parametrize("doc, message", [
    ([], "not a Docker seccomp profile"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"],
                                                       "action": "SCMP_ACT_ALLOW"}]},
     "'name' and 'names' were specified"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                                                       "args": [{"index": 7, "op": "SCMP_CMP_EQ"}]}]},
     "invalid argument index 7"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                                                       "args": [{"index": 0, "op": "LIKE"}]}]},
     "invalid argument condition"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                                                       "includes": {"minKernel": "x.y"}}]},
     "invalid minKernel"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "both 'architectures' and 'archMap'"),
])
def test_bad_profiles(doc, message):
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        prof.select(doc, "x86_64", frozenset(), "5.4.0")


def test_unknown_names_are_skipped_and_unknown_arch_refused():
    doc = {"defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["getpid", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]}
    code = sc.compile_profile(json.dumps(doc), frozenset(), "x86_64", RELEASE)
    assert run_bpf(code, 39, AUDIT["x86_64"]) == ALLOW
    doc["architectures"] = ["SCMP_ARCH_VAX"]
    with pytest.raises(InvalidArgument, match="unknown architecture 'SCMP_ARCH_VAX'"):
        sc.compile_profile(json.dumps(doc), frozenset(), "x86_64", RELEASE)


# -- the cache ---------------------------------------------------------------------------------
def test_program_cache(tmp_path):
    first = sc.program(str(tmp_path), {}, list(capmod.DEFAULT_CAPS))
    files = list((tmp_path / "seccomp").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == first
    files[0].write_bytes(first + b"")   # same content, cached file is what is read
    assert sc.program(str(tmp_path), {}, list(capmod.DEFAULT_CAPS)) == first
    admin = sc.program(str(tmp_path), {}, [*capmod.DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    assert admin != first and len(list((tmp_path / "seccomp").iterdir())) == 2
    assert sc.program(str(tmp_path), {"SecurityOpt": ["seccomp=unconfined"]}, []) is None
    assert sc.program(str(tmp_path), {"Privileged": True}, []) is None
    custom = {"SecurityOpt": ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']}
    assert run_bpf(sc.program(str(tmp_path), custom, []), 1000, AUDIT[os.uname().machine]) == ALLOW


# -- --security-opt ----------------------------------------------------------------------------
@pytest.mark.parametrize("values, want", [
    ((), None),
    (("seccomp=unconfined",), ["seccomp=unconfined"]),
    (("seccomp:unconfined",), ["seccomp=unconfined"]),
    (("no-new-privileges",), ["no-new-privileges"]),
    (("no-new-privileges:true",), ["no-new-privileges"]),
    (('seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',), ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']),
])
def test_security_opts(values, want):
    assert sc.validate_security_opts(values) == want


@pytest.mark.parametrize("value, message", [
    ("bogus", 'Invalid --security-opt: "bogus"'),
    ("no-new-privileges=false", 'Invalid --security-opt: "no-new-privileges=false"'),
    ("apparmor=unconfined", 'Invalid --security-opt: "apparmor=unconfined"'),
    ("seccomp={nope", "Decoding seccomp profile failed"),
    ('seccomp={"defaultAction":"SCMP_ACT_WHAT"}', "unknown action 'SCMP_ACT_WHAT'"),
])
def test_security_opts_refused(value, message):
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        sc.validate_security_opts([value])


def test_profile_file_is_read_by_the_cli(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n')
    assert sc.read_profile_file(f"seccomp={path}") == 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'
    assert sc.read_profile_file("seccomp=unconfined") == "seccomp=unconfined"
    with pytest.raises(InvalidArgument, match=re.escape(f"opening seccomp profile ({tmp_path}/none) failed")):
        sc.read_profile_file(f"seccomp={tmp_path}/none")
    path.write_text("{oops")
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        sc.read_profile_file(f"seccomp={path}")


def test_wanted():
    assert sc.wanted({}) and sc.wanted({"SecurityOpt": None})
    assert not sc.wanted({"SecurityOpt": ["seccomp=unconfined"]})
    assert not sc.wanted({"Privileged": True})


def test_shipped_profile_is_mobys_unchanged():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = [p for up in ("..", "../..")
             if os.path.exists(p := os.path.join(repo, up, "shared", "reference",
                                                 "moby-seccomp-default.json"))]
    if not found:
        pytest.skip("the shared reference is not beside this checkout")
    reference = found[0]
    with open(reference, "rb") as a, open(sc.DEFAULT_PROFILE, "rb") as b:
        assert a.read() == b.read()
