"""The request bodies of the plugin protocols, compared byte for byte with what
dockerd 20.10.24 sent to the example plugins (tests/reference/docker-plugin-calls.jsonl,
recorded by tests/reference/capture-docker-plugin-calls.sh)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minidock.net.plugins import api

REF = Path(__file__).resolve().parents[1] / "reference" / "docker-plugin-calls.jsonl"


def recorded() -> list[tuple[str, str, bytes]]:
    """(phase, method, raw body) of every recorded call."""
    out, phase = [], ""
    for line in REF.read_text().splitlines():
        entry = json.loads(line)
        if "phase" in entry:
            phase = entry["phase"]
        else:
            out.append((phase, entry["method"], entry["body"].encode()))
    return out


def bodies(method: str, phase_prefix: str = "") -> list[bytes]:
    return [b for ph, m, b in recorded() if m == method and ph.startswith(phase_prefix)]


def ids(raw: bytes) -> dict[str, str]:
    return json.loads(raw)


def test_go_json_matches_go_encoding() -> None:
    assert api.go_json({"b": [], "a": None, "c": {}}) == b'{"b":[],"a":null,"c":{}}\n'
    assert api.go_json("<a&b>\n\x01\u2028é") == b'"\\u003ca\\u0026b\\u003e\\n\\u0001\\u2028\xc3\xa9"\n'
    assert api.go_json(b"\x02\x00\x00\x00\x00\x09") == b'"AgAAAAAJ"\n'
    assert api.go_json([True, False, 0, 65535]) == b"[true,false,0,65535]\n"
    assert list(api.gomap({"z": 1, "a": 2})) == ["a", "z"]
    assert api.gomap(None) is None


def test_no_body_calls_are_empty() -> None:
    for method in ("Plugin.Activate", "NetworkDriver.GetCapabilities",
                   "IpamDriver.GetCapabilities", "IpamDriver.GetDefaultAddressSpaces"):
        assert bodies(method) and all(b == b"" for b in bodies(method)), method


def test_headers_are_dockers() -> None:
    heads = [json.loads(l)["headers"] for l in REF.read_text().splitlines() if "headers" in l]
    assert all(list(h) == ["Host", "User-Agent", "Content-Length", "Accept"] for h in heads)
    assert {h["Accept"] for h in heads} == {api.MIME}
    assert {h["Host"] for h in heads} == {""}


def test_create_network_with_generic_options() -> None:
    raw = bodies("NetworkDriver.CreateNetwork", "network create -d vethnet --ipam-driver simpleipam --ipam-opt")[0]
    body = api.create_network(
        ids(raw)["NetworkID"],
        api.network_options({"vethnet.route": "10.99.0.0/16", "foo": "bar"}),
        [api.ipam_data("simple-local", "10.123.0.0/24", "10.123.0.1/24")], [])
    assert api.go_json(body) == raw


def test_create_network_internal_with_aux_addresses() -> None:
    raw = bodies("NetworkDriver.CreateNetwork", "network create -d vethnet --ipam-driver simpleipam --subnet")[0]
    body = api.create_network(
        ids(raw)["NetworkID"], api.network_options({}, internal=True),
        [api.ipam_data("simple-local", "10.124.5.0/24", "10.124.5.254/24",
                       {"b": "10.124.5.200/24", "a": "10.124.5.7/24"})], [])
    assert api.go_json(body) == raw


def test_create_network_default_ipam() -> None:
    raw = bodies("NetworkDriver.CreateNetwork", "network create -d vethnet --label")[0]
    body = api.create_network(ids(raw)["NetworkID"], api.network_options({}),
                              [api.ipam_data("LocalDefault", "172.18.0.0/16", "172.18.0.1/16")], [])
    assert api.go_json(body) == raw


def test_endpoint_calls() -> None:
    raw = bodies("NetworkDriver.CreateEndpoint", "run -d --name c1")[0]
    nid, eid = ids(raw)["NetworkID"], ids(raw)["EndpointID"]
    opts = api.endpoint_options([], [], internal=False, ports_elsewhere=False)
    assert api.go_json(api.create_endpoint(nid, eid, "10.123.0.3/24", "", "", opts)) == raw
    join = bodies("NetworkDriver.Join", "run -d --name c1")[0]
    sb = api.sandbox_options([], [])
    assert api.go_json(api.join(nid, eid, ids(join)["SandboxKey"], sb)) == join
    prog = bodies("NetworkDriver.ProgramExternalConnectivity", "run -d --name c1")[0]
    assert api.go_json(api.program_external_connectivity(nid, eid, sb)) == prog
    for method in ("NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave",
                   "NetworkDriver.DeleteEndpoint", "NetworkDriver.EndpointOperInfo"):
        assert api.go_json(api.endpoint_ids(nid, eid)) in bodies(method), method
    dele = bodies("NetworkDriver.DeleteNetwork")[0]
    assert api.go_json(api.network_id(ids(dele)["NetworkID"])) == dele


def test_endpoint_with_ports_and_mac() -> None:
    raw = bodies("NetworkDriver.CreateEndpoint", "run -d --name c2")[0]
    nid, eid = ids(raw)["NetworkID"], ids(raw)["EndpointID"]
    portmap = [api.port_binding(80, "tcp", "", 8080, 8080)]
    join = bodies("NetworkDriver.Join", "run -d --name c2")[0]
    # Docker's nat.SortPortMap comparator is no strict order and its input comes from
    # a Go map: dockerd sent [80, 90] in one recorded run and [90, 80] in another.
    for exposed in ([api.exposed_port(80, "tcp"), api.exposed_port(90, "tcp")],
                    [api.exposed_port(90, "tcp"), api.exposed_port(80, "tcp")]):
        opts = api.endpoint_options(exposed, portmap, internal=False, ports_elsewhere=False,
                                    mac="02:00:00:00:00:09")
        body = api.create_endpoint(nid, eid, "10.123.0.4/24", "", "02:00:00:00:00:09", opts)
        if api.go_json(body) == raw:
            break
    else:
        raise AssertionError(f"no order of the exposed ports gives {raw!r}")
    sb = api.sandbox_options(exposed, portmap)
    assert api.go_json(api.join(nid, eid, ids(join)["SandboxKey"], sb)) == join


def test_endpoint_on_internal_network_has_no_port_options() -> None:
    raw = bodies("NetworkDriver.CreateEndpoint", "run -d --name c3")[0]
    opts = api.endpoint_options([], [], internal=True, ports_elsewhere=False)
    body = api.create_endpoint(ids(raw)["NetworkID"], ids(raw)["EndpointID"],
                               "10.124.5.140/24", "", "", opts)
    assert api.go_json(body) == raw


def test_ipam_calls() -> None:
    pools = bodies("IpamDriver.RequestPool")
    assert api.go_json(api.request_pool("simple-local", "", "", {"simpleipam.first": "2"})) == pools[0]
    assert api.go_json(api.request_pool("simple-local", "10.124.5.0/24", "10.124.5.128/25", {})) == pools[1]
    addrs = bodies("IpamDriver.RequestAddress")
    pid = "simple-local:10.123.0.0/24"
    assert api.go_json(api.request_address(pid, "", api.GATEWAY_REQUEST)) == addrs[0]
    pid5 = "simple-local:10.124.5.0/24"
    assert api.go_json(api.request_address(pid5, "10.124.5.254", api.GATEWAY_REQUEST)) == addrs[1]
    assert api.go_json(api.request_address(pid5, "10.124.5.7", None)) == addrs[2]
    assert api.go_json(api.request_address(pid, "", None)) in addrs
    macnet = [json.loads(b) for b in addrs if b"macaddress" in b][0]
    mac = {api.OPT_MAC: macnet["Options"][api.OPT_MAC]}
    assert api.go_json(api.request_address(macnet["PoolID"], "", mac)) in addrs
    assert api.go_json(api.release_address(pid, "10.123.0.3")) in bodies("IpamDriver.ReleaseAddress")
    assert api.go_json(api.pool_id(pid)) in bodies("IpamDriver.ReleasePool")


def test_answers_checked_as_docker() -> None:
    assert api.capabilities({"Scope": "local"}) == ("local", "local")
    with pytest.raises(api.BadAnswer, match="expecting 'local' or 'global', got swarm"):
        api.capabilities({"Scope": "swarm"})
    assert api.endpoint_interface({}) == {}
    assert api.endpoint_interface({"Interface": {"MacAddress": "02:76:0A:7B:00:03"}}) == \
        {"MacAddress": "02:76:0a:7b:00:03"}
    with pytest.raises(api.BadAnswer):
        api.endpoint_interface({"Interface": {"Address": "nope"}})
    j = api.join_answer({"InterfaceName": {"SrcName": "vnc1", "DstPrefix": "eth"},
                         "Gateway": "10.1.0.1/24",
                         "StaticRoutes": [{"Destination": "10.9.0.0/16", "RouteType": 0,
                                           "NextHop": "10.1.0.1"}]})
    assert j["Gateway"] == "10.1.0.1" and j["StaticRoutes"][0]["Destination"] == "10.9.0.0/16"
    with pytest.raises(api.BadAnswer, match='unable to parse Gateway "x"'):
        api.join_answer({"Gateway": "x"})


def test_port_options_from_the_container_record() -> None:
    from minidock.net.plugins.options import port_options as options
    from minidock.net.ports.portspec import from_port_bindings

    def port_options(ctr: dict) -> tuple:
        return options(ctr, from_port_bindings(ctr["HostConfig"].get("PortBindings")))
    assert port_options({"Config": {}, "HostConfig": {}}) == ([], [])
    ctr = {"Config": {"ExposedPorts": {"90/tcp": {}, "53/udp": {}, "53/tcp": {}}},
           "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                           "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000-8010"}],
                                           "82/tcp": [{"HostIp": "", "HostPort": ""}]}}}
    exposed, portmap = port_options(ctr)
    assert [(e["Port"], e["Proto"]) for e in exposed] == \
        [(80, 6), (81, 6), (90, 6), (82, 6), (53, 6), (53, 17)]
    assert portmap == [api.port_binding(80, "tcp", "", 8080, 8080),
                       api.port_binding(81, "tcp", "127.0.0.1", 8000, 8010),
                       api.port_binding(82, "tcp")]
    ctr["HostConfig"]["PublishAllPorts"] = True
    _exp, portmap = port_options(ctr)
    assert api.port_binding(90, "tcp") in portmap and api.port_binding(53, "udp") in portmap
