"""The `null` driver: the predefined `none` network. A container on it has its own
netns with only `lo`; there is nothing to create, join or publish."""

from __future__ import annotations

from typing import Any


class NullDriver:
    name = "null"
    creatable = False
    has_sandbox_iface = False

    def init_driver(self, ctx: Any, p: Any) -> None:
        return None

    def create_network(self, ctx: Any, net: Any, p: Any) -> list[Any]:
        return []

    def delete_network(self, ctx: Any, net: Any, rules: list[Any]) -> None:
        return None

    def join(self, ctx: Any, net: Any, ep: Any, pl: Any, gateway: bool) -> None:
        return None

    def leave(self, ctx: Any, net: Any, ep: Any) -> None:
        return None

    def program_external_connectivity(self, ctx: Any, net: Any, ep: Any) -> list[Any]:
        return []

    def revoke_external_connectivity(self, ctx: Any, net: Any, ep: Any) -> None:
        return None


DRIVER = NullDriver()
