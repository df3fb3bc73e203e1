#!/usr/bin/env python3
"""simpleipam: an example Docker IPAM driver plugin (legacy plugin protocol, v1).

Standard library only, one file, HTTP on a unix socket; runs unchanged under Docker
20.10 and minidock. Per Docker's IPAM protocol (libnetwork's ipams/remote/api):

    GetDefaultAddressSpaces  "simple-local" / "simple-global"
    RequestPool     the requested Pool, or the next free /24 of 10.123.0.0/16; the
                    pool ID is "<address space>:<pool>" (opaque to the engine: it has
                    a ":" and a "/"); SubPool (`--ip-range`) limits container addresses
    RequestAddress  the requested Address, or the lowest free one (never the network
                    or broadcast address); the gateway request carries
                    Options {"RequestAddressType": "com.docker.network.gateway"}
                    and gets the pool's first address unless one is asked for
    ReleaseAddress / ReleasePool

`--ipam-opt simpleipam.first=N` skips the first N addresses for containers. With
`--requires-mac` the driver declares RequiresMACAddress and insists on the MAC option.

Like real plugins it decodes strictly (a missing or unknown key is HTTP 500) and keeps
its state in memory. `--record FILE` appends each request (method, headers, raw body)
as a JSON line; each line "Method" in `--control FILE` makes that call fail; `--state FILE` holds
what it keeps in memory after each call.
"""

from __future__ import annotations

import argparse
import http.server
import ipaddress
import json
import os
import socketserver
import threading

SCHEMAS = {
    "Plugin.Activate": None,
    "IpamDriver.GetCapabilities": None,
    "IpamDriver.GetDefaultAddressSpaces": None,
    "IpamDriver.RequestPool": {"AddressSpace", "Pool", "SubPool", "Options", "V6"},
    "IpamDriver.ReleasePool": {"PoolID"},
    "IpamDriver.RequestAddress": {"PoolID", "Address", "Options"},
    "IpamDriver.ReleaseAddress": {"PoolID", "Address"},
}
GATEWAY = {"RequestAddressType": "com.docker.network.gateway"}
MAC_OPTION = "com.docker.network.endpoint.macaddress"


class PluginError(Exception):
    """Answered as HTTP 500 {"Err": message}."""


class Ipam:
    def __init__(self, requires_mac: bool) -> None:
        self.requires_mac = requires_mac
        self.pools: dict[str, dict] = {}    # pool id -> {net, range, first, used}
        self.lock = threading.Lock()

    def snapshot(self) -> dict:
        return {pid: sorted(str(a) for a in p["used"]) for pid, p in self.pools.items()}

    def _pool(self, pool_id: str) -> dict:
        if pool_id not in self.pools:
            raise PluginError(f"pool {pool_id} not found (simpleipam keeps no state "
                              "across restarts)")
        return self.pools[pool_id]

    def activate(self, _body: None) -> dict:
        return {"Implements": ["IpamDriver"]}

    def get_capabilities(self, _body: None) -> dict:
        return {"RequiresMACAddress": self.requires_mac, "RequiresRequestReplay": False}

    def get_default_address_spaces(self, _body: None) -> dict:
        return {"LocalDefaultAddressSpace": "simple-local",
                "GlobalDefaultAddressSpace": "simple-global"}

    def request_pool(self, body: dict) -> dict:
        if body["V6"]:
            raise PluginError("simpleipam does IPv4 only")
        taken = {p["net"] for p in self.pools.values()}
        if body["Pool"]:
            net = ipaddress.ip_network(body["Pool"])
            if any(net.overlaps(t) for t in taken):
                raise PluginError(f"pool {net} overlaps a pool in use")
        else:
            free = (n for n in ipaddress.ip_network("10.123.0.0/16").subnets(new_prefix=24)
                    if n not in taken)
            net = next(free, None)
            if net is None:
                raise PluginError("no free pool")
        rng = ipaddress.ip_network(body["SubPool"]) if body["SubPool"] else net
        first = int((body["Options"] or {}).get("simpleipam.first", "0"))
        pool_id = f"{body['AddressSpace']}:{net}"
        self.pools[pool_id] = {"net": net, "range": rng, "first": first, "used": set()}
        return {"PoolID": pool_id, "Pool": str(net), "Data": {}}

    def release_pool(self, body: dict) -> dict:
        self._pool(body["PoolID"])
        del self.pools[body["PoolID"]]
        return {}

    def request_address(self, body: dict) -> dict:
        pool = self._pool(body["PoolID"])
        opts = body["Options"] or {}
        net = pool["net"]
        if self.requires_mac and opts != GATEWAY and MAC_OPTION not in opts:
            raise PluginError("the endpoint's MAC address is required")
        if body["Address"]:
            addr = ipaddress.ip_address(body["Address"])
            if addr not in net:
                raise PluginError(f"{addr} is not in pool {net}")
            if addr in pool["used"]:
                raise PluginError(f"address {addr} already in use")
        elif opts == GATEWAY:
            addr = net.network_address + 1
        else:
            hosts = [a for a in pool["range"].hosts() if a in net]
            addr = next((a for a in hosts[pool["first"]:] if a not in pool["used"]), None)
            if addr is None:
                raise PluginError(f"no free address in {net}")
        pool["used"].add(addr)
        return {"Address": f"{addr}/{net.prefixlen}", "Data": {}}

    def release_address(self, body: dict) -> dict:
        pool = self._pool(body["PoolID"])
        pool["used"].discard(ipaddress.ip_address(body["Address"]))
        return {}


ROUTES = {
    "Plugin.Activate": Ipam.activate,
    "IpamDriver.GetCapabilities": Ipam.get_capabilities,
    "IpamDriver.GetDefaultAddressSpaces": Ipam.get_default_address_spaces,
    "IpamDriver.RequestPool": Ipam.request_pool,
    "IpamDriver.ReleasePool": Ipam.release_pool,
    "IpamDriver.RequestAddress": Ipam.request_address,
    "IpamDriver.ReleaseAddress": Ipam.release_address,
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
    ipam: Ipam
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
            with self.ipam.lock:
                answer = ROUTES[method](self.ipam, body)
        except (PluginError, KeyError, TypeError, ValueError) as err:
            return self._reply(500, {"Err": str(err)})
        self._reply(200, answer)
        self._dump()

    def _dump(self) -> None:
        """Write what the plugin holds now to --state (tests check it is empty)."""
        if self.state:
            with self.ipam.lock, open(self.state + ".tmp", "w") as fh:
                json.dump(self.ipam.snapshot(), fh, default=str)
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
    ap = argparse.ArgumentParser(description="simpleipam: an example IPAM driver plugin")
    ap.add_argument("--sock", default="/run/docker/plugins/simpleipam.sock")
    ap.add_argument("--record", help="append every request as a JSON line to this file")
    ap.add_argument("--control", help="a file of method names to fail (read per request)")
    ap.add_argument("--state", help="write the plugin's state (JSON) here after each call")
    ap.add_argument("--requires-mac", action="store_true")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.sock), exist_ok=True)
    if os.path.exists(args.sock):
        os.unlink(args.sock)
    Handler.ipam, Handler.record, Handler.control = Ipam(args.requires_mac), args.record, args.control
    Handler.state = args.state
    with Server(args.sock, Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
