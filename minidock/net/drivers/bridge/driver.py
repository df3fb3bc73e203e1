"""The bridge driver: a Linux bridge per network, a veth pair per endpoint, NAT and
filter rules in the MINIDOCK chains (Docker's bridge driver, with minidock's names).

    init             ensure_chains (+ FORWARD policy DROP when it turns ip_forward on)
                     -> ip_forward -> driver_rules
    create_network   the article's set-up queue (setup.py, ipv6.py), each a named step:
                     setupDevice -> setupDefaultSysctl -> setupBridgeIPv4 -> setupBridgeIPv6
                     -> setupIPv6Forwarding -> setupLoopbackAddressing
                     -> setupIPTables -> setupGatewayIPv4 -> setupGatewayIPv6
                     -> setupNetworkIsolation -> setupBridgeNetFiltering -> setupDeviceUp
    create_endpoint  the host end's name (veth<7 hex>); nothing in the kernel yet
    join             anti-spoofing guard on the port (antispoof.py), then the veth
                     pair with the container end created *inside* the sandbox under
                     its final name (JoinInfo.in_sandbox: the fast path)
    program_external_connectivity   port rules (one batch) + userland proxy

Its state (driverapi): per network {"bridge", "mtu", "icc", "masquerade", "rules"},
per endpoint {"host_veth", "rules"}. Options are Docker's (`com.docker.network.bridge.*`,
`com.docker.network.driver.mtu`), parsed before the first side effect.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Internal, InvalidArgument
from minidock.net.driverapi import Capability, JoinInfo
from minidock.net.drivers.bridge import ipv6

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.net.driverapi import EndpointInfo, NetworkInfo, SandboxInfo
    from minidock.pipeline import Pipeline

OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_DEFAULT = "com.docker.network.bridge.default_bridge"


def network_config(nw: "NetworkInfo") -> dict[str, Any]:
    """The bridge's settings from the network's options (validated: InvalidArgument)."""
    opts = nw.options
    bridge = opts.get(OPT_BRIDGE_NAME) or f"br-{nw.id[:12]}"
    if len(bridge) > 15:
        raise InvalidArgument(f"invalid bridge name {bridge}: longer than 15 characters")
    return {"bridge": bridge, "mtu": _int_opt(opts, OPT_MTU, 1500),
            "icc": _bool_opt(opts, OPT_ICC), "masquerade": _bool_opt(opts, OPT_MASQ)}


def _int_opt(options: dict[str, str], key: str, default: int) -> int:
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError as err:
        raise InvalidArgument(f"invalid value for {key}: {options[key]}") from err
    if value and not 68 <= value <= 65535:
        raise InvalidArgument(f"invalid MTU number: {value}")
    return value or default


def _bool_opt(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "true").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid value for {key}: {options[key]}")
    return value in ("true", "1")


def _v4(nw: "NetworkInfo") -> tuple[IPv4Network, str]:
    """The network's IPv4 subnet and gateway address."""
    data = nw.ipv4_data[0]
    return IPv4Network(data.pool), data.gateway.split("/", 1)[0]


