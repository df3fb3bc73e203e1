"""The container's seccomp filter: Docker's default profile (an allow-list), as data.

The profile is `default.json` beside this module, moby's `profiles/seccomp/default.json`
copied unchanged (Apache-2.0, see NOTICE beside it): about 370 syscalls allowed to every
container, more for each capability it holds (`--cap-add SYS_ADMIN` allows mount,
unshare, setns...), socket() refused for AF_VSOCK, clone() refused with namespace
flags, clone3 answered ENOSYS so that libc falls back to clone, and EPERM for every
other number, including those of syscalls newer than the profile.
`--security-opt seccomp=PROFILE.json` replaces it (the CLI reads the file and keeps
its content in HostConfig.SecurityOpt, as Docker's CLI does); `seccomp=unconfined`
and `--privileged` turn it off.

    profile.py   includes/excludes by capability, architecture, kernel -> rules (pure)
    compile.py   rules -> BPF with libseccomp (pyseccomp), only on a cache miss
    here         the cache: <exec-root>/seccomp/<sha256 of profile, caps, machine,
                 kernel>.bpf, written once, then read in ~0.1 ms by every start and
                 exec; `install` loads the bytes in the container's init with one
                 prctl right before execve (no libseccomp in the init).

no_new_privs is set for every container (stricter than Docker, which sets it only for
`--security-opt no-new-privileges`): nothing the container execs gains privileges.
"""

from __future__ import annotations

import os

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
PR_SET_NO_NEW_PRIVS = 38
EPERM, ENOSYS = 1, 38
DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "default.json")


# -- --security-opt ---------------------------------------------------------------------
def _split(value: str) -> tuple[str, str, str]:
    """KEY=VALUE, or the legacy KEY:VALUE when there is no "=" (Docker's order)."""
    return value.partition("=") if "=" in value else value.partition(":")


def read_profile_file(value: str) -> str:
    """CLI side of `--security-opt seccomp=PATH`: the file's content replaces the path
    (Docker's CLI does the same), so the container keeps its profile."""
    key, sep, val = _split(value)
    if key != "seccomp" or not sep or val == "unconfined" or val.lstrip().startswith("{"):
        return value
    import json
    from minidock.errors import InvalidArgument
    try:
        with open(val, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise InvalidArgument(f"opening seccomp profile ({val}) failed: "
                              f"open {val}: {(err.strerror or str(err)).lower()}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise InvalidArgument(f"Decoding seccomp profile failed: {err}") from None
    return "seccomp=" + json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def validate_security_opts(values: tuple[str, ...] | list[str]) -> list[str] | None:
    """`--security-opt` values as HostConfig.SecurityOpt; only what minidock honours.
    A profile's content is checked (JSON, actions, conditions) but not compiled here."""
    from minidock.errors import InvalidArgument
    out = []
    for value in values:
        key, sep, val = _split(value)
        if key == "seccomp" and val == "unconfined":
            out.append("seccomp=unconfined")
        elif key == "seccomp" and sep:
            _check_profile(val)
            out.append("seccomp=" + val)
        elif key == "no-new-privileges" and val in ("", "true"):
            out.append("no-new-privileges")
        else:
            raise InvalidArgument(f'Invalid --security-opt: "{value}"')
    return out or None


def _check_profile(text: str) -> None:
    import json
    from minidock.errors import InvalidArgument
    from minidock.runtime.seccomp import profile
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InvalidArgument(f"Decoding seccomp profile failed: {err}") from None
    uname = os.uname()
    profile.select(doc, uname.machine, frozenset(), uname.release)


def profile_text(host_config: dict) -> str | None:
    """The profile the container runs with (None: unconfined or privileged)."""
    if host_config.get("Privileged"):
        return None
    chosen = None
    for opt in host_config.get("SecurityOpt") or ():
        if opt == "seccomp=unconfined":
            return None
        if opt.startswith("seccomp="):
            chosen = opt[len("seccomp="):]
    if chosen is None:
        with open(DEFAULT_PROFILE, encoding="utf-8") as fh:
            chosen = fh.read()
    return chosen


def wanted(host_config: dict) -> bool:
    """Does the container get a filter at all?"""
    return not host_config.get("Privileged") and \
        "seccomp=unconfined" not in (host_config.get("SecurityOpt") or ())


# -- the cache (CLI side: create, start, exec) --------------------------------------------
def program(exec_root: str, host_config: dict, caps: list[str]) -> bytes | None:
    """The BPF program of a container with `caps`, from the cache or compiled into it;
    None when it runs unconfined. InvalidArgument for a profile libseccomp refuses."""
    text = profile_text(host_config)
    if text is None:
        return None
    try:
        from _sha256 import sha256     # CPython's own: ~0.1 ms to import, hashlib ~3 ms
    except ImportError:
        from hashlib import sha256
    uname = os.uname()
    key = sha256("\0".join([text, ",".join(sorted(caps)), uname.machine,
                                     uname.release]).encode()).hexdigest()
    path = os.path.join(exec_root, "seccomp", key + ".bpf")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        pass
    code = compile_profile(text, frozenset(caps), uname.machine, uname.release)
    _store(path, code)
    return code


def compile_profile(text: str, caps: frozenset[str], machine: str, release: str) -> bytes:
    """Profile text -> BPF bytes for `machine` (libseccomp; a few ms)."""
    import json
    from minidock.runtime.seccomp import profile
    from minidock.runtime.seccomp.compile import to_bpf
    return to_bpf(profile.select(json.loads(text), machine, caps, release))


def _store(path: str, code: bytes) -> None:
    """Write-then-rename: a concurrent start reads the old file or the whole new one."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(code)
    os.replace(tmp, path)


# -- installation (the container's init and exec'd processes, right before execve) -------
def install(code: bytes | None) -> None:
    """no_new_privs, then the filter (unless None: unconfined); OSError on failure."""
    from minidock.runtime import syscalls as sc
    sc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    if code:
        sc.seccomp_filter(code)
