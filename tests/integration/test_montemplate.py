"""The monitor template (minidock-montpl): detached starts get a monitor it forked,
with the same start protocol, logs, exit codes, stop/rm, restart policies, network
modes and crash consistency as a CLI-forked monitor; a killed or unreachable
template only means the CLI forks the monitor itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest

from minidock import trace
from tests.integration.conftest import BUSYBOX_TAR, TestHost
from tests.integration.test_crash import store_leftovers


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as fh:
        return fh.read().strip()


def init_pid(host: TestHost, name: str) -> int:
    return int(host.md("inspect", "-f", "{{.State.Pid}}", name).stdout)


def monitor_of(host: TestHost, name: str) -> int:
    return parent(init_pid(host, name))


def files(host: TestHost) -> dict[str, str]:
    return {k: os.path.join(host.exec_root, f"montpl.{k}") for k in ("sock", "pid")}


def wait_for(cond, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def template_pid(host: TestHost) -> int | None:
    try:
        pid = int(open(files(host)["pid"]).read())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists(f"/proc/{pid}") and comm(pid) == "minidock-montpl" else None


def warm(host: TestHost, env: dict[str, str] | None = None) -> int:
    """A ready template: the first detached run starts it (its own monitor is forked
    by the CLI), then it is awaited."""
    host.md("run", "-d", "--rm", "busybox", "true", env=env)
    return wait_for(lambda: template_pid(host), "the template to be ready")


def test_detached_runs_go_through_the_template(host: TestHost) -> None:
    host.md("run", "-d", "--name", "first", "busybox", "sleep", "1000")
    tpl = wait_for(lambda: template_pid(host), "the template to be ready")
    assert parent(monitor_of(host, "first")) != tpl       # the first one: CLI-forked
    host.md("run", "-d", "--name", "c1", "busybox", "sleep", "1000")
    mon = monitor_of(host, "c1")
    assert parent(mon) == tpl and comm(mon) == "minidock-mon"
    assert os.readlink(f"/proc/{mon}/cwd") == "/"
    doc = json.loads(host.md("inspect", "c1").stdout)[0]
    assert doc["State"]["Running"] and doc["NetworkSettings"]["IPAddress"]
    host.md("kill", "c1")
    assert host.md("wait", "c1").stdout == "137\n"
    host.md("run", "-d", "--name", "c2", "busybox", "sh", "-c",
            "echo out; echo err >&2; exit 7")
    assert host.md("wait", "c2").stdout == "7\n"
    logs = host.md("logs", "c2")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    host.md("run", "-d", "-t", "--name", "c3", "busybox", "sh", "-c", "tty; sleep 1000")
    wait_for(lambda: host.md("logs", "c3").stdout, "the tty's output")
    assert host.md("logs", "c3").stdout == "/dev/pts/0\n"
    host.md("stop", "-t", "1", "c3")
    assert json.loads(host.md("inspect", "c3").stdout)[0]["State"]["Status"] == "exited"
    host.md("rm", "-f", "first", "c1", "c2", "c3")
    assert host.md("ps", "-aq").stdout == ""
    assert host.sh("ip -o link show type veth").stdout == ""
    assert template_pid(host) == tpl                       # it stays, idle


@pytest.mark.parametrize("mode", ["bridge", "none", "host", "container"])
def test_network_modes(host: TestHost, mode: str) -> None:
    tpl = warm(host)
    host.md("run", "-d", "--name", "base", "busybox", "sleep", "1000")
    net = "container:base" if mode == "container" else mode
    host.md("run", "-d", "--name", "cc", "--net", net, "busybox", "sleep", "1000")
    pid = init_pid(host, "cc")
    assert parent(parent(pid)) == tpl
    own = os.stat(f"/proc/{pid}/ns/net").st_ino
    want = {"host": os.stat(host.netns).st_ino,
            "container": os.stat(f"/proc/{init_pid(host, 'base')}/ns/net").st_ino}
    if mode in want:
        assert own == want[mode]
    else:
        assert own not in (os.stat(host.netns).st_ino,
                           os.stat(f"/proc/{init_pid(host, 'base')}/ns/net").st_ino)
        links = host.sh(f"nsenter --net=/proc/{pid}/ns/net ip -o link").stdout
        assert ("eth0" in links) == (mode == "bridge"), links
    host.md("rm", "-f", "cc", "base")


def test_restart_policy(host: TestHost) -> None:
    tpl = warm(host)
    host.md("run", "-d", "--name", "rr", "--restart", "on-failure:2", "busybox", "sh", "-c",
            "echo ran; exit 3")
    def done() -> dict | None:
        d = json.loads(host.md("inspect", "rr").stdout)[0]
        return d if d["RestartCount"] == 2 and d["State"]["Status"] == "exited" else None
    doc = wait_for(done, "two restarts")
    assert doc["State"]["ExitCode"] == 3
    assert host.md("logs", "rr").stdout == "ran\n" * 3
    host.md("run", "-d", "--name", "aa", "--restart", "always", "busybox", "sh", "-c",
            "if [ -e /ran ]; then exec sleep 1000; fi; touch /ran; exit 1")
    wait_for(lambda: json.loads(host.md("inspect", "aa").stdout)[0]["RestartCount"] == 1
             and json.loads(host.md("inspect", "aa").stdout)[0]["State"]["Running"],
             "the restart")
    assert parent(monitor_of(host, "aa")) == tpl            # restarted through it too
    host.md("rm", "-f", "rr", "aa")


def test_template_killed_mid_fleet(host: TestHost) -> None:
    tpl = warm(host)
    for i in range(3):
        host.md("run", "-d", "--name", f"c{i}", "busybox", "sh", "-c",
                "trap 'exit 5' TERM; while true; do sleep 0.1; done")
    assert all(parent(monitor_of(host, f"c{i}")) == tpl for i in range(3))
    os.kill(tpl, signal.SIGKILL)
    wait_for(lambda: template_pid(host) is None, "the template to die")
    assert all(json.loads(host.md("inspect", f"c{i}").stdout)[0]["State"]["Running"]
               for i in range(3))
    host.md("run", "-d", "--name", "next", "busybox", "sleep", "1000")   # falls back
    new = wait_for(lambda: template_pid(host), "a new template")
    assert new != tpl
    host.md("run", "-d", "--name", "later", "busybox", "sleep", "1000")
    assert parent(monitor_of(host, "later")) == new
    host.md("stop", "c0")                                  # its monitor records the exit
    assert json.loads(host.md("inspect", "c0").stdout)[0]["State"]["ExitCode"] == 5
    host.md("rm", "-f", "c0", "c1", "c2", "next", "later")


def test_idle_exit_leaves_no_files(host: TestHost) -> None:
    env = {"MINIDOCK_MONTPL_IDLE": "2"}
    host.md("run", "-d", "--name", "c0", "busybox", "sleep", "1000", env=env)
    for _ in range(5):     # the template may leave (idle) before this run reaches it
        tpl = wait_for(lambda: template_pid(host), "the template to be ready")
        host.md("run", "-d", "--name", "cc", "busybox", "sleep", "1000", env=env)
        if parent(monitor_of(host, "cc")) == tpl:
            break
        host.md("rm", "-f", "cc")
    assert parent(monitor_of(host, "cc")) == tpl
    time.sleep(3)                                          # longer than idle: it stays
    assert template_pid(host) == tpl                       # while it has a monitor
    host.md("rm", "-f", "cc", "c0")
    wait_for(lambda: not os.path.exists(f"/proc/{tpl}"), "the idle template to leave")
    assert not any(os.path.exists(f) for f in files(host).values())
    assert host.pids() == []


def _fake_template(host: TestHost, answer: bytes | None) -> tuple[socket.socket, threading.Thread]:
    """A listener on montpl.sock that answers every request with `answer` (None:
    closes the connection without a word)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind(files(host)["sock"])
    sock.listen(8)
    with open(files(host)["pid"], "w") as fh:
        fh.write(f"{os.getpid()}\n")

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                _msg, anc, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_SPACE(64))
                for _level, _kind, data in anc:
                    for i in range(0, len(data) - len(data) % 4, 4):
                        os.close(int.from_bytes(data[i:i + 4], "little"))
                if answer is not None:
                    try:
                        conn.send(answer)
                    except OSError:
                        pass            # a CLI that only checked that we run
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, thread


