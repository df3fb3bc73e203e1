"""Pure parts of the networking core: gateway choice, port bindings and conflicts,
inspect Ports, `port` lines, `network ls` table, boot fingerprint, records."""

from __future__ import annotations

from tests.reference import REF

from minidock.cli.networks import table
from minidock.config import DaemonConfig
from minidock.net import attach, boot
from minidock.net.ports import portmap
from minidock.net.ports.portspec import PortBinding
from minidock.net import endpoint as eps
from minidock.net import network as nw


def _net(name: str, **kw) -> nw.Net:
    return nw.Net(id=name * 4, name=name, driver=kw.pop("driver", "bridge"), **kw)


def test_gateway_network_prefers_non_internal_then_name():
    nets = [_net("zeta", gateway="10.0.0.1"), _net("alpha", gateway="10.1.0.1", internal=True),
            _net("bridge", gateway="172.17.0.1"), _net("none", driver="null")]
    assert attach.gateway_network(nets).name == "bridge"
    assert attach.gateway_network([_net("none", driver="null")]) is None


def test_requested_bindings_and_publish_all():
    ctr = {"HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                           "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                                           "90/tcp": [{"HostIp": "", "HostPort": "9000-9010"}]},
                          "PublishAllPorts": True},
           "Config": {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}}}
    got = portmap.requested_bindings(ctr, "0.0.0.0")
    assert PortBinding("tcp", 80, "0.0.0.0", 8080) in got
    assert PortBinding("udp", 53, "127.0.0.1", 0) in got
    assert PortBinding("tcp", 90, "0.0.0.0", 9000, 9010) in got
    assert PortBinding("tcp", 443, "0.0.0.0", 0) in got


def test_port_conflicts_any_address():
    claimed = {"0.0.0.0:8080": "a", "127.0.0.1:9090": "b"}
    assert portmap._conflicts(claimed, "127.0.0.1", 8080, "c")
    assert portmap._conflicts(claimed, "0.0.0.0", 9090, "c")
    assert not portmap._conflicts(claimed, "127.0.0.2", 9090, "c")
    assert not portmap._conflicts(claimed, "0.0.0.0", 8080, "a")  # same owner


class FakeStore:
    """Just enough of store.Store for portmap.allocate (claims, one transaction)."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], str] = {}

    def transaction(self):
        import contextlib
        return contextlib.nullcontext(self)

    def claimed(self, space):
        return {k: o for (s, k), o in self.claims.items() if s == space}

    def claim(self, space, key, owner):
        return self.claims.setdefault((space, key), owner) == owner


def test_allocate_ports_and_docker_message(monkeypatch):
    monkeypatch.setattr(portmap, "ephemeral_range", lambda: (49153, 49155))
    store = FakeStore()
    want = [PortBinding("tcp", 80, "0.0.0.0", 8080),
            PortBinding("tcp", 81, "0.0.0.0", 0)]
    got = portmap.allocate(store, "ep1", want, "web (ep1)")
    assert [b.host_port for b in got] == [8080, 49153]
    try:
        portmap.allocate(store, "ep2", want[:1], "db (ep2)")
    except Exception as err:
        assert str(err) == ("driver failed programming external connectivity on endpoint db "
                            "(ep2): Bind for 0.0.0.0:8080 failed: port is already allocated")
    else:
        raise AssertionError("conflict not detected")


def test_inspect_ports_and_port_lines(monkeypatch):
    monkeypatch.setattr(portmap, "has_ipv6", lambda: True)
    ctr = {"Config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}}
    ports = portmap.inspect_ports(ctr, [PortBinding("tcp", 80, "0.0.0.0", 8080)])
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                {"HostIp": "::", "HostPort": "8080"}], "53/udp": None}
    lines = portmap.ports_of({"NetworkSettings": {"Ports": ports}})
    assert lines == ["80/tcp -> 0.0.0.0:8080", "80/tcp -> :::8080"]


def test_network_ls_table_like_docker():
    rows = [["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
            ["f92c1637e244", "bridge", "bridge", "local"],
            ["226d182b1dc2", "host", "host", "local"],
            ["1edf30df6428", "none", "null", "local"]]
    with open(REF / "network-ls.txt") as fh:
        assert table(rows) == fh.read()


def test_fingerprint_changes_with_options():
    a, b = DaemonConfig(), DaemonConfig(icc=False)
    assert boot.fingerprint(a) == boot.fingerprint(DaemonConfig())
    assert boot.fingerprint(a) != boot.fingerprint(b)


def test_endpoint_and_network_records_roundtrip():
    ep = eps.Endpoint(id="e", network_id="n", container_id="c", name="web", ip="172.17.0.2",
                      prefixlen=16, ports=(PortBinding("tcp", 80, "0.0.0.0", 8080),),
                      state={"rules": [["nat", "MINIDOCK", ["-j", "RETURN"], None]]})
    import json
    assert eps.from_doc(json.loads(json.dumps(eps.to_doc(ep)))) == ep
    net = _net("red", subnet="10.0.0.0/24", gateway="10.0.0.1", options={"a": "b"},
               state={"bridge": "br-x"})
    doc = nw.new_doc(net, [{"Subnet": "10.0.0.0/24"}])
    assert nw.from_doc(doc) == net and net.prefixlen == 24 and net.user_defined
    pub = nw.public_doc(doc, {})
    assert list(pub)[:13] == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                              "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly",
                              "Containers"]
    assert "_net" not in pub
