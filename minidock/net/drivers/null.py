"""The `null` driver: the predefined `none` network. A container on it has its own
netns with only `lo`; there is nothing to create, join or publish, and no addresses."""

from __future__ import annotations

from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import Forbidden
from minidock.net.driverapi import Capability, JoinInfo

if TYPE_CHECKING:
    from minidock.context import Context
    from minidock.net.driverapi import EndpointInfo, NetworkInfo, SandboxInfo
    from minidock.pipeline import Pipeline


class NullDriver:
    name = "null"
    capability = Capability(needs_addresses=False, creatable=False)

    def init(self, ctx: "Context", p: "Pipeline") -> None:
        return None

    def create_network(self, ctx: "Context", nw: "NetworkInfo", p: "Pipeline") -> None:
        return None

    def delete_network(self, ctx: "Context", nw: "NetworkInfo") -> None:
        return None

    def create_endpoint(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo",
                        p: "Pipeline") -> None:
        return None

    def delete_endpoint(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> None:
        return None

    def join(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo", sb: "SandboxInfo",
             p: "Pipeline") -> JoinInfo:
        raise Forbidden(f"network {nw.name} has no endpoints to join")

    def leave(self, ctx: "Context", nw: "NetworkInfo", ep: "EndpointInfo") -> None:
        return None

    def program_external_connectivity(self, ctx: "Context", nw: "NetworkInfo",
                                      ep: "EndpointInfo", p: "Pipeline") -> None:
        return None

    def revoke_external_connectivity(self, ctx: "Context", nw: "NetworkInfo",
                                     ep: "EndpointInfo") -> None:
        return None

    def expected_rules(self, ctx: "Context", nw: "NetworkInfo | None",
                       endpoints: list["EndpointInfo"]) -> tuple[list[Any], list[Any]]:
        return [], []

    def sweep(self, ctx: "Context", networks: list["NetworkInfo"],
              endpoints: list["EndpointInfo"]) -> list[str]:
        return []


DRIVER = NullDriver()
