#!/usr/bin/env python3
"""vethnet: an example Docker network driver plugin (legacy plugin protocol, v1).

It is what a third party would write for Docker, and runs unchanged under Docker
20.10 and minidock: standard library only, one file, serving HTTP on a unix socket.

What it does, per Docker's network driver protocol (libnetwork's drivers/remote/api):

    CreateNetwork   a Linux bridge `vn-<network id[:12]>` holding the gateway address
                    Docker or minidock gives in IPv4Data[0].Gateway
    CreateEndpoint  remembers the endpoint; if the request carries no MAC, answers one
                    (02:76 + the IPv4 bytes), as a driver may
    Join            a veth pair: `vnh<eid[:7]>` on the bridge, `vnc<eid[:7]>` handed
                    to the engine as InterfaceName.SrcName (DstPrefix "eth"), which
                    moves it into the container and names it eth<N>; answers the
                    gateway and, with `-o vethnet.route=CIDR[,CIDR]`, static routes
    Leave           deletes the veth pair (if the engine gave it back)
    DeleteEndpoint / DeleteNetwork   forget / delete the bridge

Like real plugins it decodes requests strictly: a body with a key missing or a key it
does not know is refused with HTTP 500 and {"Err": ...}. It keeps its state in memory
only: restarted, it has forgotten every network (and says so in its errors).

For tests it can record every request (method, headers, raw body) as a JSON line to
`--record FILE`, and fail on demand: each line "Method" in `--control FILE` (read on
every request) makes that call answer {"Err": "injected failure"} ("Method die": the plugin exits
without answering, as if killed mid-call); `--state FILE` holds what it
keeps in memory after each call.

    vethnet.py --sock /run/docker/plugins/vethnet.sock [--record calls.jsonl]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import socketserver
import subprocess
import threading

NETWORK_KEYS = {"NetworkID", "Options", "IPv4Data", "IPv6Data"}
SCHEMAS = {  # method -> the exact keys of its request body (None: no body)
    "Plugin.Activate": None,
    "NetworkDriver.GetCapabilities": None,
    "NetworkDriver.CreateNetwork": NETWORK_KEYS,
    "NetworkDriver.DeleteNetwork": {"NetworkID"},
    "NetworkDriver.CreateEndpoint": {"NetworkID", "EndpointID", "Interface", "Options"},
    "NetworkDriver.DeleteEndpoint": {"NetworkID", "EndpointID"},
    "NetworkDriver.EndpointOperInfo": {"NetworkID", "EndpointID"},
    "NetworkDriver.Join": {"NetworkID", "EndpointID", "SandboxKey", "Options"},
    "NetworkDriver.Leave": {"NetworkID", "EndpointID"},
    "NetworkDriver.ProgramExternalConnectivity": {"NetworkID", "EndpointID", "Options"},
    "NetworkDriver.RevokeExternalConnectivity": {"NetworkID", "EndpointID"},
    "NetworkDriver.DiscoverNew": {"DiscoveryType", "DiscoveryData"},
    "NetworkDriver.DiscoverDelete": {"DiscoveryType", "DiscoveryData"},
}
IPAM_DATA_KEYS = {"AddressSpace", "Pool", "Gateway", "AuxAddresses"}
INTERFACE_KEYS = {"Address", "AddressIPv6", "MacAddress"}


class PluginError(Exception):
    """Answered as HTTP 500 {"Err": message}."""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def forward_rule(op: str, bridge: str) -> None:
    """Docker hosts set FORWARD's policy to DROP: let the bridge's own traffic pass."""
    rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
    subprocess.run(["iptables", "-w", op, *rule], capture_output=True)


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


class Driver:
    """The driver's state (in memory) and one method per protocol call."""

    def __init__(self) -> None:
        self.networks: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.lock = threading.Lock()

    def snapshot(self) -> dict:
        return {"networks": self.networks, "endpoints": self.endpoints}

    def _network(self, nid: str) -> dict:
        if nid not in self.networks:
            raise PluginError(f"network {nid} not found (vethnet keeps no state across restarts)")
        return self.networks[nid]

    def _endpoint(self, eid: str) -> dict:
        if eid not in self.endpoints:
            raise PluginError(f"endpoint {eid} not found")
        return self.endpoints[eid]

    def activate(self, _body: None) -> dict:
        return {"Implements": ["NetworkDriver"]}

    def get_capabilities(self, _body: None) -> dict:
        return {"Scope": "local", "ConnectivityScope": "local"}

    def create_network(self, body: dict) -> dict:
        if not body["IPv4Data"]:
            raise PluginError("vethnet needs an IPv4 pool")
        for item in body["IPv4Data"] + (body["IPv6Data"] or []):
            extra = set(item) - IPAM_DATA_KEYS
            if extra or "AddressSpace" not in item:
                raise PluginError(f"bad IP data {item}")
        generic = body["Options"].get("com.docker.network.generic") or {}
        bridge = "vn-" + body["NetworkID"][:12]
        gateway = body["IPv4Data"][0].get("Gateway", "")
        ip("link", "add", bridge, "type", "bridge")
        if gateway:
            ip("addr", "add", gateway, "dev", bridge)
        ip("link", "set", bridge, "up")
        forward_rule("-I", bridge)
        routes = [r for r in generic.get("vethnet.route", "").split(",") if r]
        self.networks[body["NetworkID"]] = {"bridge": bridge, "gateway": gateway,
                                            "routes": routes,
                                            "prefix": generic.get("vethnet.prefix", "eth")}
        return {}

    def delete_network(self, body: dict) -> dict:
        net = self._network(body["NetworkID"])
        forward_rule("-D", net["bridge"])
        if link_exists(net["bridge"]):
            ip("link", "del", net["bridge"])
        del self.networks[body["NetworkID"]]
        return {}

    def create_endpoint(self, body: dict) -> dict:
        self._network(body["NetworkID"])
        iface = body["Interface"]
        if set(iface) != INTERFACE_KEYS:
            raise PluginError(f"bad Interface {iface}")
        self.endpoints[body["EndpointID"]] = {"network": body["NetworkID"],
                                              "address": iface["Address"]}
        if iface["MacAddress"] or not iface["Address"]:
            return {}
        octets = iface["Address"].split("/")[0].split(".")
        mac = "02:76:" + ":".join(f"{int(o):02x}" for o in octets)
        return {"Interface": {"MacAddress": mac}}

    def delete_endpoint(self, body: dict) -> dict:
        self._endpoint(body["EndpointID"])
        del self.endpoints[body["EndpointID"]]
        return {}

    def endpoint_oper_info(self, body: dict) -> dict:
        ep = self._endpoint(body["EndpointID"])
        return {"Value": {"address": ep["address"]}}

    def join(self, body: dict) -> dict:
        net = self._network(body["NetworkID"])
        self._endpoint(body["EndpointID"])
        host, peer = "vnh" + body["EndpointID"][:7], "vnc" + body["EndpointID"][:7]
        ip("link", "add", host, "type", "veth", "peer", "name", peer)
        ip("link", "set", host, "master", net["bridge"], "up")
        gateway = net["gateway"].split("/")[0]
        routes = [{"Destination": r, "RouteType": 0, "NextHop": gateway} for r in net["routes"]]
        return {"InterfaceName": {"SrcName": peer, "DstPrefix": net["prefix"]},
                "Gateway": gateway, "StaticRoutes": routes}

    def leave(self, body: dict) -> dict:
        self._network(body["NetworkID"])
        self._endpoint(body["EndpointID"])
        host = "vnh" + body["EndpointID"][:7]
        if link_exists(host):
            ip("link", "del", host)
        return {}

    def external_connectivity(self, body: dict) -> dict:
        self._endpoint(body["EndpointID"])
        return {}

    def discover(self, _body: dict) -> dict:
        return {}


