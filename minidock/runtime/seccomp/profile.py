"""A Docker-format seccomp profile -> the rules for one container (pure, no libseccomp).

Docker decides the filter of each container from its profile (default.json beside this
file, or `--security-opt seccomp=PROFILE.json`) and from three facts about the
container: its capability set, the machine's architecture and the kernel's version.
`select` applies the profile's `includes`/`excludes` the way moby's
`profiles/seccomp` does:

    excludes.arches   the native arch (Go's name: amd64, arm64) is listed -> skip
    excludes.caps     ANY listed capability is in the container's set     -> skip
    excludes.minKernel  kernel >= minKernel                               -> skip
    includes.arches   the native arch is not listed                       -> skip
    includes.caps     ANY listed capability is missing                    -> skip
    includes.minKernel  kernel < minKernel                                -> skip

and picks the architectures from `archMap` (the native one plus its sub-architectures,
e.g. x86_64 + x86 + x32) or the older `architectures` list. The result is a `Filter`
of plain values that `compile.py` hands to libseccomp; every malformed profile gives one
`InvalidArgument` line here, before anything is compiled.
"""

from __future__ import annotations

from minidock.hints import Any

from minidock.errors import InvalidArgument
from minidock.runtime.values import Values

EPERM = 1
ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
       "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
# os.uname().machine -> (Go's GOARCH, libseccomp's name)
MACHINES = {"x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64")}


class Cond(Values):
    """One argument comparison: arg[index] <op> value (MASKED_EQ: arg & value == two)."""

    index: int
    op: str
    value: int
    two: int = 0


class Rule(Values):
    """action (+ errno) for syscall `name` when every condition holds."""

    name: str
    action: str
    errno: int = 0
    conds: tuple[Cond, ...] = ()


class Filter(Values):
    default: str
    default_errno: int
    arches: tuple[str, ...]
    rules: tuple[Rule, ...]


def kernel_version(release: str) -> tuple[int, int]:
    """"6.1.0-18-amd64" -> (6, 1); what minKernel is compared with."""
    parts = release.split("-", 1)[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise InvalidArgument(f"seccomp: cannot parse kernel version {release!r}") from None


def _min_kernel(text: Any) -> tuple[int, int]:
    if not isinstance(text, str):
        raise InvalidArgument(f"seccomp profile: invalid minKernel {text!r}")
    try:
        return kernel_version(text)
    except InvalidArgument:
        raise InvalidArgument(f"seccomp profile: invalid minKernel {text!r}") from None


def _skipped(call: dict, goarch: str, caps: frozenset[str], kernel: tuple[int, int]) -> bool:
    exc, inc = call.get("excludes") or {}, call.get("includes") or {}
    if not isinstance(exc, dict) or not isinstance(inc, dict):
        raise InvalidArgument("seccomp profile: includes/excludes must be objects")
    if goarch in (exc.get("arches") or ()):
        return True
    if any(c in caps for c in exc.get("caps") or ()):
        return True
    if exc.get("minKernel") and kernel >= _min_kernel(exc["minKernel"]):
        return True
    if inc.get("arches") and goarch not in inc["arches"]:
        return True
    if any(c not in caps for c in inc.get("caps") or ()):
        return True
    return bool(inc.get("minKernel")) and kernel < _min_kernel(inc["minKernel"])


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise InvalidArgument(f"seccomp profile: invalid {what} {value!r}")
    return value


def _action(value: Any) -> str:
    if value not in ACTIONS:
        raise InvalidArgument(f"seccomp profile: unknown action {value!r}")
    return value


def _conds(args: Any) -> list[tuple[Cond, ...]]:
    """The conditions of one entry, as the rules they make: all in one rule (AND) when
    each argument index appears once, else one rule per condition, as runc does."""
    if not args:
        return [()]
    if not isinstance(args, list):
        raise InvalidArgument("seccomp profile: args must be a list")
    conds = []
    for arg in args:
        if not isinstance(arg, dict) or arg.get("op") not in OPS:
            raise InvalidArgument(f"seccomp profile: invalid argument condition {arg!r}")
        index = _int(arg.get("index", 0), "argument index")
        if index > 5:
            raise InvalidArgument(f"seccomp profile: invalid argument index {index}")
        conds.append(Cond(index, arg["op"], _int(arg.get("value", 0), "value"),
                          _int(arg.get("valueTwo", 0), "valueTwo")))
    if len({c.index for c in conds}) == len(conds):
        return [tuple(conds)]
    return [(c,) for c in conds]


def _arches(profile: dict, native: str) -> tuple[str, ...]:
    archs, amap = profile.get("architectures"), profile.get("archMap")
    if archs and amap:
        raise InvalidArgument("both 'architectures' and 'archMap' are specified in the "
                              "seccomp profile, use either 'architectures' or 'archMap'")
    out = [native]
    for entry in amap or ():
        if isinstance(entry, dict) and entry.get("architecture") == native:
            out += list(entry.get("subArchitectures") or ())
    out += [a for a in archs or () if a not in out]
    if not all(isinstance(a, str) for a in out):
        raise InvalidArgument("seccomp profile: architectures must be names")
    return tuple(out)


def select(profile: Any, machine: str, caps: frozenset[str], release: str) -> Filter:
    """The rules of `profile` for a container with `caps` on `machine`/`release`."""
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls") or [], list):
        raise InvalidArgument("seccomp profile: not a Docker seccomp profile")
    if machine not in MACHINES:
        raise InvalidArgument(f"seccomp: architecture {machine} is not supported")
    goarch, native = MACHINES[machine]
    kernel = kernel_version(release)
    default = _action(profile.get("defaultAction"))
    default_errno = _int(profile.get("defaultErrnoRet") or EPERM, "defaultErrnoRet")
    rules: list[Rule] = []
    for call in profile.get("syscalls") or ():
        if not isinstance(call, dict):
            raise InvalidArgument(f"seccomp profile: invalid syscall entry {call!r}")
        if call.get("name") and call.get("names"):
            raise InvalidArgument("'name' and 'names' were specified in the seccomp profile, "
                                  "use either 'name' or 'names'")
        names = call.get("names") or ([call["name"]] if call.get("name") else [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidArgument(f"seccomp profile: invalid names {names!r}")
        action = _action(call.get("action"))
        errno = _int(call.get("errnoRet") or EPERM, "errnoRet") \
            if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else 0
        conds = _conds(call.get("args"))
        if _skipped(call, goarch, caps, kernel):
            continue
        if action == default and errno == (default_errno if errno else 0):
            continue                      # libseccomp refuses a rule equal to the default
        rules += [Rule(name, action, errno, c) for name in names for c in conds]
    return Filter(default, default_errno if default in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
                  else 0, _arches(profile, native), tuple(rules))
