"""The container runtime on a real kernel, inside a throwaway test host.

Exit codes, isolation (namespaces, capabilities, fds, masks), network modes and the
interactive tty. Lifecycle commands are in test_lifecycle.py.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from tests.integration.conftest import MINIDOCK



def run(host, *args, check=False, **kw):
    return host.md("run", "--rm", "--net", "none", "busybox", *args, check=check, **kw)


def test_true_and_exit_codes(host):
    assert run(host, "true").returncode == 0
    assert run(host, "sh", "-c", "exit 3").returncode == 3
    r = run(host, "nosuch")
    assert r.returncode == 127
    assert 'exec: "nosuch": executable file not found in $PATH' in r.stderr
    r = run(host, "/etc")
    assert r.returncode == 126 and "is a directory" in r.stderr
    r = run(host, "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr
    assert host.md("run", "--bogus", "busybox", check=False).returncode == 125
    r = host.md("run", "--rm", "nosuchimage", check=False)
    assert r.returncode == 125
    assert host.md("ps", "-aq").stdout == ""        # --rm also after failed starts


def test_unknown_user(host):
    r = host.md("run", "--rm", "--net", "none", "-u", "nosuch", "busybox", "true", check=False)
    assert r.returncode == 126
    assert "unable to find user nosuch: no matching entries in passwd file" in r.stderr


def test_output_streams_and_env(host, tmp_path):
    r = run(host, "sh", "-c", "echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROMFILE=1\n")
    r = host.md("run", "--rm", "--net", "none", "-e", "A=b", "--env-file", str(envfile),
                "-w", "/tmp/wd", "-h", "myhost", "busybox", "sh", "-c",
                "echo $A $FROMFILE $HOSTNAME $HOME; pwd; hostname")
    assert r.stdout.split("\n")[:3] == ["b 1 myhost /root", "/tmp/wd", "myhost"]
    r = host.md("run", "--rm", "--net", "none", "--entrypoint", "echo", "busybox", "x", "y")
    assert r.stdout == "x y\n"
    r = host.md("run", "--rm", "--net", "none", "-u", "nobody", "busybox", "id", "-u")
    assert r.stdout.strip() == "65534"


def test_isolation(host):
    script = ("echo pid=$$; hostname; ps -o pid | tail -n +2 | sort -n | tail -n 1; "
              "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '")
    r = run(host, "sh", "-c", script)
    lines = r.stdout.splitlines()
    assert lines[0] == "pid=1"
    assert len(lines[1]) == 12 and all(c in "0123456789abcdef" for c in lines[1])
    assert int(lines[2]) < 10                       # own processes only: small pids
    status = dict(line.split(":\t") for line in lines[3:9])
    assert status == {"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb",
                      "CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb",
                      "CapAmb": "0000000000000000", "NoNewPrivs": "1"}
    assert lines[9].split() == ["0", "1", "2", "3"]   # 3 is ls's own directory fd


def test_masks_and_readonly(host):
    script = ("cat /proc/keys /proc/timer_list /proc/sched_debug 2>/dev/null | wc -c; ls -A /sys/firmware | wc -l; "
              "echo 1 > /proc/sysrq-trigger 2>/dev/null && echo W1 || echo ro1; "
              "touch /proc/sys/kernel/x 2>/dev/null && echo W2 || echo ro2; "
              "touch /sys/x 2>/dev/null && echo W3 || echo ro3; "
              "mount -t tmpfs t /mnt 2>/dev/null && echo M || echo nomount; "
              "unshare -n true 2>/dev/null && echo U || echo nounshare; "
              "grep -c . /proc/mounts >/dev/null && grep ' /dev/pts ' /proc/mounts | cut -d' ' -f3; "
              "ls -l /dev/null | cut -c1; readlink /dev/ptmx; ls -A /dev/shm /dev/mqueue | wc -l")
    assert run(host, "sh", "-c", script).stdout.split() == [
        "0", "0", "ro1", "ro2", "ro3", "nomount", "nounshare", "devpts", "c", "pts/ptmx", "3"]


def test_etc_files_mounted(host):
    r = run(host, "sh", "-c", "cat /etc/hostname; grep -c localhost /etc/hosts; "
                              "grep ' /etc/' /proc/mounts | cut -d' ' -f2 | sort | tr '\\n' ' '")
    lines = r.stdout.splitlines()
    assert len(lines[0]) == 12
    assert int(lines[1]) >= 1
    assert lines[2].split() == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]


def test_network_none_and_host(host):
    host.sh("ip link add mdtdummy0 type bridge")
    try:
        assert run(host, "ls", "/sys/class/net").stdout.split() == ["lo"]
        r = host.md("run", "--rm", "--net", "host", "busybox", "ls", "/sys/class/net")
        assert "mdtdummy0" in r.stdout.split()
    finally:
        host.sh("ip link del mdtdummy0")


def test_interactive_tty(host):
    master, slave = pty.openpty()
    env = dict(host.env)
    proc = subprocess.Popen(["nsenter", f"--net={host.netns}", MINIDOCK, "run", "-it", "--rm",
                             "--net", "none", "busybox", "sh"],
                            stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    out = b""

    def read_until(token: bytes, timeout: float = 15) -> None:
        nonlocal out
        end = time.time() + timeout
        while token not in out and time.time() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    return
    try:
        os.write(master, b"tty; stty size; echo $((6*7))X\n")
        read_until(b"42X")
        os.write(master, b"exit 5\n")
        assert proc.wait(timeout=15) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"/dev/pts/0" in out and b"42X" in out


def test_input_with_i(host):
    r = host.md("run", "--rm", "-i", "--net", "none", "busybox", "sh", "-c", "tr a-z A-Z",
                input="hello\n")
    assert r.stdout == "HELLO\n"
    # without -i the container's stdin is empty
    r = host.md("run", "--rm", "--net", "none", "busybox", "cat", input="hello\n")
    assert r.stdout == ""


def test_symlinks_in_image_cannot_escape(host, tmp_path):
    """/etc/hosts -> a host file and /etc/hostname as a directory: replaced in the
    container's upper layer; the host file is never mounted over or written."""
    import io
    import tarfile
    victim = tmp_path / "victim"
    victim.write_text("host file\n")
    tar_path = tmp_path / "evil.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add("/bin/busybox", "bin/busybox")
        for name in ("sh", "cat", "ls"):
            link = tarfile.TarInfo(f"bin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name in ("etc", "etc/hostname"):
            d = tarfile.TarInfo(name)
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(d)
        link = tarfile.TarInfo("etc/hosts")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../../../.." + str(victim)
        tar.addfile(link)
        data = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    host.md("import", str(tar_path), "evil:latest", "-c", "ENV PATH=/bin")
    r = host.md("run", "--rm", "--net", "none", "evil", "/bin/sh", "-c",
                "cat /etc/hosts; cat /etc/hostname; ls -ld /etc/hosts")
    assert "localhost" in r.stdout and "host file" not in r.stdout
    assert victim.read_text() == "host file\n"
    host.md("rmi", "evil")