ROUTES = {
    "Plugin.Activate": Driver.activate,
    "NetworkDriver.GetCapabilities": Driver.get_capabilities,
    "NetworkDriver.CreateNetwork": Driver.create_network,
    "NetworkDriver.DeleteNetwork": Driver.delete_network,
    "NetworkDriver.CreateEndpoint": Driver.create_endpoint,
    "NetworkDriver.DeleteEndpoint": Driver.delete_endpoint,
    "NetworkDriver.EndpointOperInfo": Driver.endpoint_oper_info,
    "NetworkDriver.Join": Driver.join,
    "NetworkDriver.Leave": Driver.leave,
    "NetworkDriver.ProgramExternalConnectivity": Driver.external_connectivity,
    "NetworkDriver.RevokeExternalConnectivity": Driver.external_connectivity,
    "NetworkDriver.DiscoverNew": Driver.discover,
    "NetworkDriver.DiscoverDelete": Driver.discover,
}


def decode(method: str, raw: bytes) -> dict | None:
    """The request body, strictly: exactly the keys Docker sends for `method`."""
    keys = SCHEMAS[method]
    if keys is None:
        if raw.strip():
            raise PluginError(f"{method} takes no body")
        return None
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise PluginError(f"bad JSON: {err}") from None
    if not isinstance(body, dict) or set(body) != keys:
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise PluginError(f"{method}: want keys {sorted(keys)}, got {got}")
    return body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    driver: Driver
    record: str | None = None
    control: str | None = None
    state: str | None = None

    def do_POST(self) -> None:
        method = self.path.lstrip("/")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._record(method, raw)
        if method not in ROUTES:
            return self._reply(404, {"Err": f"{method} not implemented"})
        try:
            action = self._injected().get(method)
            if action == "die":
                os._exit(1)             # killed mid-call: no answer at all
            if action is not None:
                raise PluginError("injected failure")
            body = decode(method, raw)
            with self.driver.lock:
                answer = ROUTES[method](self.driver, body)
        except (PluginError, subprocess.CalledProcessError, KeyError, TypeError) as err:
            detail = getattr(err, "stderr", "") or str(err)
            return self._reply(500, {"Err": str(detail).strip()})
        self._reply(200, answer)
        self._dump()

    def _dump(self) -> None:
        """Write what the plugin holds now to --state (tests check it is empty)."""
        if self.state:
            with self.driver.lock, open(self.state + ".tmp", "w") as fh:
                json.dump(self.driver.snapshot(), fh, default=str)
            os.replace(self.state + ".tmp", self.state)

    def _injected(self) -> dict[str, str]:
        """Method -> "fail" or "die", from the --control file."""
        if not self.control or not os.path.exists(self.control):
            return {}
        with open(self.control) as fh:
            lines = [line.split() for line in fh if line.strip()]
        return {words[0]: (words[1] if len(words) > 1 else "fail") for words in lines}

    def _record(self, method: str, raw: bytes) -> None:
        if self.record:
            entry = {"plugin": os.path.basename(self.server.server_address)[:-5],
                     "method": method, "headers": dict(self.headers.items()),
                     "body": raw.decode("utf-8", "replace")}
            with open(self.record, "a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def _reply(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main() -> None:
    ap = argparse.ArgumentParser(description="vethnet: an example network driver plugin")
    ap.add_argument("--sock", default="/run/docker/plugins/vethnet.sock")
    ap.add_argument("--record", help="append every request as a JSON line to this file")
    ap.add_argument("--control", help="a file of method names to fail (read per request)")
    ap.add_argument("--state", help="write the plugin's state (JSON) here after each call")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.sock), exist_ok=True)
    if os.path.exists(args.sock):
        os.unlink(args.sock)
    Handler.driver, Handler.record, Handler.control = Driver(), args.record, args.control
    Handler.state = args.state
    with Server(args.sock, Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
