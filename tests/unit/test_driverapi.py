"""The driver API seam: a fake network driver and a fake IPAM driver, registered
through net/driverapi.py, driven by the controller, the start pipeline's networking
(api.initialize_networking / prestart / release_networking), connect/disconnect and
network rm, with no kernel: the calls and their order are checked."""

from __future__ import annotations

import json

import pytest

from minidock.context import Context
from minidock.net import api, connect, controller, driverapi, sandbox
from minidock.net import endpoint as eps
from minidock.pipeline import Pipeline


class FakeDriver:
    """Records every verb; keeps its own state in the records it is given."""

    name = "fake"
    capability = driverapi.Capability(external_connectivity=True)

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def init(self, ctx, p):
        self.calls.append(("init", ""))

    def create_network(self, ctx, nw, p):
        assert nw.ipv4_data[0].pool == "10.9.0.0/24"
        assert nw.ipv4_data[0].gateway == "10.9.0.1/24"
        assert nw.options == {"fake.opt": "x"}
        nw.state = {"vni": 42}
        self.calls.append(("create_network", nw.name))

    def delete_network(self, ctx, nw):
        assert nw.state == {"vni": 42}
        self.calls.append(("delete_network", nw.name))

    def create_endpoint(self, ctx, nw, ep, p):
        assert nw.state == {"vni": 42}
        ep.state = {"port": "fk" + ep.id[:6]}
        ep.mac = "02:00:00:00:00:0" + ep.ifname[-1]      # the driver answers its MAC
        self.calls.append(("create_endpoint", ep.address))

    def delete_endpoint(self, ctx, nw, ep):
        assert ep.state["port"] == "fk" + ep.id[:6]
        self.calls.append(("delete_endpoint", ep.address))

    def join(self, ctx, nw, ep, sb, p):
        assert sb.key and sb.fd == -1
        self.calls.append(("join", ep.ifname))
        return driverapi.JoinInfo(ep.state["port"], gateway="10.9.0.1",
                                  static_routes=[driverapi.StaticRoute("10.99.0.0/16")])

    def leave(self, ctx, nw, ep):
        self.calls.append(("leave", ep.ifname))

    def program_external_connectivity(self, ctx, nw, ep, p):
        ep.state = dict(ep.state, published=len(ep.ports))
        self.calls.append(("program_external_connectivity", ep.ifname))

    def revoke_external_connectivity(self, ctx, nw, ep):
        self.calls.append(("revoke_external_connectivity", ep.ifname))

    def expected_rules(self, ctx, nw, endpoints):
        return [], []

    def sweep(self, ctx, networks, endpoints):
        return []


class FakeIPAM:
    name = "fakeipam"
    requires_mac_address = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.next = 2

    def get_default_address_spaces(self, ctx):
        return "FakeLocal", "FakeGlobal"

    def request_pool(self, ctx, address_space, pool="", sub_pool="", options=None, v6=False):
        self.calls.append(("request_pool", pool))
        return f"{address_space}/{pool}", pool, {}

    def release_pool(self, ctx, pool_id):
        self.calls.append(("release_pool", pool_id))

    def request_address(self, ctx, pool_id, owner, address="", options=None):
        if (options or {}).get(driverapi.REQUEST_ADDRESS_TYPE) == driverapi.GATEWAY:
            self.calls.append(("request_gateway", address))
            return "10.9.0.1/24"
        addr = f"10.9.0.{self.next}/24"
        self.next += 1
        self.calls.append(("request_address", addr))
        return addr

    def release_address(self, ctx, pool_id, address):
        self.calls.append(("release_address", address))


