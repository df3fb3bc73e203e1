"""The network driver protocol (libnetwork's driverapi), and how the controller finds
a driver without importing any concrete one.

Every verb has its named inverse:

    init_driver                      (driver-wide setup, once per boot; idempotent)
    create_network / delete_network
    join / leave                     (the endpoint's interface in the sandbox)
    program_external_connectivity / revoke_external_connectivity   (published ports)

Endpoints' *records* (address, MAC, names) are the controller's; a driver does the
kernel work. The bridge driver creates the veth pair at `join`, when the sandbox's netns
exists, so that the container end is created directly inside it (one netlink message,
no move, no rename): with a daemonless start, the netns only exists once the
container's first process does (the prestart hook).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from minidock.errors import NotFound

if TYPE_CHECKING:
    from minidock.net.endpoint import Endpoint
    from minidock.net.network import Net
    from minidock.net.sandbox import Plumbing
    from minidock.pipeline import Pipeline

DRIVERS = {"bridge": "minidock.net.drivers.bridge", "host": "minidock.net.drivers.host",
           "null": "minidock.net.drivers.null", "overlay": "minidock.net.drivers.overlay"}


class Driver(Protocol):
    name: str
    creatable: bool        # may users `network create -d <name>`?
    has_sandbox_iface: bool

    def init_driver(self, ctx: Any, p: "Pipeline") -> None: ...

    def create_network(self, ctx: Any, net: "Net", p: "Pipeline") -> list[Any]:
        """Make the kernel objects of `net`; returns the iptables rules it applied."""

    def delete_network(self, ctx: Any, net: "Net", rules: list[Any]) -> None: ...

    def join(self, ctx: Any, net: "Net", ep: "Endpoint", pl: "Plumbing",
             gateway: bool) -> None: ...

    def leave(self, ctx: Any, net: "Net", ep: "Endpoint") -> None: ...

    def program_external_connectivity(self, ctx: Any, net: "Net", ep: "Endpoint"
                                      ) -> list[Any]: ...

    def revoke_external_connectivity(self, ctx: Any, net: "Net", ep: "Endpoint") -> None: ...


def get_driver(name: str) -> Driver:
    """The driver called `name` (imported on first use)."""
    module = DRIVERS.get(name)
    if module is None:
        raise NotFound(f'plugin "{name}" not found')
    return importlib.import_module(module).DRIVER  # type: ignore[no-any-return]
