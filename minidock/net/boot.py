"""Has networking been initialised for this boot with these daemon options?

The cheap half of the controller's lazy initialisation, kept apart so that every
`run` pays one small file read and not the controller's import: the marker
`<exec-root>/network-init` holds the fingerprint of the daemon options last applied
(the exec-root is a tmpfs: a reboot removes the marker with the kernel objects).
"""

from __future__ import annotations

import json
import os
from minidock.hints import TYPE_CHECKING

if TYPE_CHECKING:
    from minidock.config import DaemonConfig
    from minidock.context import Context

MARKER = "network-init"
_KEYS = ("bridge", "bip", "fixed_cidr", "mtu", "icc", "iptables", "ip_masq", "ip_forward",
         "ip", "userland_proxy", "default_address_pools", "ipv6", "fixed_cidr_v6", "ip6tables",
         "default_gateway", "default_gateway_v6")


def fingerprint(cfg: DaemonConfig) -> str:
    """The daemon options that shape networking, as one comparable string."""
    return json.dumps({k: getattr(cfg, k) for k in _KEYS}, sort_keys=True)


def marker_path(ctx: Context) -> str:
    return os.path.join(ctx.exec_root, MARKER)


def read_marker(ctx: Context) -> str:
    try:
        with open(marker_path(ctx)) as fh:
            return fh.read()
    except OSError:
        return ""


def write_marker(ctx: Context, value: str) -> None:
    path = marker_path(ctx)
    with open(path + ".tmp", "w") as fh:
        fh.write(value)
    os.replace(path + ".tmp", path)


def ensure_initialized(ctx: Context, firewall: bool = True) -> None:
    """Initialise networking unless this boot already did with these options.

    `firewall`: also check that the rules are still there. A container that uses none
    of them (--net none, --net host) skips it: the next one that does repairs them.
    """
    if ctx.config.cluster_store:    # a killed overlay agent is restarted (it re-syncs)
        from minidock.cluster import agent
        agent.ensure(ctx)
    if read_marker(ctx) == fingerprint(ctx.config):
        if firewall:
            check_firewall(ctx)     # a flushed firewall is rebuilt (one netlink query)
        return
    from minidock.net import controller
    controller.ensure_initialized(ctx)


def check_firewall(ctx: Context) -> None:
    """Cheap drift check (net/firewall/fwcheck.py); the repair only when rules went."""
    if not ctx.config.iptables:
        return
    from minidock.net.firewall import fwcheck
    if fwcheck.drifted(ctx.exec_root):
        from minidock.net.restore import repair_firewall
        repair_firewall(ctx)
