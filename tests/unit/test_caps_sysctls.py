"""Capability sets (moby's TweakCapabilities and the CLI's CapAdd/CapDrop) and the
--sysctl allow-list, as pure functions."""

from __future__ import annotations

import re

import pytest

from minidock.errors import InvalidArgument
from minidock.runtime import caps
from minidock.runtime.spec import cap_add_drop, validate_sysctls

EVERY = (1 << len(caps.ALL_CAPS)) - 1


def test_default_mask_is_dockers():
    assert caps.mask(list(caps.DEFAULT_CAPS)) == caps.DEFAULT_MASK == 0xA80425FB
    assert caps.effective_caps({}, EVERY) == list(caps.DEFAULT_CAPS)


@pytest.mark.parametrize("add, drop, want_add, want_drop", [
    (("net_admin",), (), ["CAP_NET_ADMIN"], None),
    (("CAP_SYS_ADMIN", "sys_admin", "Net_Raw"), (), ["CAP_NET_RAW", "CAP_SYS_ADMIN"], None),
    (("all", "net_admin"), ("NET_RAW",), ["ALL"], ["CAP_NET_RAW"]),
    (("NET_ADMIN",), ("net_admin", "chown"), None, ["CAP_CHOWN"]),
    (("ALL",), ("ALL",), None, None),
])
def test_cli_normalises_cap_add_drop(add, drop, want_add, want_drop):
    assert cap_add_drop(add, drop) == (want_add, want_drop)


def test_unknown_capability():
    with pytest.raises(InvalidArgument, match=re.escape('invalid CapAdd: unknown capability: "CAP_NOPE"')):
        cap_add_drop(("nope",), ())
    with pytest.raises(InvalidArgument, match=re.escape('invalid CapDrop: unknown capability: "CAP_X"')):
        cap_add_drop((), ("cap_x",))


def test_tweaks():
    eff = lambda **hc: caps.effective_caps(hc, EVERY)  # noqa: E731
    assert "CAP_NET_ADMIN" in eff(CapAdd=["CAP_NET_ADMIN"])
    assert "CAP_NET_RAW" not in eff(CapDrop=["CAP_NET_RAW"])
    assert eff(CapDrop=["ALL"], CapAdd=["CAP_CHOWN"]) == ["CAP_CHOWN"]
    assert eff(CapAdd=["ALL"], CapDrop=["CAP_SYS_ADMIN"]) == \
        [c for c in caps.ALL_CAPS if c != "CAP_SYS_ADMIN"]
    assert eff(Privileged=True, CapDrop=["ALL"]) == list(caps.ALL_CAPS)
    # "every capability" is what this process can hand on
    assert caps.effective_caps({"Privileged": True}, 0b101) == ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"]


@pytest.mark.parametrize("items, network, want", [
    (("net.ipv4.ip_forward=1",), "default", {"net.ipv4.ip_forward": "1"}),
    (("kernel.shmmax=1000", "fs.mqueue.msg_max=20", "kernel.sem=1 2 3 4"), "host",
     {"kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4"}),
    (("net.core.somaxconn=a=b",), "none", {"net.core.somaxconn": "a=b"}),
])
def test_sysctls(items, network, want):
    assert validate_sysctls(items, network) == want


@pytest.mark.parametrize("item, network, message", [
    ("kernel.hostname=x", "default",
     '''invalid argument "kernel.hostname=x" for "--sysctl" flag: sysctl 'kernel.hostname=x' is not whitelisted'''),
    ("vm.swappiness=1", "default", "sysctl 'vm.swappiness=1' is not whitelisted"),
    ("net.ipv4.ip_forward", "default", "sysctl 'net.ipv4.ip_forward' is not whitelisted"),
    ("net./../kernel/core_pattern=|x", "default", "is not whitelisted"),
    ("net..ipv4=1", "default", "is not whitelisted"),
    ("net.ipv4.ip_forward=1", "host",
     'sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace'),
])
def test_sysctls_refused(item, network, message):
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        validate_sysctls((item,), network)
