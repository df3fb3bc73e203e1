"""The remote network and IPAM drivers against a scripted plugin on a unix socket
(no root): the calls they make, how they read the answers, their undo steps."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import pytest

da = pytest.importorskip("minidock.net.driverapi")

from minidock.errors import Internal  # noqa: E402
from minidock.net.plugins import client  # noqa: E402
from tests.unit.test_plugin_client import Recorder  # noqa: E402

NID, EID = "n" * 64, "e" * 64


class Store:
    def __init__(self, containers: dict[str, Any]) -> None:
        self.containers = containers

    networks: dict[str, Any] = {}

    def get(self, kind: str, key: str) -> Any:
        if kind == "network":
            return self.networks.get(key)
        return self.containers.get(key) if kind == "container" else None

    def list(self, kind: str) -> list[Any]:
        return []


class Ctx:
    def __init__(self, exec_root: str, containers: dict[str, Any] | None = None) -> None:
        self.exec_root = exec_root
        self.store = Store(containers or {})


class P:
    def __init__(self) -> None:
        self.undos: list[str] = []

    def undo(self, name: str, fn: Any, *args: Any) -> None:
        self.undos.append(name)


ACTIVATE = {"Plugin.Activate": (200, {"Implements": ["NetworkDriver", "IpamDriver"]}),
            "NetworkDriver.GetCapabilities": (200, {"Scope": "local"}),
            "IpamDriver.GetCapabilities": (200, {"RequiresMACAddress": True}),
            "IpamDriver.GetDefaultAddressSpaces": (200, {"LocalDefaultAddressSpace": "L",
                                                         "GlobalDefaultAddressSpace": "G"})}


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """Each test as a new CLI process: no plugin known to be unreachable, and an
    exec-root of its own (activations are remembered there; never /run/minidock)."""
    monkeypatch.setenv("MINIDOCK_EXEC_ROOT", str(tmp_path / "exec"))
    client._unreachable.clear()
    yield
    client._unreachable.clear()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    d = tempfile.mkdtemp(prefix="rd-", dir="/tmp")
    monkeypatch.setenv("MINIDOCK_PLUGIN_PATH", d)
    monkeypatch.setenv(client.RETRY_ENV, "0")
    servers: list[Recorder] = []

    def serve(answers: dict[str, Any]) -> Recorder:
        srv = Recorder(os.path.join(d, "p.sock"), {**ACTIVATE, **answers})
        servers.append(srv)
        return srv
    yield d, serve
    for srv in servers:
        srv.close()
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def _methods(srv: Recorder) -> list[str]:
    return [h.split(b" ")[1].decode()[1:] for h, _b in srv.requests]


def _body(srv: Recorder, method: str) -> bytes:
    return [b for h, b in srv.requests if h.split(b" ")[1].decode()[1:] == method][-1]


def test_lookup_finds_plugins_only() -> None:
    from minidock.net.drivers import remote
    assert remote.lookup("driver", "surely-no-such-plugin") is None


def test_network_and_endpoint_calls(env) -> None:
    from minidock.net.drivers.remote import RemoteDriver
    d, serve = env
    srv = serve({"NetworkDriver.CreateNetwork": (200, {}),
                 "NetworkDriver.CreateEndpoint": (200, {"Interface": {"MacAddress": "02:76:00:00:00:02"}}),
                 "NetworkDriver.Join": (200, {"InterfaceName": {"SrcName": "veth0", "DstPrefix": "eth"},
                                              "Gateway": "10.1.0.1",
                                              "StaticRoutes": [{"Destination": "10.9.0.0/16", "RouteType": 1}]})})
    drv = RemoteDriver("p")
    ctx = Ctx(d, {"c" * 64: {"Config": {}, "HostConfig": {"NetworkMode": "pn"}}})
    ctx.store.networks = {NID: {"IPAM": {"Driver": "default"}}}
    assert drv.capability.data_scope == "local"
    nw = da.NetworkInfo(NID, "pn", {"a": "b"},
                        ipv4_data=[da.IPAMData("10.1.0.0/24", "10.1.0.1/24", "LocalDefault")])
    p = P()
    drv.create_network(ctx, nw, p)
    assert _body(srv, "NetworkDriver.CreateNetwork") == (
        b'{"NetworkID":"' + NID.encode() + b'","Options":{"com.docker.network.enable_ipv6":false,'
        b'"com.docker.network.generic":{"a":"b"}},"IPv4Data":[{"AddressSpace":"LocalDefault",'
        b'"Gateway":"10.1.0.1/24","Pool":"10.1.0.0/24"}],"IPv6Data":[]}\n')
    assert nw.state["plugin"] is not None and p.undos == ["create_network"]
    ep = da.EndpointInfo(EID, NID, "c" * 64, "a", "eth0", "10.1.0.2/24")
    drv.create_endpoint(ctx, nw, ep, p)
    assert ep.mac == "02:76:00:00:00:02"
    assert json.loads(_body(srv, "NetworkDriver.CreateEndpoint"))["Interface"] == \
        {"Address": "10.1.0.2/24", "AddressIPv6": "", "MacAddress": ""}
    j = drv.join(ctx, nw, ep, da.SandboxInfo("/run/x/netns/abc", -1), p)
    assert (j.src_name, j.dst_prefix, j.gateway) == ("veth0", "eth", "10.1.0.1")
    assert [(r.destination, r.next_hop) for r in j.static_routes] == [("10.9.0.0/16", "")]
    drv.program_external_connectivity(ctx, nw, ep, p)      # 404: not implemented, fine
    drv.revoke_external_connectivity(ctx, nw, ep)
    assert p.undos == ["create_network"]     # endpoint undos are the caller's (attach)
    assert _methods(srv)[:2] == ["Plugin.Activate", "NetworkDriver.GetCapabilities"]
    assert _methods(srv).count("Plugin.Activate") == 1
    assert drv.sweep(ctx, [nw], [ep]) == [] and drv.expected_rules(ctx, nw, [ep]) == ([], [])


def test_answers_that_docker_refuses(env) -> None:
    from minidock.net.drivers.remote import RemoteDriver
    d, serve = env
    srv = serve({"NetworkDriver.CreateEndpoint": (200, {"Interface": {"Address": "10.1.0.9/24"}}),
           "NetworkDriver.Join": (200, {"Gateway": "nope"})})
    drv, ctx, p = RemoteDriver("p"), Ctx(d), P()
    nw = da.NetworkInfo(NID, "pn")
    ep = da.EndpointInfo(EID, NID, "", "a", "eth0", "10.1.0.2/24")
    with pytest.raises(Internal, match="driver modified interface address: .*; rolled back"):
        drv.create_endpoint(ctx, nw, ep, p)
    assert _methods(srv)[-1] == "NetworkDriver.DeleteEndpoint"     # errorWithRollback
    with pytest.raises(Internal, match='NetworkDriver.Join: unable to parse Gateway "nope"'):
        drv.join(ctx, nw, ep, da.SandboxInfo("/k", -1), p)
    assert _methods(srv)[-1] == "NetworkDriver.Leave"
    assert p.undos == []                  # the caller registers the endpoint's undos


def test_restarted_plugin_is_named(env) -> None:
    from minidock.net.drivers.remote import RemoteDriver
    d, serve = env
    srv = serve({"NetworkDriver.CreateNetwork": (200, {}),
                 "NetworkDriver.DeleteNetwork": (500, {"Err": "network not found"})})
    drv, ctx = RemoteDriver("p"), Ctx(d)
    nw = da.NetworkInfo(NID, "pn", ipv4_data=[da.IPAMData("10.1.0.0/24", "10.1.0.1/24", "L")])
    drv.create_network(ctx, nw, P())
    srv.close()
    os.unlink(os.path.join(d, "p.sock"))
    srv = serve({"NetworkDriver.DeleteNetwork": (500, {"Err": "network not found"})})
    with pytest.raises(Internal) as err:
        RemoteDriver("p").delete_network(ctx, nw)
    assert str(err.value).startswith('plugin "p": NetworkDriver.DeleteNetwork: network not found (')
    assert "restarted since network pn was created" in str(err.value)
    assert _methods(srv)[0] == "Plugin.Activate"        # activated again after the restart


def test_remote_ipam(env, monkeypatch: pytest.MonkeyPatch) -> None:
    from minidock.net.ipams import remote
    d, serve = env
    pools = iter(["10.1.0.0/24", "10.2.0.0/24"])
    srv = serve({"IpamDriver.RequestPool": (200, {"PoolID": "L:x/y", "Pool": "", "Data": {}}),
                 "IpamDriver.ReleasePool": (200, {}),
                 "IpamDriver.RequestAddress": (200, {"Address": "10.2.0.5/24"}),
                 "IpamDriver.ReleaseAddress": (200, {})})
    srv.answers["IpamDriver.RequestPool"] = (200, {"PoolID": "L:x/y", "Pool": "10.1.0.0/24"})
    ipam, ctx = remote.RemoteIPAM("p"), Ctx(d)
    assert ipam.requires_mac_address
    assert ipam.get_default_address_spaces(ctx) == ("L", "G")
    monkeypatch.setattr(remote, "_overlaps_host", lambda pool: pool == "10.1.0.0/24")
    real_call = ipam._call

    def call(ctx: Any, method: str, body: Any) -> Any:
        if method == "RequestPool":
            srv.answers["IpamDriver.RequestPool"] = (200, {"PoolID": "L:" + (p := next(pools)),
                                                           "Pool": p})
        return real_call(ctx, method, body)
    monkeypatch.setattr(ipam, "_call", call)
    assert ipam.request_pool(ctx, "L", options={}) == ("L:10.2.0.0/24", "10.2.0.0/24", {})
    assert _methods(srv)[-3:] == ["IpamDriver.RequestPool", "IpamDriver.RequestPool",
                                  "IpamDriver.ReleasePool"]
    assert json.loads(_body(srv, "IpamDriver.ReleasePool")) == {"PoolID": "L:10.1.0.0/24"}
    assert ipam.request_address(ctx, "L:10.2.0.0/24", "owner", "", {}) == "10.2.0.5/24"
    assert _body(srv, "IpamDriver.RequestAddress") == \
        b'{"PoolID":"L:10.2.0.0/24","Address":"","Options":null}\n'
    ipam.release_address(ctx, "L:10.2.0.0/24", "10.2.0.5/24")
    assert _body(srv, "IpamDriver.ReleaseAddress") == b'{"PoolID":"L:10.2.0.0/24","Address":"10.2.0.5"}\n'
    assert _methods(srv).count("IpamDriver.GetDefaultAddressSpaces") == 1


# -- the controller's side of IPAM (libnetwork's ipamAllocate / ipamRelease) -----------
def test_network_create_asks_ipam_as_docker(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from tests.unit.test_driverapi import FakeIPAM
    from minidock.context import Context
    from minidock.errors import Conflict
    from minidock.net import controller
    ipam = FakeIPAM()
    seen: list[Any] = []
    real = ipam.request_pool

    def request_pool(ctx, space, pool="", sub_pool="", options=None, v6=False):
        seen.append((space, pool, sub_pool, options))
        return real(ctx, space, pool, sub_pool, options, v6)
    ipam.request_pool = request_pool
    da.register_ipam("pipam", ipam)
    (tmp_path / "daemon.json").write_text('{"bridge": "none", "iptables": false}')
    ctx = Context(str(tmp_path / "root"), str(tmp_path / "run"), str(tmp_path / "daemon.json"))
    monkeypatch.setattr(controller, "ensure_initialized", lambda ctx: None)

    class Drv:
        capability = da.Capability()
        calls: list[Any] = []

        def create_network(self, ctx, nw, p):
            self.calls.append(("create", [(d.pool, d.gateway, d.address_space, d.aux_addresses)
                                          for d in nw.ipv4_data]))

        def delete_network(self, ctx, nw):
            self.calls.append(("delete", nw.name))
    drv = Drv()
    da.register("pdrv", drv)
    try:
        nid = controller.create_network(
            ctx, "n1", "pdrv", "10.9.0.0/24", ip_range="10.9.0.128/25",
            ipam_driver="pipam", ipam_options={"k": "v"}, aux_addresses={"b": "10.9.0.9", "a": "10.9.0.7"})
        assert seen == [("FakeLocal", "10.9.0.0/24", "10.9.0.128/25", {"k": "v"})]
        assert ipam.calls[1:] == [("request_gateway", ""), ("request_address", "10.9.0.2/24"),
                                  ("request_address", "10.9.0.3/24")]
        assert drv.calls == [("create", [("10.9.0.0/24", "10.9.0.1/24", "FakeLocal",
                                          {"a": "10.9.0.2/24", "b": "10.9.0.3/24"})])]
        doc = controller.inspect_network(ctx, "n1")
        assert doc["IPAM"] == {"Driver": "pipam", "Options": {"k": "v"}, "Config": [
            {"Subnet": "10.9.0.0/24", "IPRange": "10.9.0.128/25",
             "AuxiliaryAddresses": {"b": "10.9.0.9", "a": "10.9.0.7"}}]}
        del ipam.calls[:], drv.calls[:]
        controller.remove_network(ctx, "n1")
        assert ipam.calls == [("release_address", "10.9.0.1"), ("release_address", "10.9.0.2/24"),
                              ("release_address", "10.9.0.3/24"),
                              ("release_pool", "FakeLocal/10.9.0.0/24")]
        assert drv.calls == [("delete", "n1")]
        # a failure after the pool: what was taken is given back, nothing recorded
        del ipam.calls[:]

        def refuse(ctx, pool_id, owner, address="", options=None):
            if options is None:
                raise Conflict("Address already in use: 10.9.0.7")
            return "10.9.0.1/24"
        monkeypatch.setattr(ipam, "request_address", refuse)
        with pytest.raises(Conflict):
            controller.create_network(ctx, "n2", "pdrv", "10.9.0.0/24", ipam_driver="pipam",
                                      aux_addresses={"a": "10.9.0.7"})
        assert ipam.calls == [("request_pool", "10.9.0.0/24"), ("release_address", "10.9.0.1"),
                              ("release_pool", "FakeLocal/10.9.0.0/24")]
        assert ctx.store.get_by_name("network", "n2") is None
        assert nid
    finally:
        da.unregister("pdrv")
        da.unregister("pipam")
