"""The monitor template's request codec and what the template process imports."""

from __future__ import annotations

import marshal
import subprocess

import pytest

from minidock import leanboot
from minidock.context import Context
from minidock.runtime import montemplate as mt
from minidock.runtime.init import Privileges
from minidock.runtime.monitor import MonitorFds

CTR = {"Id": "ab" * 32, "Config": {"Env": ["A=1"], "Tty": False}, "HostConfig": {},
       "LogPath": "/x/ab-json.log", "Args": ["sleep", "1"], "Path": "sleep"}


def _fds(**kw) -> MonitorFds:
    base = dict(sync_w=11, go_r=12, verdict_r=13, exit_w=14, attach=False,
                privs=Privileges(0x3, b"\x06\x00"))
    return MonitorFds(**{**base, **kw})


def test_request_round_trip() -> None:
    ctx = Context(root="/r", exec_root="/e", config_path=None)
    msg, sent = mt.encode_request(ctx, CTR, ("join", "/e/netns/k"), _fds(tty=True,
                                                                      winsize=b"12345678"))
    assert sent == [11, 12, 13, 14]
    body = marshal.loads(msg)
    assert body["v"] == mt.PROTO and body["code"] == mt.code_stamp()
    ctx2, ctr, netns, fds, path = mt.decode_request(body, [21, 22, 23, 24])
    assert (ctx2.root, ctx2.exec_root, ctx2.config_path) == ("/r", "/e", None)
    assert ctr == CTR and netns == ("join", "/e/netns/k") and path == body["path"]
    assert fds == _fds(sync_w=21, go_r=22, verdict_r=23, exit_w=24, tty=True,
                       winsize=b"12345678")


def test_request_with_stdin_and_no_seccomp() -> None:
    ctx = Context(root="/r", exec_root="/e")
    msg, sent = mt.encode_request(ctx, CTR, ("new", None),
                                  _fds(stdin=0, privs=Privileges(0x3, None)))
    assert sent == [11, 12, 13, 14, 0]
    _ctx, _ctr, _netns, fds, _path = mt.decode_request(marshal.loads(msg), [1, 2, 3, 4, 5])
    assert fds.stdin == 5 and fds.privs == Privileges(0x3, None)
    with pytest.raises(ValueError, match="expected 5 fds, got 4"):
        mt.decode_request(marshal.loads(msg), [1, 2, 3, 4])


def test_a_record_marshal_cannot_carry_is_refused() -> None:
    with pytest.raises(ValueError):
        mt.encode_request(Context(), {**CTR, "odd": object()}, ("new", None), _fds())


def test_the_template_imports_no_store_and_no_site_packages() -> None:
    code = (f"import sys; sys.path.insert(0, {leanboot.PKG_PARENT!r}); "
            "from minidock.runtime import montemplated; montemplated.preload(); "
            "print(' '.join(sorted(sys.modules)))")
    mods = set(subprocess.run([*leanboot.argv("x:y")[:3], "-c", code], capture_output=True,
                              text=True, check=True).stdout.split())
    assert {"minidock.runtime.init", "minidock.runtime.monitor_main", "ctypes"} <= mods
    assert not {"sqlite3", "minidock.store", "minidock.runtime.lifecycle", "site"} & mods
