"""Hostile images (issue 6): root filesystems built to trick the runtime, not the loader
(archive tricks are in test_images.py).

Each image is a crafted tar (the host's static busybox plus the trap) brought in with
`image import -c 'CMD ...'`. Whatever it does, the container either runs confined or
fails with one line; a victim directory beside the store, the host's /etc files and the
host's Python stay untouched, and nothing of the image runs on the host side: no Python
module or NSS library of the image is loaded by minidock, no magic link leads execve
to a host binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.integration.test_images import layer_tar, member

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ("sh", "cat", "ls", "echo", "true", "test", "grep", "mount", "id", "touch", "wc",
           "sleep")
PWNED = b"import os\nos.write(2, b'PWNED-' + __name__.encode() + b'\\n')\n" \
        b"open('/pwned-' + __name__, 'w').close()\n"


def _base() -> list:
    with open(BUSYBOX, "rb") as fh:
        data = fh.read()
    out = [member("bin", "dir", mode=0o755), member("bin/busybox", data=data, mode=0o755),
           member("etc", "dir", mode=0o755), member("tmp", "dir", mode=0o1777)]
    out += [member(f"bin/{a}", "symlink", link="busybox") for a in APPLETS]
    return out


def make_image(host, tmp_path: Path, name: str, extra: list, cmd: list[str],
               base: bool = True) -> str:
    tar = tmp_path / f"{name}.tar"
    members = (_base() if base else []) + extra
    names = [m[0].name for m in members]
    keep = [m for i, m in enumerate(members) if m[0].name not in names[i + 1:]]  # last wins
    tar.write_bytes(layer_tar(keep))
    host.md("image", "import", "-c", f"CMD {json.dumps(cmd)}", str(tar), f"{name}:latest")
    return f"{name}:latest"


def run(host, image: str, *args: str, timeout: float = 30):
    return host.md("run", "--rm", "--net", "none", image, *args, check=False, timeout=timeout)


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def victim(host):
    path = Path(host.dir, "victim")
    path.mkdir()
    (path / "file").write_text("safe\n")
    yield path
    assert sorted(os.listdir(path)) == ["file"]
    assert (path / "file").read_text() == "safe\n"
    with open("/proc/self/mountinfo") as fh:
        assert str(path) not in fh.read()


def _one_line_or_ok(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode in (125, 126, 127):
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("where", ["proc", "sys", "dev"])
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_kernel_fs_symlink_stays_inside(host, victim, tmp_path, where, how):
    link = str(victim) if how == "absolute" else "../../../../../../../.." + str(victim)
    image = make_image(host, tmp_path, f"ksym{where}{how[0]}",
                       [member(where, "symlink", link=link)], ["sh", "-c", "echo ran"])
    proc = run(host, image)
    _one_line_or_ok(proc)


@pytest.mark.parametrize("target", ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"])
@pytest.mark.parametrize("kind", ["symlink-file", "symlink-dir", "directory"])
def test_etc_files_hostile(host, victim, tmp_path, target, kind):
    name = target[1:]
    if kind == "symlink-file":
        extra = [member(name, "symlink", link=str(victim / "file"))]
    elif kind == "symlink-dir":
        extra = [member(name, "symlink", link=str(victim))]
    else:
        extra = [member(name, "dir", mode=0o755), member(f"{name}/x", data=b"x")]
    image = make_image(host, tmp_path, f"etc{len(name)}{kind[:5].replace('-', '')}", extra,
                       ["sh", "-c", f"echo written > {target}; cat {target} >/dev/null; echo ok"])
    proc = host.md("run", "--rm", image, check=False, timeout=30)
    _one_line_or_ok(proc)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("cmd", [["/proc/self/exe", "-c", "print('host python')"],
                                 ["/proc/1/exe", "-c", "print('host python')"],
                                 ["/bin/viaexe", "-c", "print('host python')"],
                                 ["/bin/script"]])
def test_entrypoint_cannot_reach_host_binary(host, tmp_path, cmd):
    python = os.path.realpath(sys.executable)
    before = digest(python)
    extra = [member("bin/viaexe", "symlink", link="/proc/self/exe"),
             member("bin/script", data=b"#!/proc/self/exe\nprint('host python')\n", mode=0o755)]
    image = make_image(host, tmp_path, "selfexe", extra, cmd)
    proc = run(host, image)
    # the image has no stdlib, so a host Python that got to run dies with a fatal error;
    # one with the image's own stdlib could write to its /proc/self/exe (the host binary)
    assert "host python" not in proc.stdout and "Python" not in proc.stderr, proc.stderr
    assert proc.returncode == 126 and "outside the container" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert digest(python) == before


def _shadow_members() -> list:
    """Python modules and NSS libraries at the host's paths, inside the image."""
    dirs = {p for p in sys.path if p.startswith("/")}
    names = ("os", "shutil", "resource", "signal", "ctypes", "json", "errno", "stat",
             "socket", "struct", "fcntl", "termios", "encodings", "seccomp", "caps", "users",
             "rootfs", "container", "init", "syscalls", "prctl", "sitecustomize")
    out, seen = [], set()
    for d in sorted(dirs):
        parts = d.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in seen:
                seen.add(sub)
                out.append(member(sub, "dir", mode=0o755))
        for n in names:
            out.append(member(f"{d.strip('/')}/{n}.py", data=PWNED))
    for pkg in ("minidock", "minidock/runtime"):
        for d in sorted(dirs):
            base = f"{d.strip('/')}/{pkg}"
            if base not in seen:
                seen.add(base)
                out.append(member(base, "dir", mode=0o755))
                out.append(member(f"{base}/__init__.py", data=PWNED))
    for lib in ("lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib/x86_64-linux-gnu"):
        if lib not in seen:
            parts = lib.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in seen:
                    seen.add(sub)
                    out.append(member(sub, "dir", mode=0o755))
        for so in ("libnss_files.so.2", "libnss_dns.so.2", "libc.so.6", "libpthread.so.0"):
            out.append(member(f"{lib}/{so}", data=b"\x7fELF-not-really"))
    return out


