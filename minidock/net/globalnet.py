"""Networks of global scope (the overlay driver's): created and removed in the cluster
store, copied into the local store for every other command (cluster/gstore.py).

`network create -d overlay` validates everything first, then one etcd transaction
claims name, pool and VNI and stores the document; only then is the local copy
written. `network rm` removes it from etcd once no host has an endpoint on it (the
other hosts' agents then drop their namespaces of it), then locally.
"""

from __future__ import annotations

from minidock.hints import Any

from minidock import ids
from minidock.errors import Forbidden, InvalidArgument
from minidock.net import network as nw

OPT_VNI = "com.docker.network.driver.overlay.vxlanid_list"


def plan(ctx: Any, name: str, driver: str, subnet: str, gateway: str, ip_range: str,
         internal: bool, options: dict[str, str], labels: dict[str, str] | None
         ) -> tuple[nw.Net, dict[str, Any]]:
    """The network and its document, before any side effect (subnet "" = etcd picks)."""
    from minidock.net import ipam
    if name in nw.PREDEFINED:
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    if (gateway or ip_range) and not subnet:
        raise InvalidArgument("cannot specify gateway or ip-range without subnet")
    vni = options.get(OPT_VNI, "")
    if vni and (not vni.isdigit() or not 1 <= int(vni) < 1 << 24):
        raise InvalidArgument(f"invalid {OPT_VNI}: {vni}")
    mtu = _mtu(options)
    ipam_cfg: dict[str, str] = {}
    nid = ids.new_id()
    net = nw.Net(id=nid, name=name, driver=driver, internal=internal, user_subnet=bool(subnet),
                 options=dict(options), pool_id=f"GlobalDefault/{nid}", ipam_driver="cluster",
                 state={"mtu": mtu})
    if subnet:
        pool = ipam.make_pool(subnet, gateway or None, ip_range or None)
        net = net._replace(subnet=str(pool.subnet), gateway=str(pool.gateway),
                           ip_range=str(pool.ip_range or ""))
        ipam_cfg = {"Subnet": subnet, **({"IPRange": ip_range} if ip_range else {}),
                    **({"Gateway": gateway} if gateway else {})}
    doc = nw.new_doc(net, [ipam_cfg] if ipam_cfg else [], labels)
    doc["Scope"] = "global"
    return net, doc


def _mtu(options: dict[str, str]) -> int:
    """The overlay's MTU: the driver MTU option (default 1500) less VXLAN's 50 bytes."""
    raw = options.get(nw.OPT_MTU, "")
    try:
        mtu = int(raw) if raw else 1500
    except ValueError:
        raise InvalidArgument(f"invalid value for {nw.OPT_MTU}: {raw}") from None
    if not 118 <= mtu <= 65535:
        raise InvalidArgument(f"invalid MTU number: {mtu}")
    return mtu - 50


def create_network(ctx: Any, name: str, driver: str, subnet: str, gateway: str,
                   ip_range: str, internal: bool, options: dict[str, str],
                   labels: dict[str, str] | None) -> str:
    from minidock.cluster import gstore
    from minidock.errors import Conflict
    gs = gstore.open_gstore(ctx)
    _net, doc = plan(ctx, name, driver, subnet, gateway, ip_range, internal, options, labels)
    if ctx.store.get_by_name("network", name) is not None:
        raise Conflict(f"network with name {name} already exists")
    stored = gstore.create_network(gs, doc, subnet)
    ctx.store.put("network", stored["Id"], stored, name=name)
    return stored["Id"]  # type: ignore[no-any-return]


def remove_network(ctx: Any, doc: dict[str, Any]) -> None:
    from minidock.cluster import gstore
    gstore.delete_network(gstore.open_gstore(ctx), doc)
