"""Pure parts of the runtime: flags -> container document, env, command, users, ps."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from minidock.cli.containers import _run_parser, split_at_image
from minidock.errors import CannotInvoke, InvalidArgument
from minidock.runtime import container as records
from minidock.runtime.logs import LogWriter, parse_entries
from minidock.runtime.monitor import exit_code
from minidock.runtime.psformat import (command_text, human_duration, ports_text, ps_table,
                                       tabwrite)
from minidock.runtime.rootfs import overlay_options
from minidock.net.ports.portspec import parse_publish_all, to_port_bindings
from minidock.runtime.spec import (RunOptions, expand_env, merge_env, parse_env_file,
                                   resolve_command, validate_name)
from minidock.runtime.users import resolve_user

IMAGE = SimpleNamespace(id="ab" * 32, layer_dirs=("/l/1", "/l/2"),
                        config={"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "User": ""})


def test_name_rules():
    assert validate_name("web") == "web"
    assert validate_name("/a.b-c_d") == "a.b-c_d"
    for bad in ("-x", "a", "a b", "é9"):
        with pytest.raises(InvalidArgument, match=r"Invalid container name"):
            validate_name(bad)


def test_env_merge_and_expand():
    assert merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    assert expand_env(["K", "X=1", "NOPE"], {"K": "v"}) == ["K=v", "X=1"]
    assert parse_env_file("# c\n\nA=1\n  B\n", {"B": "b"}) == ["A=1", "B=b"]
    with pytest.raises(InvalidArgument):
        expand_env(["=x"], {})


def test_command_resolution():
    cfg = {"Entrypoint": ["/ep"], "Cmd": ["a"]}
    assert resolve_command(RunOptions("i"), cfg) == (["/ep"], ["a"])
    assert resolve_command(RunOptions("i", args=("b",)), cfg) == (["/ep"], ["b"])
    # --entrypoint clears the image's Cmd
    assert resolve_command(RunOptions("i", entrypoint="sh"), cfg) == (["sh"], None)
    assert resolve_command(RunOptions("i", entrypoint="", args=("x",)), cfg) == (None, ["x"])
    with pytest.raises(InvalidArgument, match="No command specified"):
        resolve_command(RunOptions("i"), {})


def parse_publish_raw(specs: tuple[str, ...]) -> dict:
    return to_port_bindings(parse_publish_all(specs))


def test_publish_raw():
    assert parse_publish_raw(("8080:80",)) == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert parse_publish_raw(("127.0.0.1::53/udp",)) == {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert parse_publish_raw(("8000-8001:80-81",)) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8000"}],
        "81/tcp": [{"HostIp": "", "HostPort": "8001"}]}
    with pytest.raises(InvalidArgument):
        parse_publish_raw(("x:80",))


def test_build_doc_shape():
    opts = RunOptions("busybox", args=("echo", "hi"), env=("A=2",), rm=True, network="none",
                      publish=("8080:80",), hostname=None)
    doc = records.build_doc("c" * 64, "web", IMAGE, opts, list(opts.env), "/log", "T")
    assert doc["Name"] == "/web" and doc["Path"] == "echo" and doc["Args"] == ["hi"]
    assert doc["Config"]["Hostname"] == "c" * 12
    assert doc["Config"]["Env"] == ["PATH=/bin", "A=2"]
    assert doc["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert doc["HostConfig"]["AutoRemove"] is True
    assert doc["Image"] == "sha256:" + "ab" * 32
    assert "_Layers" not in records.public(doc)
    env = records.runtime_env(doc, "/root")
    assert env[:2] == ["PATH=/bin", "HOSTNAME=" + "c" * 12] and env[-1] == "HOME=/root"


def test_split_at_image():
    p = _run_parser("run")
    assert split_at_image(p, ["--rm", "-e", "A=1", "busybox", "ls", "-l"]) == (
        ["--rm", "-e", "A=1", "busybox"], ["ls", "-l"])
    assert split_at_image(p, ["-it", "--name=x", "bb", "sh"]) == (["-it", "--name=x", "bb"], ["sh"])
    assert split_at_image(p, ["-dp", "80:80", "bb"]) == (["-dp", "80:80", "bb"], [])
    assert split_at_image(p, ["-p8080:80", "bb", "-x"]) == (["-p8080:80", "bb"], ["-x"])


PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:user,other\nuser:x:1000:\n"


def test_users():
    assert resolve_user("", PASSWD, GROUP).home == "/root"
    u = resolve_user("user", PASSWD, GROUP)
    assert (u.uid, u.gid, u.groups, u.home) == (1000, 1000, (1000, 10), "/home/user")
    assert resolve_user("1000:10", PASSWD, GROUP).gid == 10
    assert resolve_user("4242", PASSWD, GROUP).uid == 4242
    with pytest.raises(CannotInvoke, match="unable to find user x: no matching entries in passwd file"):
        resolve_user("x", PASSWD, GROUP)
    with pytest.raises(CannotInvoke, match="unable to find group g"):
        resolve_user("user:g", PASSWD, GROUP)


def test_exit_codes():
    assert exit_code(3 << 8) == 3
    assert exit_code(9) == 137          # killed by SIGKILL
    assert exit_code(15) == 143


def test_overlay_options_top_first():
    assert overlay_options(["/low", "/top"], "/u", "/w") == "lowerdir=/top:/low,upperdir=/u,workdir=/w"
    with pytest.raises(ValueError):
        overlay_options(["/a:b"], "/u", "/w")


def test_human_duration():
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(59) == "59 seconds"
    assert human_duration(90) == "About a minute"
    assert human_duration(3600) == "About an hour"
    assert human_duration(3 * 86400) == "3 days"


def test_ps_table():
    doc = records.build_doc("d" * 64, "web", IMAGE, RunOptions("busybox", args=("sleep", "1000")),
                            [], "/log", "2026-01-01T00:00:00.000000000Z")
    doc["State"].update(Status="exited", ExitCode=3, FinishedAt="2026-01-01T00:00:03.5Z")
    out = ps_table([doc], now=1767225610.0)   # 2026-01-01T00:00:10Z
    lines = out.splitlines()
    assert lines[0] == "CONTAINER ID   IMAGE     COMMAND        CREATED          STATUS                     PORTS     NAMES"
    assert lines[1] == "dddddddddddd   busybox   \"sleep 1000\"   10 seconds ago   Exited (3) 6 seconds ago             web"
    assert command_text({"Path": "sh", "Args": ["-c", "echo hello world, long"]}, False) == '"sh -c echo hello wo…"'
    ports = {"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                                      {"HostIp": "::", "HostPort": "8080"}],
                                           "443/tcp": None}}}
    assert ports_text(ports) == "0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp"
    assert tabwrite([["A", "B"], ["long-cell-value", "x"]]) == (
        "A" + " " * 17 + "B\n" + "long-cell-value   x\n")


def test_log_writer(tmp_path):
    path = tmp_path / "x-json.log"
    w = LogWriter(str(path))
    w.write("stdout", b"hel")
    w.write("stdout", b"lo\nwor")
    w.write("stderr", b"oops\n")
    w.close()
    entries = list(parse_entries(path.read_bytes()))
    assert entries == [("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "wor")]
    assert b'"time":"' in path.read_bytes() and path.read_bytes().count(b"\n") == 3