def test_shadowed_python_and_nss_never_loaded(host, tmp_path):
    extra = _shadow_members() + [
        member("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/tmp:/bin/sh\n"),
        member("etc/group", data=b"root:x:0:\ng:x:1000:u\n"),
        member("etc/nsswitch.conf", data=b"passwd: files\ngroup: files\nhosts: files dns\n")]
    image = make_image(host, tmp_path, "shadow", extra, ["sh", "-c", "id; ls / | grep pwned; true"])
    cid = host.md("run", "-d", "-u", "u", "--name", "sh1", image, "sleep", "100").stdout.strip()
    for args in (["run", "--rm", image], ["run", "--rm", "-u", "u:g", "-w", "/tmp/new", image],
                 ["run", "--rm", "-t", image], ["exec", "sh1", "sh", "-c", "ls / | grep pwned; true"],
                 ["exec", "-u", "root", "sh1", "id"], ["inspect", "sh1"], ["logs", "sh1"]):
        proc = host.md(*args, check=False, timeout=30)
        assert "PWNED" not in proc.stdout + proc.stderr, (args, proc.stderr)
        assert "pwned" not in proc.stdout, args
        assert proc.returncode == 0, (args, proc.stderr)
    assert "uid=1000(u)" in host.md("exec", "sh1", "id").stdout
    host.md("rm", "-f", cid)


@pytest.mark.parametrize("kind", ["fifo", "devzero", "selffd", "huge"])
def test_hostile_passwd(host, tmp_path, kind):
    extra = {"fifo": [member("etc/passwd", "fifo")],
             "devzero": [member("etc/passwd", "symlink", link="/dev/zero")],
             "selffd": [member("etc/passwd", "symlink", link="/proc/self/fd/0")],
             "huge": [member("etc/passwd", data=b"#" * (6 << 20) + b"\nu:x:7:7::/:/bin/sh\n")],
             }[kind]
    image = make_image(host, tmp_path, f"pw{kind}", extra, ["echo", "ran"])
    assert run(host, image).stdout.strip() == "ran"         # no -u: root, file not needed
    proc = host.md("run", "--rm", "-i", "--net", "none", "-u", "u", image, check=False,
                   input="u:x:9:9::/:/bin/sh\n", timeout=30)
    assert proc.returncode != 0 and "unable to find user u" in proc.stderr, proc.stderr