@pytest.mark.parametrize("answer", [None, b"Ebroken"], ids=["eof", "error"])
def test_fallback_when_the_template_cannot_serve(host: TestHost, answer: bytes | None) -> None:
    os.makedirs(host.exec_root, exist_ok=True)
    fake, thread = _fake_template(host, answer)
    try:
        host.md("run", "-d", "--name", "cc", "busybox", "sh", "-c", "echo hi; sleep 1000")
        wait_for(lambda: host.md("logs", "cc").stdout == "hi\n", "the output")
        mon = monitor_of(host, "cc")
        assert comm(mon) == "minidock-mon" and comm(parent(mon)) != "minidock-montpl"
    finally:
        fake.shutdown(socket.SHUT_RDWR)
        fake.close()
        thread.join(5)
    host.md("rm", "-f", "cc")
    # a stale socket (nobody listens): removed, and a real template started
    host.md("run", "-d", "--rm", "busybox", "true")
    wait_for(lambda: template_pid(host), "a real template")


# -- crash consistency with the template: the CLI killed at each step of `start` -----
RUN = ["run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep", "1000"]
_STEPS: list[str] | None = None


def _start_steps() -> list[str]:
    """The steps of the start pipeline a `run -d` through the template traces, from
    spawn_monitor on (test_crash.py covers every step, with a CLI-forked monitor)."""
    if os.geteuid() != 0 or not BUSYBOX_TAR.exists():
        return []
    h = TestHost()
    try:
        h.load_busybox()
        warm(h)
        path = os.path.join(h.dir, "trace")
        h.md(*RUN, env={"MINIDOCK_TRACE": path})
        with open(path) as fh:
            roots = trace.parse(fh.read())
        steps = [node.name for names, node in trace.walk(roots)
                 if not node.pipeline and names[0] == "start"]
        return steps[steps.index("spawn_monitor"):]    # before it no monitor exists
    finally:
        h.destroy()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    global _STEPS
    if "start_step" not in metafunc.fixturenames:
        return
    if _STEPS is None:
        _STEPS = list(dict.fromkeys(_start_steps()))
    cases = [(s, m) for s in _STEPS for m in ("kill", "raise")] or [("none", "none")]
    metafunc.parametrize("start_step", cases, ids=[f"{s}-{m}" for s, m in cases])