class FakeNetlink:
    """The sandbox side of a join: records what configure_interface asks for."""

    def __init__(self, log: list[tuple]) -> None:
        self.log = log
        self.links: dict[str, int] = {}

    def link_get(self, name):
        from minidock.net.kernel.netlink import Link
        if name not in self.links:
            self.links[name] = len(self.links) + 10
        return Link(self.links[name], name, 0, 1500, 0, "", "veth")

    def link_set(self, index, **kw):
        self.log.append(("link_set", index, tuple(sorted(kw.items()))))

    def addr_add(self, index, address, prefixlen):
        self.log.append(("addr_add", index, f"{address}/{prefixlen}"))

    def route_add(self, dst, gateway=None, oif=0):
        self.log.append(("route_add", dst, gateway, oif))


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A controller with only null/host built in, the fakes registered, and every
    kernel seam of the sandbox replaced by recorders."""
    drv, ipam, kernel = FakeDriver(), FakeIPAM(), []
    monkeypatch.setattr(driverapi, "DRIVERS", {"null": driverapi.DRIVERS["null"],
                                               "host": driverapi.DRIVERS["host"]})
    driverapi.register("fake", drv)
    driverapi.register_ipam("fakeipam", ipam)

    class Plumbing:
        def __init__(self, key):
            self.key, self.fd = key, -1
            self.host, self.inner = FakeNetlink(kernel), FakeNetlink(kernel)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(sandbox, "Plumbing", Plumbing)
    monkeypatch.setattr(sandbox, "loopback_up", lambda pl: kernel.append(("lo_up",)))
    monkeypatch.setattr(sandbox, "set_network_namespace_key",
                        lambda sb, pid: kernel.append(("pin", pid)))
    monkeypatch.setattr(sandbox, "destroy", lambda sb: kernel.append(("unpin",)))
    monkeypatch.setattr(sandbox, "reachable_netns",
                        lambda ctr: ctr["NetworkSettings"]["SandboxKey"])
    from minidock.net.dns import resolver
    monkeypatch.setattr(resolver, "start", lambda ctx: None)
    monkeypatch.setattr(resolver, "attach", lambda ctx, cid, key, proc_path="": None)
    monkeypatch.setattr(resolver, "detach", lambda ctx, cid: None)
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"bridge": "none", "iptables": False, "ip-forward": False}))
    ctx = Context(str(tmp_path / "root"), str(tmp_path / "run"), str(config))
    yield ctx, drv, ipam, kernel
    driverapi.unregister("fake")
    driverapi.unregister("fakeipam")


def _container(ctx: Context, name: str, network: str) -> dict:
    cid = (name * 64)[:64]
    ctr = {"Id": cid, "Name": "/" + name, "State": {"Running": False, "Pid": 0},
           "Config": {"Hostname": cid[:12], "Domainname": "", "ExposedPorts": None},
           "HostConfig": {"NetworkMode": network, "PortBindings": {}, "Links": None},
           "NetworkSettings": {"Networks": {}}}
    ctx.store.put("container", cid, ctr, name=name)
    return ctr


def test_fake_driver_through_the_controller(lab):
    ctx, drv, ipam, kernel = lab
    nid = controller.create_network(ctx, "red", driver="fake", subnet="10.9.0.0/24",
                                    options={"fake.opt": "x"}, ipam_driver="fakeipam")
    assert drv.calls == [("init", ""), ("create_network", "red")]
    assert ipam.calls == [("request_pool", "10.9.0.0/24"), ("request_gateway", "")]
    doc = ctx.store.get("network", nid)
    assert doc["_net"]["state"] == {"vni": 42} and doc["IPAM"]["Driver"] == "fakeipam"

    # a container joins at start: allocate (before the process), prestart (join)
    ctr = _container(ctx, "web", "red")
    with Pipeline("start") as p:
        api.initialize_networking(ctx, ctr, p)
        api.prestart(ctx, ctr, 4242, p)
        p.commit()
    ep = eps.of_container(ctx.store, ctr["Id"])[0]
    assert (ep.ip, ep.ifname, ep.mac) == ("10.9.0.2", "eth0", "02:00:00:00:00:00")
    assert ep.state == {"port": "fk" + ep.id[:6], "published": 0}
    assert ctr["NetworkSettings"]["Networks"]["red"]["IPAddress"] == "10.9.0.2"
    # libnetwork programs the gateway endpoint's external connectivity, ports or not
    assert drv.calls[2:] == [("create_endpoint", "10.9.0.2/24"), ("join", "eth0"),
                             ("program_external_connectivity", "eth0")]
    port = ep.state["port"]
    # the sandbox moved, named, addressed and routed the interface the driver answered
    assert kernel == [
        ("pin", 4242), ("lo_up",),
        ("link_set", 10, (("netns_fd", -1), ("up", False))),
        ("link_set", 10, (("mac", "02:00:00:00:00:00"), ("name", "eth0"))),
        ("addr_add", 11, "10.9.0.2/24"), ("link_set", 11, (("up", True),)),
        ("route_add", "10.99.0.0/16", None, 11), ("route_add", "0.0.0.0/0", "10.9.0.1", 0)]
    assert port.startswith("fk")

    # connect to a second network of the same driver, then disconnect
    controller.create_network(ctx, "blue", driver="fake", subnet="10.9.0.0/24",
                              options={"fake.opt": "x"}, ipam_driver="fakeipam")
    ctr["State"]["Running"] = True            # what the runtime records once started
    ctx.store.put("container", ctr["Id"], ctr, name="web")
    del drv.calls[:]
    connect.connect(ctx, "blue", "web", [])
    assert drv.calls == [("create_endpoint", "10.9.0.3/24"), ("join", "eth1")]
    del drv.calls[:]
    connect.disconnect(ctx, "blue", "web")
    assert drv.calls == [("revoke_external_connectivity", "eth1"), ("leave", "eth1"),
                         ("delete_endpoint", "10.9.0.3/24")]
    assert ipam.calls[-1] == ("release_address", "10.9.0.3")

    # the container stops: endpoints released, sandbox gone, then delete_endpoint
    del drv.calls[:], kernel[:]
    ctr = ctx.store.get("container", ctr["Id"])
    assert api.release_networking(ctx, ctr) == []
    assert drv.calls == [("revoke_external_connectivity", "eth0"),
                         ("delete_endpoint", "10.9.0.2/24")]
    assert kernel == [("unpin",)]
    assert ipam.calls[-1] == ("release_address", "10.9.0.2")
    assert eps.of_container(ctx.store, ctr["Id"]) == []

    # network rm: the gateway address and the pool, then the driver (Docker's order)
    del drv.calls[:], ipam.calls[:]
    controller.remove_network(ctx, "red")
    assert drv.calls == [("delete_network", "red")]
    assert ipam.calls == [("release_address", "10.9.0.1"), ("release_pool", "FakeLocal/10.9.0.0/24")]
    assert ctx.store.get("network", nid) is None


def test_published_ports_go_to_the_gateway_endpoint_only(lab):
    ctx, drv, _ipam, _kernel = lab
    controller.create_network(ctx, "red", driver="fake", subnet="10.9.0.0/24",
                              options={"fake.opt": "x"}, ipam_driver="fakeipam")
    ctr = _container(ctx, "web", "red")
    ctr["HostConfig"]["PortBindings"] = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    with Pipeline("start") as p:
        api.initialize_networking(ctx, ctr, p)
        api.prestart(ctx, ctr, 4242, p)
        p.commit()
    ep = eps.of_container(ctx.store, ctr["Id"])[0]
    assert [c for c, _a in drv.calls[2:]] == ["create_endpoint", "join",
                                               "program_external_connectivity"]
    assert ep.state["published"] == 1           # the state the driver wrote is recorded
    assert ctr["NetworkSettings"]["Ports"]["80/tcp"][0] == {"HostIp": "0.0.0.0",
                                                            "HostPort": "8080"}


def test_a_failed_join_rolls_back_through_the_api(lab, monkeypatch):
    ctx, drv, ipam, _kernel = lab
    controller.create_network(ctx, "red", driver="fake", subnet="10.9.0.0/24",
                              options={"fake.opt": "x"}, ipam_driver="fakeipam")
    ctr = _container(ctx, "web", "red")

    def broken(*a):
        raise OSError("no such device")
    monkeypatch.setattr(drv, "join", broken)
    with pytest.raises(Exception, match="step Join failed"):
        with Pipeline("start") as p:
            api.initialize_networking(ctx, ctr, p)
            api.prestart(ctx, ctr, 4242, p)
    assert [c for c, _a in drv.calls[2:]] == ["create_endpoint", "delete_endpoint"]
    assert ipam.calls[-1] == ("release_address", "10.9.0.2")
    assert eps.of_container(ctx.store, ctr["Id"]) == []


def test_unknown_driver_goes_to_the_lookup_hooks(monkeypatch):
    import sys
    import types
    hook = types.ModuleType("fake_plugins")
    found = object()
    hook.lookup = lambda kind, name: found if (kind, name) == ("driver", "plug") else None
    monkeypatch.setitem(sys.modules, "fake_plugins", hook)
    monkeypatch.setattr(driverapi, "LOOKUPS", ["fake_plugins"])
    try:
        assert driverapi.get_driver("plug") is found
        from minidock.errors import NotFound
        with pytest.raises(NotFound, match='plugin "nope" not found'):
            driverapi.get_driver("nope")
    finally:
        driverapi.unregister("plug")
