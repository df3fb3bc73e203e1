"""The per-container monitor after its re-exec into a lean interpreter (issue 7):
what it holds while the container runs, and that it still does all of its job
(logs, attached output, exit codes, --rm, networking teardown)."""

from __future__ import annotations

import json
import os
import subprocess
import select
import time


def monitor_of(host, name):
    pid = int(host.md("inspect", "-f", "{{.State.Pid}}", name).stdout)
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])     # the init's parent


def wait_gone(pid, timeout=20):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([fd], [], [], timeout)[0], f"process {pid} still runs"
    finally:
        os.close(fd)


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("Pss:"))


def test_monitor_is_a_lean_interpreter(host):
    host.md("run", "-d", "--name", "c1", "busybox", "sleep", "1000")
    mon = monitor_of(host, "c1")
    deadline = time.monotonic() + 10       # it execs once the CLI has confirmed
    while open(f"/proc/{mon}/comm").read() != "minidock-mon\n":
        assert time.monotonic() < deadline, "the monitor did not re-exec"
        time.sleep(0.02)
    time.sleep(0.2)                        # let it settle (its imports are done)
    argv = open(f"/proc/{mon}/cmdline").read().split("\0")
    assert argv[1:4] == ["-I", "-S", "-c"] and "monitor_main" in argv[4]
    maps = open(f"/proc/{mon}/maps").read()
    assert "_sqlite3" not in maps and "libsqlite3" not in maps
    targets = [os.readlink(f"/proc/{mon}/fd/{fd}") for fd in os.listdir(f"/proc/{mon}/fd")]
    assert not [t for t in targets if t.startswith("socket:") or ".db" in t], targets
    assert sum(t.endswith("-json.log") for t in targets) == 1
    assert pss_kib(mon) < 5 * 1024          # the CLI-forked monitor was ~8 MiB


def test_detached_exit_recorded_logs_and_teardown(host):
    host.md("run", "-d", "--name", "c1", "busybox", "sh", "-c",
            "read x; echo out; echo err >&2; exit 7")     # waits for EOF on stdin
    assert host.md("wait", "c1").stdout == "7\n"
    logs = host.md("logs", "c1")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    doc = json.loads(host.md("inspect", "c1").stdout)[0]
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 7
    assert doc["NetworkSettings"]["IPAddress"] == ""
    assert host.sh("ip -o link show type veth").stdout == ""
    host.md("rm", "c1")


def test_detached_rm_goes_by_itself(host):
    host.md("run", "-d", "--rm", "--name", "c1", "busybox", "sleep", "2")
    try:
        mon = monitor_of(host, "c1")
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError):
        mon = None          # already gone (a loaded machine): the checks below still hold
    if mon is not None:
        wait_gone(mon)
    assert host.md("ps", "-aq").stdout == ""
    assert host.sh("ip -o link show type veth").stdout == ""


def test_attached_output_and_log_beyond_a_pipe_buffer(host):
    script = "head -c 300000 /dev/zero | tr '\\0' x; echo; echo done >&2; exit 3"
    r = host.md("run", "--name", "c1", "--net", "none", "busybox", "sh", "-c", script,
                check=False)
    assert (r.returncode, len(r.stdout), r.stderr) == (3, 300001, "done\n")
    logs = host.md("logs", "c1")
    assert logs.stdout == r.stdout and logs.stderr == "done\n"
    host.md("rm", "c1")


def test_interactive_stdin_reaches_the_container(host):
    r = host.md("run", "--rm", "-i", "--net", "none", "busybox", "sh", "-c",
                "wc -c; exit 4", input="x" * 100000, check=False)
    assert (r.returncode, r.stdout.strip()) == (4, "100000")


def test_detached_tty_exit_code_and_log(host):
    """-dt: nobody else holds the pty slave, so the master's EIO may come before the
    init's exit is seen; the exit code must still be the container's."""
    for i in range(3):
        name = f"t{i}"
        cid = host.md("run", "-dt", "--name", name, "--net", "none", "busybox", "sh", "-c",
                      "tty; echo in-tty; exit 5").stdout.strip()
        assert host.md("wait", name).stdout == "5\n"
        assert host.md("logs", name).stdout.replace("\r", "") == "/dev/pts/0\nin-tty\n"
        mlog = os.path.join(host.exec_root, "containers", cid, "monitor.log")
        assert not os.path.exists(mlog) or open(mlog).read() == ""