def test_cli_killed_at_each_start_step(host: TestHost, start_step: tuple[str, str]) -> None:
    step, mode = start_step
    assert step != "none", "no step traced: is build/busybox.tar there (make image)?"
    tpl = warm(host)
    spec = f"{step}:kill" if mode == "kill" else step
    p = host.md(*RUN, check=False, env={"MINIDOCK_FAULT": spec})
    assert p.returncode != 0, p.stderr
    # the monitor the template forked leaves by itself (no verdict), unless the CLI
    # was killed after it confirmed the start (the commit of the last step)
    wait_for(lambda: set(_children(tpl)) <= _running_monitor(host), "the monitor to leave")
    host.md("system", "prune", "-f")
    host.md("rm", "-f", "web", check=False)
    host.md(*RUN)
    doc = json.loads(host.md("inspect", "web").stdout)[0]
    assert doc["NetworkSettings"]["IPAddress"] == "172.17.0.2"
    host.md("rm", "-f", "web")
    assert not store_leftovers(host), store_leftovers(host)


def _running_monitor(host: TestHost) -> set[int]:
    p = host.md("inspect", "web", check=False)
    doc = json.loads(p.stdout)[0] if p.returncode == 0 else {}
    pid = doc.get("State", {}).get("Pid") if doc.get("State", {}).get("Running") else 0
    try:
        return {parent(pid)} if pid else set()
    except OSError:
        return set()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []
