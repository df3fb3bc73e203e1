"""DNS records of user-defined networks: who answers to which name, where.

Docker's embedded DNS resolves a container's name, its network-scoped aliases, its
short ID and its hostname, but only for a container that shares the network: the
same name may live on two networks with two addresses, and a name on a network the
asker is not on never leaks. So a record is (network, container, ip, names), and a
lookup joins the asker's networks against the names.

The records live in the store (two tables of our own, made on first use), so the
resolver process reads the truth per query, and start, stop, connect, disconnect and
rm change the answers at once with no cache to invalidate:

    dns_endpoints(network_id, container_id, ip)       one row per endpoint
    dns_endpoints6(network_id, container_id, ip)      its IPv6 address, if it has one
    dns_names(network_id, container_id, pos, name)    the endpoint's names, lower-case;
                                                      pos 0 is the container name (PTR)
    dns_links(network_id, container_id, alias, target_id)
                                                      `--link target:alias` on a user
                                                      network: only the linker sees it

The network controller writes them (set_endpoint when an endpoint joins, remove_endpoint
when it leaves, remove_container on rm); the resolver only reads (lookup, reverse).
Every write is one transaction.
"""

from __future__ import annotations

import random
import weakref
from minidock.hints import Any

from minidock.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dns_endpoints (
    network_id   TEXT NOT NULL,
    container_id TEXT NOT NULL,
    ip           TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id)
);
CREATE INDEX IF NOT EXISTS dns_endpoints_ctr ON dns_endpoints(container_id);
CREATE INDEX IF NOT EXISTS dns_endpoints_ip ON dns_endpoints(ip);
CREATE TABLE IF NOT EXISTS dns_endpoints6 (
    network_id   TEXT NOT NULL,
    container_id TEXT NOT NULL,
    ip           TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id)
);
CREATE TABLE IF NOT EXISTS dns_names (
    network_id   TEXT NOT NULL,
    container_id TEXT NOT NULL,
    pos          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id, name)
);
CREATE INDEX IF NOT EXISTS dns_names_name ON dns_names(name);
CREATE TABLE IF NOT EXISTS dns_links (
    network_id   TEXT NOT NULL,
    container_id TEXT NOT NULL,
    alias        TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id, alias)
);
"""

_ready: "weakref.WeakSet[Store]" = weakref.WeakSet()


def _db(store: Store) -> Any:
    """The store's connection, with our tables made once per Store handle."""
    if store not in _ready:
        # One statement at a time: executescript() would COMMIT an open transaction.
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                store._db.execute(stmt)
        _ready.add(store)
    return store._db


def normalize(names: list[str]) -> list[str]:
    """Lower-case, strip trailing dots, drop empties and duplicates; keep the order."""
    out: list[str] = []
    for name in names:
        n = name.strip().rstrip(".").lower()
        if n and n not in out:
            out.append(n)
    return out


# -- writers (network controller) -----------------------------------------------------
def set_endpoint(store: Store, network_id: str, container_id: str, ip: str,
                 names: list[str], ip6: str = "") -> None:
    """Publish (or replace) a container's addresses and names on one network; idempotent.

    `names`: container name first, then aliases, short ID, hostname.
    """
    ip = ip.split("/")[0]
    with store.transaction():
        db = _db(store)
        for table in ("dns_names", "dns_endpoints6"):
            db.execute(f"DELETE FROM {table} WHERE network_id=? AND container_id=?",
                       (network_id, container_id))
        db.execute("INSERT OR REPLACE INTO dns_endpoints(network_id,container_id,ip) "
                   "VALUES(?,?,?)", (network_id, container_id, ip))
        if ip6:
            db.execute("INSERT INTO dns_endpoints6(network_id,container_id,ip) VALUES(?,?,?)",
                       (network_id, container_id, ip6.split("/")[0]))
        db.executemany(
            "INSERT INTO dns_names(network_id,container_id,pos,name) VALUES(?,?,?,?)",
            [(network_id, container_id, i, n) for i, n in enumerate(normalize(names))])
    from minidock import pipeline
    if pipeline.TRACING:
        pipeline.note("+", "dns", f"{', '.join(normalize(names))} -> {ip} "
                                  f"(network {network_id[:12]})")


def set_links(store: Store, network_id: str, container_id: str,
              links: dict[str, str]) -> None:
    """Publish `--link` aliases (alias -> target container id) that only `container_id`
    resolves, on one user network; replaces the container's previous links there."""
    with store.transaction():
        db = _db(store)
        db.execute("DELETE FROM dns_links WHERE network_id=? AND container_id=?",
                   (network_id, container_id))
        db.executemany(
            "INSERT OR REPLACE INTO dns_links(network_id,container_id,alias,target_id) "
            "VALUES(?,?,?,?)",
            [(network_id, container_id, a, t) for a, t in
             zip(normalize(list(links)), links.values())])
    from minidock import pipeline
    if pipeline.TRACING and links:
        pipeline.note("+", "dns", ", ".join(f"{a} -> container {t[:12]}" for a, t in links.items())
                      + f" (links of {container_id[:12]} only)")


