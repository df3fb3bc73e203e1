"""Plugin discovery (Docker's search order plus MINIDOCK_PLUGIN_PATH) and the wire:
a real HTTP server on a unix socket in a temporary directory."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from minidock.errors import InvalidArgument, NotFound
from minidock.net.plugins import client, discovery


@pytest.fixture(autouse=True)
def _fresh_process():
    """Each test as a new CLI process: no plugin known to be unreachable."""
    client._unreachable.clear()
    yield
    client._unreachable.clear()


@pytest.fixture
def dirs(monkeypatch: pytest.MonkeyPatch):
    base = Path(tempfile.mkdtemp(prefix="plg-", dir="/tmp"))
    socks, etc, lib, extra = (base / d for d in ("run", "etc", "lib", "extra"))
    for d in (socks, etc, lib, extra):
        d.mkdir()
    monkeypatch.setattr(discovery, "SOCKETS_DIR", str(socks))
    monkeypatch.setattr(discovery, "SPEC_DIRS", (str(etc), str(lib)))
    monkeypatch.delenv(discovery.PATH_ENV, raising=False)
    yield socks, etc, lib, extra
    import shutil
    shutil.rmtree(base, ignore_errors=True)


def _socket_file(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    return s


def test_discovery_order(dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    socks, etc, lib, extra = dirs
    with pytest.raises(NotFound, match='plugin "p" not found'):
        discovery.find("p")
    (lib / "p.json").write_text(json.dumps({"Name": "p", "Addr": "tcp://127.0.0.1:9"}))
    assert discovery.find("p").url == "tcp://127.0.0.1:9"
    (etc / "p").mkdir()
    (etc / "p" / "p.spec").write_text("unix:///x/p.sock\n")
    assert discovery.find("p").url == "unix:///x/p.sock"
    (socks / "p.sock").write_text("not a socket")          # only sockets count
    assert discovery.find("p").scheme == "unix" and discovery.find("p").address == "/x/p.sock"
    os.unlink(socks / "p.sock")
    s = _socket_file(socks / "p" / "p.sock")
    try:
        assert discovery.find("p").address == str(socks / "p" / "p.sock")
        (extra / "p.spec").write_text("tcp://127.0.0.1:7")
        monkeypatch.setenv(discovery.PATH_ENV, f"/nonexistent:{extra}")
        assert discovery.find("p").url == "tcp://127.0.0.1:7"
    finally:
        s.close()


def test_discovery_rejects_bad_names_and_files(dirs) -> None:
    _socks, etc, _lib, _extra = dirs
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(InvalidArgument):
            discovery.find(bad)
    (etc / "q.spec").write_text("/no/scheme")
    with pytest.raises(InvalidArgument, match="Unknown protocol"):
        discovery.find("q")
    (etc / "q.spec").unlink()
    (etc / "q.json").write_text("{")
    with pytest.raises(InvalidArgument, match="invalid"):
        discovery.find("q")


class Recorder:
    """A plugin on a unix socket answering from a table, recording raw requests."""

    def __init__(self, path: str, answers: dict[str, tuple[int, Any]]) -> None:
        self.path, self.answers, self.requests = path, answers, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                              if l.lower().startswith(b"content-length")][0])
                while len(body) < length:
                    body += conn.recv(4096)
                self.requests.append((head, body))
                method = head.split(b" ")[1].decode().lstrip("/")
                status, answer = self.answers.get(method, (404, {"Err": "nope"}))
                if status == 0:
                    continue                   # close without answering
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(raw)) + raw)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="plw-", dir="/tmp")
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def _client(path: str, retry: float = 0, timeout: float = 5) -> client.Client:
    return client.Client(discovery.PluginAddr("p", "unix", path), retry=retry, timeout=timeout)


def test_wire_request_is_dockers(sockdir: str) -> None:
    path = os.path.join(sockdir, "p.sock")
    srv = Recorder(path, {"NetworkDriver.Join": (200, {"Gateway": "10.0.0.1"}),
                          "Plugin.Activate": (200, {"Implements": ["NetworkDriver"]})})
    try:
        c = _client(path)
        assert c.call("NetworkDriver.Join", {"NetworkID": "n"}) == {"Gateway": "10.0.0.1"}
        head, body = srv.requests[0]
        assert head.split(b"\r\n") == [
            b"POST /NetworkDriver.Join HTTP/1.1", b"Host: ", b"User-Agent: Go-http-client/1.1",
            b"Content-Length: 18", b"Accept: application/vnd.docker.plugins.v1.2+json"]
        assert body == b'{"NetworkID":"n"}\n'
        c.call("Plugin.Activate")
        assert srv.requests[1][0].split(b"\r\n")[3] == b"Content-Length: 0"
        assert srv.requests[1][1] == b""
    finally:
        srv.close()


def test_wire_failures(sockdir: str) -> None:
    path = os.path.join(sockdir, "p.sock")
    srv = Recorder(path, {"A": (500, {"Err": "boom"}), "B": (200, {"Err": "bad"}),
                          "C": (500, b"plain text"), "D": (200, {"Error": "ipam says no"}),
                          "E": (0, None), "F": (200, b"[1]")})
    try:
        c = _client(path)
        with pytest.raises(client.PluginError, match='^plugin "p": A: boom$'):
            c.call("A", {})
        with pytest.raises(client.PluginError, match='^plugin "p": B: remote: bad$'):
            c.call("B", {})
        with pytest.raises(client.PluginError, match="C: plain text"):
            c.call("C", {})
        with pytest.raises(client.PluginError, match="D: remote: ipam says no"):
            c.call("D", {}, err_key="Error")
        assert c.call("D", {}) == {"Error": "ipam says no"}
        with pytest.raises(client.PluginError) as info:
            c.call("Missing", {})
        assert info.value.not_implemented
        with pytest.raises(client.PluginError, match="closed the connection"):
            c.call("E", {})
        with pytest.raises(client.PluginError, match="closed the connection"):
            c.call("A", {})                    # unreachable: fails at once from now on
        client._unreachable.clear()
        with pytest.raises(client.PluginError, match="not a JSON object"):
            c.call("F", {})
    finally:
        srv.close()


def test_wire_retries_with_backoff_until_the_plugin_listens(sockdir: str) -> None:
    path = os.path.join(sockdir, "late.sock")
    with pytest.raises(client.PluginError, match="is the plugin running"):
        _client(path, retry=0).call("X", {})
    client._unreachable.clear()
    holder: list[Recorder] = []
    timer = threading.Timer(0.3, lambda: holder.append(Recorder(path, {"X": (200, {})})))
    timer.start()
    try:
        assert _client(path, retry=5).call("X", {}) == {}   # retried after 1 s
    finally:
        timer.join()
        for srv in holder:
            srv.close()


def test_wire_timeout(sockdir: str) -> None:
    path = os.path.join(sockdir, "mute.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    try:
        with pytest.raises(client.PluginError, match="no answer in 0.3 s"):
            _client(path, retry=30, timeout=0.3).call("X", {})
    finally:
        s.close()


def test_backoff_is_dockers() -> None:
    assert [client.backoff(i) for i in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_activation_is_remembered_until_the_socket_changes(dirs, sockdir: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    socks = dirs[0]
    path = str(socks / "p.sock")
    answers = {"Plugin.Activate": (200, {"Implements": ["NetworkDriver"]}),
               "NetworkDriver.GetCapabilities": (200, {"Scope": "local"})}
    monkeypatch.setenv(client.RETRY_ENV, "0")
    srv = Recorder(path, answers)
    caps = lambda c: c.call("NetworkDriver.GetCapabilities")   # noqa: E731
    try:
        c, info = client.activate(sockdir, "p", "NetworkDriver", caps)
        assert info == {"Scope": "local"} and not c.hint
        client.activate(sockdir, "p", "NetworkDriver", caps)
        assert len(srv.requests) == 2                  # remembered: no new calls
        with pytest.raises(InvalidArgument, match='plugin "p" does not implement IpamDriver'):
            client.activate(sockdir, "p", "IpamDriver")
    finally:
        srv.close()
    os.unlink(path)
    time.sleep(0.01)
    srv = Recorder(path, answers)                      # the plugin restarted
    try:
        c, _ = client.activate(sockdir, "p", "NetworkDriver", caps)
        assert [r[0].split(b" ")[1] for r in srv.requests] == \
            [b"/Plugin.Activate", b"/NetworkDriver.GetCapabilities"]
        assert c.hint == client.RESTART_HINT
    finally:
        srv.close()
