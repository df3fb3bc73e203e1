"""DaemonConfig: the "daemon" options of minidock, loaded from daemon.json.

minidock has no daemon, but Docker's daemon options (bridge, bip, icc, ...) still
decide how networking behaves. They live in `daemon.json` with dockerd's key names and
are parsed into one immutable named tuple, validated with dockerd's rules and messages on
every load, before anything acts on them ("validate, then act").

Kept cheap to import (json + a named tuple; ipaddress only when validating): every CLI call loads it.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple
from minidock.hints import TYPE_CHECKING, Any

from minidock.errors import InvalidArgument

if TYPE_CHECKING:
    import ipaddress

DEFAULT_BRIDGE = "minidock0"


_FIELDS: tuple[tuple[str, Any], ...] = (
    ("bridge", ""),            # "-b"; "" means the default "minidock0"; "none" disables it
    ("bip", ""),               # CIDR with host bits = gateway, e.g. "192.168.100.1/24"
    ("fixed_cidr", ""),
    ("mtu", 1500),             # 0 -> 1500
    ("icc", True),
    ("iptables", True),
    ("ip_masq", True),
    ("ip_forward", True),
    ("ip", "0.0.0.0"),         # default host IP for -p
    ("userland_proxy", True),
    ("dns", ()),
    ("dns_search", ()),
    ("dns_opts", ()),
    ("default_address_pools", ()),  # ((base CIDR, size), ...)
    ("cluster_store", ""),
    ("cluster_advertise", ""),
    ("ipv6", False),           # IPv6 on the default bridge (needs fixed_cidr_v6)
    ("fixed_cidr_v6", ""),     # the default bridge's IPv6 subnet, e.g. "2001:db8:1::/64"
    ("ip6tables", None),       # None: on when ipv6 is (dockerd 20.10 needs "experimental")
    ("default_gateway", ""),   # containers' IPv4 default route on the default bridge
    ("default_gateway_v6", ""),
    ("experimental", False),   # accepted for dockerd compatibility; changes nothing
    ("cluster_store_opts", ()),  # ((key, value), ...), e.g. (("discovery.ttl", "20"),)
)


class DaemonConfig(namedtuple("_DaemonConfig", [f for f, _ in _FIELDS],
                              defaults=[d for _, d in _FIELDS])):
    """Parsed and validated daemon options (dockerd's bridgeConfig and friends).

    An immutable named tuple rather than a frozen dataclass: every CLI call loads it,
    and `dataclasses` alone costs ~10 ms of imports on the start path.
    """

    __slots__ = ()

    @property
    def bridge_name(self) -> str:
        """Name of the default bridge device: `minidock0` unless `bridge` names one."""
        return self.bridge or DEFAULT_BRIDGE

    @property
    def default_bridge_enabled(self) -> bool:
        """False when `bridge` is "none": no default `bridge` network at all."""
        return self.bridge != "none"

    @property
    def ip6tables_on(self) -> bool:
        """ip6tables rules are programmed when IPv6 is on, unless `ip6tables` is false."""
        return self.ipv6 and self.ip6tables is not False and self.iptables

    @property
    def masquerade(self) -> bool:
        """ip-masq needs iptables; without it masquerading is silently off (as dockerd)."""
        return self.ip_masq and self.iptables


# JSON key -> (field name, kind). Kinds: "str", "bool", "int", "strlist", "pools".
_KEYS: dict[str, tuple[str, str]] = {
    "bridge": ("bridge", "str"),
    "bip": ("bip", "str"),
    "fixed-cidr": ("fixed_cidr", "str"),
    "mtu": ("mtu", "int"),
    "icc": ("icc", "bool"),
    "iptables": ("iptables", "bool"),
    "ip-masq": ("ip_masq", "bool"),
    "ip-forward": ("ip_forward", "bool"),
    "ip": ("ip", "str"),
    "userland-proxy": ("userland_proxy", "bool"),
    "dns": ("dns", "strlist"),
    "dns-search": ("dns_search", "strlist"),
    "dns-opts": ("dns_opts", "strlist"),
    "default-address-pools": ("default_address_pools", "pools"),
    "cluster-store": ("cluster_store", "str"),
    "cluster-advertise": ("cluster_advertise", "str"),
    "ipv6": ("ipv6", "bool"),
    "fixed-cidr-v6": ("fixed_cidr_v6", "str"),
    "ip6tables": ("ip6tables", "bool"),
    "default-gateway": ("default_gateway", "str"),
    "default-gateway-v6": ("default_gateway_v6", "str"),
    "experimental": ("experimental", "bool"),
    "cluster-store-opts": ("cluster_store_opts", "strmap"),
}

def _bad(keys: tuple[str, ...], message: str) -> InvalidArgument:
    """An error that names the daemon.json keys involved as they are written in the
    file (`"bip"`), then dockerd's text (which speaks of flags: `-b & --bip`)."""
    names = " and ".join(f'"{k}"' for k in keys)
    return InvalidArgument(f"{'key' if len(keys) == 1 else 'keys'} {names}: {message}")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


def parse_config(data: dict) -> DaemonConfig:
    """Turn a daemon.json object into a DaemonConfig; raise InvalidArgument if invalid."""
    if not isinstance(data, dict):
        raise InvalidArgument("daemon configuration must be a JSON object")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise InvalidArgument(
            "the following directives don't match any configuration option: "
            + ", ".join(unknown)
        )
    values: dict[str, Any] = {}
    for key, raw in data.items():
        field, kind = _KEYS[key]
        values[field] = _convert(key, kind, raw)
    if values.get("mtu") == 0:
        values["mtu"] = 1500
    cfg = DaemonConfig(**values)
    validate(cfg)
    return cfg


def load_config(path: str) -> DaemonConfig:
    """Load daemon.json at `path`; a missing file means all defaults."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return DaemonConfig()
    except OSError as err:
        raise InvalidArgument(f"unable to read configuration file {path}: {err.strerror}") from err
    if not raw.strip():
        return DaemonConfig()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:   # not UTF-8, not JSON, nested too deep
        raise InvalidArgument(
            f"unable to configure minidock with file {path}: invalid JSON: {err}"
        ) from err
    try:
        return parse_config(data)
    except InvalidArgument as err:
        raise InvalidArgument(f"unable to configure minidock with file {path}: {err}") from err


def validate(cfg: DaemonConfig) -> None:
    """dockerd's checks across options (verifyDaemonSettings and the bridge driver)."""
    if cfg.bridge and cfg.bip:
        raise _bad(("bridge", "bip"),
                   "You specified -b & --bip, mutually exclusive options. Please specify only one")
    if not cfg.icc and not cfg.iptables:
        raise _bad(("icc", "iptables"),
                   "You specified --iptables=false with --icc=false. ICC=false uses iptables "
                   "to function. Please set --icc or --iptables to true")
    if cfg.bridge and len(cfg.bridge) > 15:
        raise _bad(("bridge",), f"invalid bridge name {cfg.bridge}: longer than 15 characters")
    if not (cfg.mtu == 0 or 68 <= cfg.mtu <= 65535):
        raise _bad(("mtu",), f"invalid mtu {cfg.mtu}: must be between 68 and 65535")
    _validate_addresses(cfg)
    _validate_ipv6(cfg)
    _validate_pools(cfg.default_address_pools)
    _validate_cluster(cfg)


def _validate_addresses(cfg: DaemonConfig) -> None:
    import ipaddress  # only when a daemon.json exists: keeps the module import cheap

    bip = _cidr(cfg.bip, "bip") if cfg.bip else None
    if bip is not None and bip.ip in (bip.network.network_address, bip.network.broadcast_address) \
            and bip.network.prefixlen < 31:
        raise _bad(("bip",), f"invalid bip {cfg.bip}: the bridge address must be a host address")
    if cfg.fixed_cidr:
        fixed = _cidr(cfg.fixed_cidr, "fixed-cidr").network
        if bip is not None and not fixed.subnet_of(bip.network):
            raise _bad(("fixed-cidr", "bip"),
                       f"invalid fixed-cidr {cfg.fixed_cidr}: container subnet must be a subset "
                       f"of bridge network {cfg.bip}")
    try:
        ipaddress.ip_address(cfg.ip)
    except ValueError:
        raise _bad(("ip",), f"{cfg.ip} is not an ip address") from None
    for server in cfg.dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise _bad(("dns",), f"IP address is not correctly formatted: {server}") from None
    for domain in cfg.dns_search:
        if domain != "." and (not _DOMAIN_RE.match(domain) or len(domain) > 255):
            raise _bad(("dns-search",), f"{domain} is not a valid domain")


def _validate_ipv6(cfg: DaemonConfig) -> None:
    """dockerd's IPv6 checks (daemon config, bridge driver init, default bridge IPAM)."""
    if not (cfg.ipv6 or cfg.fixed_cidr_v6 or cfg.ip6tables or cfg.default_gateway
            or cfg.default_gateway_v6):
        return
    for value in (cfg.default_gateway, cfg.default_gateway_v6):
        if value:
            parse_ip(value)
    if cfg.ip6tables and not cfg.iptables:
        raise InvalidArgument("cannot create new chains, EnableIPTable is disabled")
    fixed = parse_cidr6(cfg.fixed_cidr_v6) if cfg.fixed_cidr_v6 else None
    if cfg.ipv6 and fixed is None and cfg.default_bridge_enabled:
        raise InvalidArgument(
            "IPv6 is enabled for the default bridge, but no subnet is configured. "
            "Specify an IPv6 subnet using --fixed-cidr-v6")
    if cfg.default_gateway_v6 and fixed is not None:
        check_default_gateway(fixed, fixed.network_address + 1, cfg.default_gateway_v6, 6)
    if cfg.default_gateway and cfg.bip:
        bip = _cidr(cfg.bip)
        check_default_gateway(bip.network, bip.ip, cfg.default_gateway, 4)


def parse_ip(text: str) -> Any:
    """An address of either family (dockerd's `invalid IP address: x`)."""
    import ipaddress
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None


def parse_cidr6(text: str) -> Any:
    """An IPv6 CIDR; host bits are allowed (and dropped), as Go's net.ParseCIDR."""
    import ipaddress
    try:
        if "/" not in text:
            raise ValueError(text)
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    if net.version != 6:
        raise InvalidArgument(f"invalid CIDR address: {text}")
    return net


def check_default_gateway(net: Any, bridge_ip: Any, value: str, version: int) -> Any:
    """`default-gateway(-v6)`: an auxiliary address of the default bridge's pool,
    with libnetwork's messages (it must lie in the pool and not be the bridge's)."""
    key = f"DefaultGatewayIPv{version}"
    gw = parse_ip(value)
    if gw.version != version or gw not in net:
        raise InvalidArgument(
            f"auxiliary address: ({key}:{value}) must belong to the master pool: {net}")
    if gw == bridge_ip:
        raise InvalidArgument(f"failed to allocate secondary ip address ({key}:{value}): "
                              "Address already in use")
    return gw


def _validate_pools(pools: tuple[tuple[str, int], ...]) -> None:
    for base, size in pools:
        net = _cidr(base, "default-address-pools").network
        if not net.prefixlen <= size <= 32:
            raise _bad(("default-address-pools",),
                       f"invalid default-address-pools: size {size} must be between "
                       f"{net.prefixlen} and 32 for base {base}")


def _validate_cluster(cfg: DaemonConfig) -> None:
    if cfg.cluster_advertise and not cfg.cluster_store:
        raise _bad(("cluster-advertise", "cluster-store"),
                   "invalid cluster configuration. --cluster-advertise must be accompanied by "
                   "--cluster-store configuration")
    if cfg.cluster_store:
        provider, sep, url = cfg.cluster_store.partition("://")
        if not sep or not provider or not url:
            raise _bad(("cluster-store",),
                       "kv store daemon config must be of the form KV-PROVIDER://KV-URL")


def _cidr(text: str, key: str = "bip") -> ipaddress.IPv4Interface:
    import ipaddress

    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise _bad((key,), f"invalid CIDR address: {text}") from None
    if "/" not in text or iface.version != 4:
        raise _bad((key,), f"invalid CIDR address: {text}")
    return iface  # type: ignore[return-value]


def _convert(key: str, kind: str, raw: Any) -> Any:
    if kind == "str":
        if not isinstance(raw, str):
            raise _bad((key,), f"must be a string, not {_json_type(raw)}")
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise _bad((key,), f"must be true or false, not {_json_type(raw)}")
        return raw
    if kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _bad((key,), f"must be an integer, not {_json_type(raw)}")
        return raw
    if kind == "strmap":
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise InvalidArgument(f"invalid value for {key}: must be an object of strings")
        return tuple(sorted(raw.items()))
    if kind == "strlist":
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise _bad((key,), f"must be a list of strings, not {_json_type(raw)}")
        return tuple(raw)
    return _convert_pools(key, raw)


def _json_type(raw: Any) -> str:
    """The JSON name of a value's type, with the value when short (`string "yes"`)."""
    kind = {str: "string", bool: "boolean", int: "number", float: "number", list: "array",
            dict: "object", type(None): "null"}.get(type(raw), "value")
    text = json.dumps(raw)
    return f"{kind} {text}" if len(text) <= 40 else kind


def _convert_pools(key: str, raw: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, list):
        raise _bad((key,), "must be a list of {\"base\": CIDR, \"size\": N} objects")
    pools = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"base", "size"} or "base" not in item:
            raise _bad((key,), "must be a list of {\"base\": CIDR, \"size\": N} objects")
        base, size = item["base"], item.get("size")
        if not isinstance(base, str) or isinstance(size, bool) or not isinstance(size, int):
            raise _bad((key,), "\"base\" must be a CIDR string and \"size\" an integer")
        pools.append((base, size))
    return tuple(pools)
