"""Container lifecycle on a real kernel: -d, logs, ps, stop/kill/restart, exec, inspect,
rm -f, a killed monitor, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import time



def detached(host, *args, name="c1"):
    return host.md("run", "-d", "--name", name, "--net", "none", "busybox", *args).stdout.strip()


def test_detached_logs_ps_stop(host):
    cid = detached(host, "sh", "-c", "echo hello; echo oops >&2; sleep 1000")
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    host.md("exec", "c1", "true")          # exec works once the command runs
    logs = host.md("logs", "c1")
    assert (logs.stdout, logs.stderr) == ("hello\n", "oops\n")
    raw = open(os.path.join(host.root, "containers", cid, f"{cid}-json.log")).readline()
    entry = json.loads(raw)
    assert entry["log"] == "hello\n" and entry["stream"] == "stdout"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", entry["time"])
    ps = host.md("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                             "PORTS", "NAMES"]
    assert ps[1].startswith(cid[:12] + "   busybox   ") and ps[1].endswith("c1")
    assert "Up " in ps[1]
    assert host.md("stop", "-t", "1", "c1").stdout == "c1\n"
    line = host.md("ps", "-a").stdout.splitlines()[1]
    assert "Exited (137)" in line
    assert host.md("ps", "-q").stdout == ""
    assert host.md("ps", "-aq", "--no-trunc").stdout.strip() == cid
    assert host.md("wait", "c1").stdout == "137\n"


def wait_log(host, name, text, timeout=10):
    end = time.time() + timeout
    while text not in host.md("logs", name).stdout and time.time() < end:
        time.sleep(0.05)


def test_stop_with_handler_and_restart(host):
    detached(host, "sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done")
    wait_log(host, "c1", "ready")
    host.md("stop", "c1")
    assert host.md("inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "c1").stdout == "7 exited\n"
    host.md("restart", "c1")
    assert host.md("inspect", "-f", "{{.State.Running}}", "c1").stdout == "true\n"
    host.md("kill", "c1")
    assert host.md("inspect", "-f", "{{.State.ExitCode}}", "c1").stdout == "137\n"
    host.md("start", "c1")
    wait_log(host, "c1", "ready\nready\nready")
    host.md("kill", "-s", "TERM", "c1")
    assert host.md("wait", "c1").stdout == "7\n"


def test_exec(host):
    detached(host, "sleep", "1000")
    r = host.md("exec", "c1", "sh", "-c", "echo $$; ps -o pid | tail -n +2 | sort -n | tail -n 1; "
                                           "hostname; grep CapEff /proc/self/status")
    out = r.stdout.split()
    assert int(out[1]) < 10 and out[2] == host.md("inspect", "-f", "{{.Config.Hostname}}", "c1").stdout.strip()
    assert out[-1] == "00000000a80425fb"
    assert host.md("exec", "c1", "sh", "-c", "exit 4", check=False).returncode == 4
    r = host.md("exec", "c1", "nosuch", check=False)
    assert r.returncode == 127 and "executable file not found" in r.stderr
    assert host.md("exec", "-u", "nobody", "-e", "X=1", "-w", "/tmp", "c1",
                   "sh", "-c", "id -u; echo $X; pwd").stdout.split() == ["65534", "1", "/tmp"]
    assert host.md("exec", "-i", "c1", "cat", input="piped\n").stdout == "piped\n"


def test_inspect(host):
    cid = detached(host, "sleep", "1000")
    doc = json.loads(host.md("inspect", "c1").stdout)[0]
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
                "Platform", "HostConfig", "Config", "NetworkSettings"):
        assert key in doc
    assert not [k for k in doc if k.startswith("_")]
    assert doc["Id"] == cid and doc["Name"] == "/c1" and doc["Path"] == "sleep"
    assert doc["State"]["Status"] == "running" and doc["Image"].startswith("sha256:")
    pid = host.md("inspect", "-f", "{{.State.Pid}}", cid[:5]).stdout.strip()
    assert open(f"/proc/{pid}/cmdline").read() == "sleep\x001000\x00"
    assert host.md("inspect", "-f", "{{json .Config.Cmd}}", "c1").stdout == '["sleep","1000"]\n'
    r = host.md("inspect", "nosuch", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "Error: No such object: nosuch"
    img = json.loads(host.md("inspect", "busybox").stdout)[0]
    assert "RepoTags" in img


def test_names(host):
    cid = host.md("create", "--name", "web", "--net", "none", "busybox", "true").stdout.strip()
    assert host.md("ps", "-a").stdout.splitlines()[1].split()[-2:] == ["Created", "web"]
    r = host.md("create", "--name", "web", "busybox", check=False)
    assert r.returncode == 125
    assert (f'Conflict. The container name "/web" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name.") in r.stderr
    r = host.md("create", "--name=-bad", "busybox", check=False)
    assert "Invalid container name (-bad)" in r.stderr
    host.md("start", "-a", "web")
    assert host.md("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web").stdout == "exited 0\n"


def test_rm_running_and_force_leaves_nothing(host):
    cid = detached(host, "sleep", "1000")
    pid = int(host.md("inspect", "-f", "{{.State.Pid}}", "c1").stdout)
    r = host.md("rm", "c1", check=False)
    assert r.returncode == 1
    assert (f"You cannot remove a running container {cid}. Stop the container before "
            "attempting removal or force remove") in r.stderr
    host.md("rm", "-f", "c1")
    assert not os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(os.path.join(host.root, "containers", cid))
    assert not os.path.exists(os.path.join(host.exec_root, "containers", cid))
    assert host.md("ps", "-aq").stdout == ""
    assert host.md("inspect", "c1", check=False).returncode == 1


def test_killed_monitor_shows_exited(host):
    detached(host, "sleep", "1000")
    doc = json.loads(host.md("inspect", "c1").stdout)[0]
    pid = doc["State"]["Pid"]
    with open(f"/proc/{pid}/stat") as fh:
        monitor = int(fh.read().rsplit(")", 1)[1].split()[1])    # ppid
    for victim in (monitor, pid):
        fd = os.pidfd_open(victim)
        os.kill(victim, signal.SIGKILL)
        select.select([fd], [], [], 10)
        os.close(fd)
    assert "Exited (" in host.md("ps", "-a").stdout.splitlines()[1]
    host.md("rm", "c1")


def test_foreground_rm_and_prune(host):
    assert host.md("run", "--rm", "--net", "none", "busybox", "echo", "x").stdout == "x\n"
    assert host.md("ps", "-aq").stdout == ""
    host.md("run", "--name", "done", "--net", "none", "busybox", "true")
    out = host.md("system", "prune", "-f").stdout
    assert "Deleted Containers:" in out
    assert host.md("ps", "-aq").stdout == ""
