"""The `host` driver: the predefined `host` network. The container stays in the host's
netns (no sandbox of its own), so every verb is a no-op; published ports are discarded
(Docker warns `Published ports are discarded when using host network mode`)."""

from __future__ import annotations

from minidock.net.drivers.null import NullDriver


class HostDriver(NullDriver):
    name = "host"


DRIVER = HostDriver()
