"""dnsforward: which upstreams a container's queries go to."""

from __future__ import annotations

import json

from minidock.net.dns import dnsforward as f


def test_nameservers() -> None:
    text = ("# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver bogus\n"
            "nameserver fe80::1%eth0\nnameserver  10.0.0.1 \noptions ndots:2\n")
    assert f.nameservers(text) == ["127.0.0.53", "fe80::1", "10.0.0.1"]


def test_choose_upstreams_precedence_and_max() -> None:
    host = ["127.0.0.53", "10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert f.choose_upstreams([], [], host) == host[:3]
    assert f.choose_upstreams([], ["192.0.2.1"], host) == ["192.0.2.1"]
    assert f.choose_upstreams(["192.0.2.9"], ["192.0.2.1"], host) == ["192.0.2.9"]
    assert f.choose_upstreams(["nope"], [], []) == []


def test_upstream_config_reads_files(tmp_path, monkeypatch) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\n")
    monkeypatch.delenv("MINIDOCK_CONFIG", raising=False)
    cfg = f.UpstreamConfig(str(tmp_path), str(resolv))
    assert cfg.for_container(None) == ["127.0.0.53"]
    assert cfg.for_container({"HostConfig": {"Dns": ["192.0.2.7"]}}) == ["192.0.2.7"]
    (tmp_path / "daemon.json").write_text(json.dumps({"dns": ["192.0.2.8"]}))
    assert cfg.for_container({"HostConfig": {"Dns": []}}) == ["192.0.2.8"]