class BridgeDriver:
    name = "bridge"
    capability = Capability(external_connectivity=True)

    # -- driver-wide ---------------------------------------------------------------
    def init(self, ctx: "Context", p: "Pipeline") -> None:
        """Chains, driver rules, ip_forward: once per boot (idempotent)."""
        from minidock.net.drivers.bridge import rules
        from minidock.net.firewall import iptables
        from minidock.net.firewall.rules import CHAINS
        from minidock.net.kernel.sysctl import PROC_NET, read as read_sysctl
        from minidock.net.kernel.sysctl import write as write_sysctl
        cfg = ctx.config
        policies = {}
        fwd_path = f"{PROC_NET}/ipv4/ip_forward"
        turn_on = cfg.ip_forward and read_sysctl(fwd_path) == "0"
        if turn_on and cfg.iptables:
            policies[("filter", "FORWARD")] = "DROP"
        if cfg.iptables:
            saved = iptables.save()
            p.step("setupIPChains", iptables.ensure_chains, CHAINS, saved, policies)
            p.done("setupIPChains")
            want = rules.driver_rules(cfg.userland_proxy)
            stale = [r for r in rules.driver_rules(not cfg.userland_proxy) if r not in want]
            p.step("remove_stale_driver_rules", iptables.remove,
                   iptables.present(stale, saved))
            added = p.step("driver_rules", iptables.ensure, want, saved)
            p.undo("driver_rules", iptables.remove, added)
        if cfg.ip6tables_on:
            self._init_ip6tables(cfg, p)
        if turn_on:
            p.step("setupIPForwarding", write_sysctl, fwd_path, "1")
            p.done("setupIPForwarding")

    def _init_ip6tables(self, cfg: Any, p: "Pipeline") -> None:
        """ip6tables: minidock's chains (no MINIDOCK-USER, as Docker) and driver rules."""
        from minidock.net.drivers.bridge import rules
        from minidock.net.firewall import iptables
        from minidock.net.firewall.rules import CHAINS6
        saved = iptables.save(6)
        p.step("ensure_chains6", iptables.ensure_chains, CHAINS6, saved, None, 6)
        p.done("ensure_chains6")
        want = rules.driver_rules(cfg.userland_proxy, family=6)
        stale = [r for r in rules.driver_rules(not cfg.userland_proxy, 6) if r not in want]
        p.step("remove_stale_driver_rules6", iptables.remove, iptables.present(stale, saved), 6)
        added = p.step("driver_rules6", iptables.ensure, want, saved, 6)
        p.undo("driver_rules6", iptables.remove, added, 6)

    # -- networks ------------------------------------------------------------------
    def create_network(self, ctx: "Context", nw: "NetworkInfo", p: "Pipeline") -> None:
        """Make (or verify) the bridge and its rules. Given the state of an earlier
        create (a reboot, changed daemon options), what it recorded and no longer
        wants is removed first."""
        from minidock.net.drivers.bridge import setup
        from minidock.net.kernel.netlink import Netlink
        cfg = ctx.config
        conf = network_config(nw)
        subnet, gateway = _v4(nw)
        self._drop_stale(ctx, nw, conf)
        with Netlink() as nl:
            created = p.step("setupDevice", setup.ensure_bridge, nl, conf["bridge"], conf["mtu"])
            if created:
                p.undo("setupDevice", setup.nl_del_link, conf["bridge"])
            p.step("setupDefaultSysctl", ipv6.bridge_sysctls, conf["bridge"], nw.enable_ipv6)
            p.done("setupDefaultSysctl")
            p.step("setupBridgeIPv4", setup.ensure_address, nl, conf["bridge"], gateway,
                   subnet.prefixlen)
            p.done("setupBridgeIPv4")
            p.step("setupBridgeIPv6", ipv6.setup_ipv6, nl, conf["bridge"], nw)
            p.done("setupBridgeIPv6")
            p.step("setupIPv6Forwarding", ipv6.setup_ipv6_forwarding, nw, cfg)
            p.done("setupIPv6Forwarding")
            p.step("setupLoopbackAddressing", setup.setup_loopback_addressing,
                   conf["bridge"], cfg.userland_proxy)
            applied = self._setup_iptables(ctx, nw, conf, p)
            v6 = ipv6.v6(nw)
            p.step("setupGatewayIPv4", ipv6.check_gateway,
                   ipv6.default_gateway(nw.ipv4_data, "DefaultGatewayIPv4"), subnet)
            p.step("setupGatewayIPv6", ipv6.check_gateway,
                   ipv6.default_gateway(nw.ipv6_data, "DefaultGatewayIPv6"),
                   v6[0] if v6 else None)
            applied += self._setup_isolation(ctx, nw, conf, p)
            if cfg.iptables:
                p.step("setupBridgeNetFiltering", setup.ensure_bridge_netfilter,
                       nw.enable_ipv6)
            p.step("setupDeviceUp", setup.link_up, nl, conf["bridge"])
            p.done("setupDeviceUp")
        from minidock.net.firewall.iptables import to_data
        nw.state = dict(conf, rules=to_data(applied),
                        rules6=to_data(ipv6.rules6(nw, conf, cfg)))

    def _drop_stale(self, ctx: "Context", nw: "NetworkInfo", conf: dict[str, Any]) -> None:
        old = nw.state
        if not old:
            return
        from minidock.net.drivers.bridge import setup
        from minidock.net.firewall import iptables
        wanted = self._planned_rules(ctx, nw, conf)
        if old.get("rules") and ctx.config.iptables and \
                iptables.from_data(old["rules"]) != wanted:
            iptables.remove(iptables.from_data(old["rules"]))
        old6 = iptables.from_data(old.get("rules6") or [])
        if old6 and old6 != ipv6.rules6(nw, conf, ctx.config):
            iptables.remove(old6, 6)
        if old.get("bridge") and old["bridge"] != conf["bridge"] and \
                nw.options.get(OPT_DEFAULT) == "true" and not ctx.config.bridge:
            setup.nl_del_link(old["bridge"])

    def _planned_rules(self, ctx: "Context", nw: "NetworkInfo", conf: dict[str, Any]
                       ) -> list[Any]:
        """The rules of the network (pure): what create_network applies."""
        from minidock.net.drivers.bridge import rules
        cfg = ctx.config
        if not cfg.iptables or not nw.ipv4_data:
            return []
        subnet, _gw = _v4(nw)
        br = conf["bridge"]
        return rules.network_rules(br, subnet, icc=conf["icc"],
                                   masquerade=conf["masquerade"] and cfg.masquerade,
                                   internal=nw.internal, userland_proxy=cfg.userland_proxy) + \
            rules.isolation_rules(br, subnet, nw.internal)

    def _setup_iptables(self, ctx: "Context", nw: "NetworkInfo", conf: dict[str, Any],
                        p: "Pipeline") -> list[Any]:
        """The network's FORWARD/NAT rules, both families (setupIPTables)."""
        return self._apply_rules(ctx, nw, conf, p, "setupIPTables", isolation=False)

    def _setup_isolation(self, ctx: "Context", nw: "NetworkInfo", conf: dict[str, Any],
                         p: "Pipeline") -> list[Any]:
        """The network's isolation rules, both families (setupNetworkIsolation)."""
        return self._apply_rules(ctx, nw, conf, p, "setupNetworkIsolation", isolation=True)

    def _apply_rules(self, ctx: "Context", nw: "NetworkInfo", conf: dict[str, Any],
                     p: "Pipeline", step: str, isolation: bool) -> list[Any]:
        """One queue step (traced even with nothing to add) for the IPv4 rules, and its
        ip6tables twin (`<step>6`) when there are IPv6 rules."""
        from minidock.net.firewall import iptables
        from minidock.net.firewall.rules import ISOLATION_1, ISOLATION_2

        def pick(r: Any) -> bool:
            return (r.chain in (ISOLATION_1, ISOLATION_2)) == isolation
        wanted = [r for r in self._planned_rules(ctx, nw, conf) if pick(r)]
        wanted6 = [r for r in ipv6.rules6(nw, conf, ctx.config) if pick(r)]
        added = p.step(step, iptables.ensure, wanted)
        p.undo(step, iptables.remove, added)
        if wanted6:
            added6 = p.step(step + "6", iptables.ensure, wanted6, None, 6)
            p.undo(step + "6", iptables.remove, added6, 6)
        return wanted

    def delete_network(self, ctx: "Context", nw: "NetworkInfo") -> None:
        """Remove the rules, then the bridge (idempotent; a network whose create died
        has no recorded rules: the ones it would have made are removed)."""
        from minidock.net.drivers.bridge import setup
        from minidock.net.firewall import iptables
        conf = self._conf_lenient(nw)
        rules = iptables.from_data(nw.state.get("rules") or []) or \
            self._planned_rules(ctx, nw, conf)
        if rules and ctx.config.iptables:
            iptables.remove(rules)
        rules6 = iptables.from_data(nw.state.get("rules6") or []) or \
            ipv6.rules6(nw, conf, ctx.config)
        if rules6:
            iptables.remove(rules6, 6)
        setup.nl_del_link(conf["bridge"])

    def _conf_lenient(self, nw: "NetworkInfo") -> dict[str, Any]:
        if nw.state.get("bridge"):
            return nw.state
        try:
            return network_config(nw)
        except InvalidArgument:
            return {"bridge": nw.options.get(OPT_BRIDGE_NAME) or f"br-{nw.id[:12]}",
                    "mtu": 1500, "icc": True, "masquerade": True}

    # -- endpoints -----------------------------------------------------------------
    def create_endpoint(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo",
                        p: "Pipeline") -> None:
        """Name the host end of the veth; the pair is made at join."""
        import os
        ep.state = {"host_veth": "veth" + os.urandom(4).hex()[:7]}

    def delete_endpoint(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> None:
        """The veth is gone (the kernel removes it with the sandbox's netns: wait for
        that, event-driven, deleting it after 0.5 s), then its guard is dropped (off
        the waiting CLI's path when the caller defers kernel cleanup)."""
        veth = ep.state.get("host_veth")
        if not veth:
            return
        from minidock.net.kernel.netlink import LinkWatch
        from minidock.pipeline import later, later_wait
        watch = LinkWatch()

        def wait() -> None:
            try:
                watch.wait([veth])
            finally:
                watch.close()
        ip, mac, ip6 = ep.ip, ep.mac, ep.address_v6.split("/", 1)[0]
        if later_wait(wait):        # rm: the wait overlaps the rest of the removal
            later(lambda: _unguard(veth, ip, mac, ip6))
            return
        wait()
        later(lambda: _unguard(veth, ip, mac, ip6))

    def preload(self) -> None:
        """Import what join and delete_endpoint import (net.api.preload)."""
        from minidock.net.drivers.bridge import antispoof  # noqa: F401
        from minidock.net.kernel import netlink, nftnl  # noqa: F401

    def join(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo", sb: "SandboxInfo",
             p: "Pipeline") -> JoinInfo:
        """The veth pair: host end on the bridge, container end made inside the sandbox."""
        from minidock.net.drivers.bridge import antispoof
        from minidock.net.kernel.netlink import Netlink
        conf = self._conf_lenient(nw)
        veth = ep.state["host_veth"]
        with Netlink() as nl:
            br = nl.link_get(conf["bridge"])
            if br is None:
                raise Internal(f"bridge {conf['bridge']} of network {nw.name} does not exist")
            ip6 = ep.address_v6.split("/", 1)[0]
            antispoof.guard(veth, ep.ip, ep.mac, ip6)   # before the port exists: no window
            try:
                nl.veth_add(veth, ep.ifname, mtu=conf["mtu"], master=br.index, up=True,
                            peer_netns_fd=sb.fd, peer_mac=ep.mac)
            except BaseException:
                antispoof.unguard(veth, ep.ip, ep.mac, ip6)
                raise
        ipv6.port_sysctls(veth)
        v6 = ipv6.v6(nw)
        gw6 = (ipv6.default_gateway(nw.ipv6_data, "DefaultGatewayIPv6") or v6[1]) \
            if v6 and ip6 else ""
        return JoinInfo(ep.ifname, in_sandbox=True, gateway_v6=gw6,
                        gateway=ipv6.default_gateway(nw.ipv4_data, "DefaultGatewayIPv4")
                        or _v4(nw)[1])

    def leave(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> None:
        """Remove the endpoint's veth (the sandbox outlives the endpoint)."""
        if ep.state.get("host_veth"):
            from minidock.net.drivers.bridge import setup
            setup.nl_del_link(ep.state["host_veth"])

    def program_external_connectivity(self, ctx: "Context", nw: "NetworkInfo",
                                      ep: "EndpointInfo", p: "Pipeline") -> None:
        """Port rules in one batch, then the userland proxy; the rules go in ep.state."""
        if not ep.ports:
            return
        from minidock.net.firewall import iptables      # subprocess: only with ports
        wanted = self._port_rules(ctx, nw, ep)
        wanted6 = ipv6.port_rules6(self._conf_lenient(nw)["bridge"], ep, ctx.config)
        if wanted:
            iptables.apply(wanted)
        try:
            iptables.apply(wanted6, 6)
            _publish(ctx, ep, serve=ctx.config.userland_proxy)
        except BaseException:
            iptables.remove(wanted)
            iptables.remove(wanted6, 6)
            raise
        ep.state = dict(ep.state, rules=iptables.to_data(wanted),
                        rules6=iptables.to_data(wanted6))

    def _port_rules(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> list[Any]:
        from minidock.net.drivers.bridge import rules
        cfg = ctx.config
        if not cfg.iptables:
            return []
        bridge = self._conf_lenient(nw)["bridge"]
        out: list[Any] = []
        for b in ep.ports:
            if ":" in b.host_ip:
                continue            # an IPv6 host address: ip6tables only
            out += rules.port_rules(bridge, IPv4Address(ep.ip), b.proto, b.host_ip,
                                    b.host_port, b.container_port, cfg.userland_proxy)
        return out

    def revoke_external_connectivity(self, ctx: "Context", nw: "NetworkInfo",
                                     ep: "EndpointInfo") -> None:
        """Proxy forwards, then the port rules (those recorded; the planned ones when
        a start was killed between applying and recording them)."""
        if not ep.ports:
            return
        from minidock.net.ports import proxy
        proxy.unpublish(ctx, ep.id)
        from minidock.net.firewall import iptables
        if ctx.config.iptables:
            if "rules" in ep.state:
                iptables.remove(iptables.from_data(ep.state["rules"]))
            else:
                iptables.remove(self._port_rules(ctx, nw, ep))
        bridge = self._conf_lenient(nw)["bridge"]
        rules6 = iptables.from_data(ep.state["rules6"]) if "rules6" in ep.state else \
            ipv6.port_rules6(bridge, ep, ctx.config)
        iptables.remove(rules6, 6)

    # -- repair --------------------------------------------------------------------
    def expected_rules(self, ctx: "Context", nw: "NetworkInfo | None",
                       endpoints: list["EndpointInfo"]) -> tuple[list[Any], list[Any]]:
        from minidock.net.drivers.bridge import rules
        from minidock.net.firewall import iptables
        if nw is None:
            return list(rules.driver_rules(ctx.config.userland_proxy)), []
        per: list[Any] = []
        for ep in endpoints:
            per += iptables.from_data(ep.state.get("rules") or [])
        return iptables.from_data(nw.state.get("rules") or []), per

    def sweep(self, ctx: "Context", networks: list["NetworkInfo"],
              endpoints: list["EndpointInfo"]) -> list[str]:
        """Host ends on this driver's bridges that no endpoint names."""
        from minidock.net.kernel.netlink import Netlink
        bridges = {self._conf_lenient(n)["bridge"] for n in networks}
        named = {e.state.get("host_veth") for e in endpoints}
        out = []
        with Netlink() as nl:
            links = nl.link_list()
            masters = {ln.index for ln in links if ln.name in bridges}
            for ln in links:
                if ln.kind == "veth" and ln.master in masters and ln.name not in named:
                    nl.link_del_name(ln.name)
                    out.append(f"veth {ln.name}: no endpoint")
        return out


def _unguard(veth: str, ip: str, mac: str, ip6: str = "") -> None:
    """The port's anti-spoofing elements out (its import too is off the waiting path)."""
    from minidock.net.drivers.bridge import antispoof
    antispoof.unguard(veth, ip, mac, ip6)


def _publish(ctx: "Context", ep: "EndpointInfo", serve: bool) -> None:
    from minidock.net.ports import proxy
    from minidock.net.ports.portmap import has_ipv6
    v6 = has_ipv6()
    fwd = []
    for b in ep.ports:
        if b.proto not in ("tcp", "udp"):
            continue
        fwd.append(b._replace(container_ip=ep.ip))
        if v6 and b.host_ip == "0.0.0.0":   # Docker's second binding, on "::"
            fwd.append(b._replace(host_ip="::", container_ip=ep.ip))
    if fwd:
        proxy.publish(ctx, ep.id, fwd, serve=serve)


DRIVER = BridgeDriver()