def remove_endpoint(store: Store, network_id: str, container_id: str) -> None:
    """Withdraw a container's records (and its links) from one network (idempotent)."""
    from minidock import pipeline
    if pipeline.TRACING:
        pipeline.note("-", "dns", f"names of {container_id[:12]} on network {network_id[:12]}")
    with store.transaction():
        db = _db(store)
        for table in ("dns_names", "dns_endpoints", "dns_endpoints6", "dns_links"):
            db.execute(f"DELETE FROM {table} WHERE network_id=? AND container_id=?",
                       (network_id, container_id))


def remove_container(store: Store, container_id: str) -> None:
    """Withdraw a container's records from every network (idempotent)."""
    with store.transaction():
        db = _db(store)
        for table in ("dns_names", "dns_endpoints", "dns_endpoints6", "dns_links"):
            db.execute(f"DELETE FROM {table} WHERE container_id=?", (container_id,))


def attachments(store: Store) -> set[tuple[str, str]]:
    """(network id, container id) of every container with records or links."""
    db = _db(store)
    rows = db.execute("SELECT network_id, container_id FROM dns_endpoints").fetchall()
    rows += db.execute("SELECT network_id, container_id FROM dns_links").fetchall()
    return {(n, c) for n, c in rows}


def clear(store: Store) -> None:
    """Forget every container's records (after a reboot nothing runs)."""
    with store.transaction():
        db = _db(store)
        for table in ("dns_names", "dns_endpoints"):
            db.execute(f"DELETE FROM {table}")


# -- readers (resolver) ---------------------------------------------------------------
_LOOKUP = """
SELECT DISTINCT e.ip FROM dns_names n
JOIN dns_endpoints e ON e.network_id = n.network_id AND e.container_id = n.container_id
WHERE n.name = ? AND n.network_id IN (SELECT network_id FROM dns_endpoints
                                      WHERE container_id = ?)
"""


_LINKS = """
SELECT DISTINCT e.ip FROM dns_links l JOIN dns_endpoints e
ON e.network_id = l.network_id AND e.container_id = l.target_id
JOIN dns_endpoints me ON me.network_id = l.network_id AND me.container_id = l.container_id
WHERE l.container_id = ? AND l.alias = ?
"""


def _v6(query: str) -> str:
    """The same query answering from the IPv6 addresses (membership stays IPv4's)."""
    return query.replace("SELECT DISTINCT e.ip", "SELECT DISTINCT e6.ip").replace(
        "WHERE ", "JOIN dns_endpoints6 e6 ON e6.network_id = e.network_id "
                  "AND e6.container_id = e.container_id WHERE ", 1)


def lookup(store: Store, asking_container_id: str, name: str, family: int = 4) -> list[str]:
    """IPv4 (or, family 6, IPv6) addresses of `name` on the asker's networks, shuffled.

    Names first, then the asker's own link aliases (only where both are on the network).

    Like Docker, `name.network` also matches `name` on the network called `network`
    (for a dotted name every split point is tried, longest name first).
    """
    db = _db(store)
    name = name.rstrip(".").lower()
    by_name, by_link = (_LOOKUP, _LINKS) if family == 4 else (_v6(_LOOKUP), _v6(_LINKS))
    ips = [r[0] for r in db.execute(by_name, (name, asking_container_id))]
    if not ips:
        ips = [r[0] for r in db.execute(by_link, (asking_container_id, name))]
    if not ips:
        ips = _lookup_qualified(db, asking_container_id, name, by_name)
    random.shuffle(ips)
    return ips


def _lookup_qualified(db: Any, asker: str, name: str, query: str = _LOOKUP) -> list[str]:
    labels = name.split(".")
    for cut in range(len(labels) - 1, 0, -1):
        short, net_name = ".".join(labels[:cut]), ".".join(labels[cut:])
        rows = db.execute(
            query + " AND n.network_id IN (SELECT id FROM objects "
                      "WHERE kind='network' AND lower(name)=?)",
            (short, asker, net_name)).fetchall()
        if rows:
            return [r[0] for r in rows]
    return []


def exists(store: Store, asking_container_id: str, name: str) -> bool:
    """True if `name` resolves for the asker (AAAA of a known name is empty NOERROR)."""
    return bool(lookup(store, asking_container_id, name))


def reverse(store: Store, asking_container_id: str, ip: str) -> list[str]:
    """PTR targets for `ip` on the asker's networks: `<container name>.<network name>`."""
    rows = _db(store).execute(
        "SELECT n.name, (SELECT name FROM objects WHERE kind='network' AND id=e.network_id) "
        "FROM dns_endpoints e JOIN dns_names n ON n.network_id = e.network_id "
        "AND n.container_id = e.container_id AND n.pos = 0 "
        "WHERE e.ip = ? AND e.network_id IN (SELECT network_id FROM dns_endpoints "
        "WHERE container_id = ?)", (ip, asking_container_id)).fetchall()
    return sorted({f"{n}.{net}" if net else n for n, net in rows})
