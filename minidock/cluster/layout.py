"""Which key holds what in the cluster store, and the pure choices made over them.

Everything lives under one prefix, `[<path of the store URL>]/minidock/`:

    network/<nid>             the network's document (Docker's inspect shape, `_net`
                              private fields), Scope "global"
    netname/<name>            <nid>   a name is taken by the create that writes it
    subnet/<a.b.c.d_len>      <nid>   a pool, claimed by its network
    vni/<vni>                 <nid>   a VXLAN id, claimed by its network
    ip/<nid>/<address>        <owner> an address: "gateway" (no lease) or an endpoint
                              id (on the lease of the endpoint's host)
    endpoint/<nid>/<eid>      JSON {ip, prefixlen, mac, vtep, container_id, name, names}
                              on the lease of its host: a host that dies loses them
                              when its lease expires

Every decision is one transaction: a create compares that its name, VNI and subnet
keys are absent and that no pool appeared since it read them (a range compare), so two
hosts creating at once cannot both win; an address is taken by comparing its key absent.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from minidock.hints import Iterable

ROOT = "minidock/"
VNI_FIRST = 256          # Docker's first VNI without swarm (idm/vxlan-id)
VNI_LAST = (1 << 24) - 1
GLOBAL_POOL = IPv4Network("10.0.0.0/8")   # Docker's global default pool, /24 each
GLOBAL_SIZE = 24


class Keys:
    """Key names under one store path."""

    def __init__(self, path: str = "") -> None:
        self.base = path.rstrip("/") + "/" + ROOT

    def network(self, nid: str = "") -> str:
        return f"{self.base}network/{nid}"

    def netname(self, name: str) -> str:
        return f"{self.base}netname/{name}"

    def subnet(self, subnet: str = "") -> str:
        return f"{self.base}subnet/{subnet.replace('/', '_')}"

    def vni(self, vni: int | None = None) -> str:
        return f"{self.base}vni/" + ("" if vni is None else str(vni))

    def ips(self, nid: str) -> str:
        return f"{self.base}ip/{nid}/"

    def ip(self, nid: str, address: str) -> str:
        return f"{self.base}ip/{nid}/{address}"

    def endpoints(self, nid: str = "") -> str:
        return f"{self.base}endpoint/{nid}/" if nid else f"{self.base}endpoint/"

    def endpoint(self, nid: str, eid: str) -> str:
        return f"{self.base}endpoint/{nid}/{eid}"

    def parse_endpoint(self, key: str) -> tuple[str, str]:
        """(nid, eid) of an endpoint key."""
        nid, _s, eid = key[len(self.endpoints()):].partition("/")
        return nid, eid


def subnet_of_key(keys: Keys, key: str) -> IPv4Network:
    return IPv4Network(key[len(keys.subnet()):].replace("_", "/"))


def first_free_vni(taken: Iterable[int]) -> int:
    """The lowest VNI from 256 not in `taken` (Docker's bitmap, first fit)."""
    used = set(taken)
    vni = VNI_FIRST
    while vni in used:
        vni += 1
    if vni > VNI_LAST:
        raise ValueError("no free VXLAN id")
    return vni


def next_global_subnet(taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first /24 of 10.0.0.0/8 that overlaps no taken pool."""
    used = sorted(taken)
    for cand in GLOBAL_POOL.subnets(new_prefix=GLOBAL_SIZE):
        if not any(cand.overlaps(u) for u in used):
            return cand
    return None
