"""A small client of etcd's v3 JSON gateway (/v3/kv/*, /v3/lease/*), for the CLI.

Why not a library: the CLI talks to the store on the start path of every container on
an overlay network, and `etcd3gw` costs ~200 ms of imports (requests, futurist), even
`http.client` ~40 ms (email, ssl). This module needs `socket`, `json` and `binascii`:
one HTTP/1.0 POST per call (`Connection: close`, the body read to EOF), ~1 ms on a
local network. Measured here (loaded 2-CPU machine): this module imports in ~1.2 ms,
`import etcd3gw` in 136 ms warm (1.1 s cold); a transaction takes ~5 ms; `run --rm` on
an overlay network 384 ms beside 291 ms on the bridge (bench/overlay.py), the difference
being the claim and record in etcd and the second endpoint on the gateway bridge.
The alternative, every CLI call asking the agent to talk to etcd, costs a unix-socket
round trip per request and makes every command depend on the agent being up. The long-lived overlay agent uses it too for the few calls it makes
beside its watch (which is `etcd3gw`'s).

Members are tried in order; the first that answers is kept first for the next call. A
store none of whose members answers raises `StoreUnavailable` naming the store, after
at most ~`BUDGET` seconds in all (connect and read timeouts share it), so a command
against a dead store fails fast and with one line.

Keys and values are `str`; the gateway's base64 and int64-as-string are handled here.
"""

from __future__ import annotations

import json
import time
from binascii import a2b_base64, b2a_base64
from minidock.hints import Any, NamedTuple

from minidock.errors import Internal

BUDGET = 4.5


class StoreUnavailable(Internal):
    """No member of the cluster store answered."""


class KV(NamedTuple):
    key: str
    value: str
    create_revision: int
    mod_revision: int
    lease: int


def b64(text: str) -> str:
    return b2a_base64(text.encode(), newline=False).decode()


def unb64(text: str) -> str:
    return a2b_base64(text).decode()


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with `prefix` (etcd's rule)."""
    raw = prefix.encode()
    return (raw[:-1] + bytes([raw[-1] + 1])).decode()


def parse_url(url: str) -> tuple[list[tuple[str, int]], str]:
    """`etcd://h1[:port],h2[:port][/path]` -> ([(host, port)...], "/path" or "")."""
    provider, _sep, rest = url.partition("://")
    hosts, slash, path = rest.partition("/")
    members = []
    for item in hosts.split(","):
        host, _c, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "2379")
        members.append((host.strip("[]"), int(port or 2379)))
    return members, ("/" + path.strip("/")) if slash and path.strip("/") else ""


# -- request bodies (pure) ------------------------------------------------------------
def op_put(key: str, value: str, lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def op_delete(key: str, prefix: bool = False) -> dict[str, Any]:
    body = {"key": b64(key)}
    if prefix:
        body["range_end"] = b64(prefix_end(key))
    return {"request_delete_range": body}


def op_range(key: str, prefix: bool = False) -> dict[str, Any]:
    body = {"key": b64(key)}
    if prefix:
        body["range_end"] = b64(prefix_end(key))
    return {"request_range": body}


def cmp_absent(key: str) -> dict[str, Any]:
    """The key does not exist (its create revision is 0)."""
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def cmp_value(key: str, value: str) -> dict[str, Any]:
    return {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}


def cmp_unchanged_since(prefix: str, revision: int) -> dict[str, Any]:
    """No key under `prefix` was created or changed after `revision` (a range compare:
    what a decision read at `revision` saw under the prefix still holds, but for
    deletions, which callers guard with their own keys)."""
    return {"key": b64(prefix), "range_end": b64(prefix_end(prefix)), "target": "MOD",
            "result": "LESS", "mod_revision": str(revision + 1)}


def decode_kvs(kvs: list[dict[str, Any]] | None) -> list[KV]:
    return [KV(unb64(kv["key"]), unb64(kv.get("value", "")), int(kv.get("create_revision", 0)),
               int(kv.get("mod_revision", 0)), int(kv.get("lease", 0))) for kv in kvs or ()]


class Etcd:
    """One cluster store (several members); one short HTTP request per call."""

    def __init__(self, url: str, budget: float = BUDGET) -> None:
        self.url = url
        self.members, self.path = parse_url(url)
        self.budget = budget

    # -- transport -----------------------------------------------------------------
    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to /v3/`path` on the first member that answers. A member that
        cannot be reached, or that answers with a transient error (a leader election
        after a member died), is passed over; rounds repeat within the budget."""
        payload = json.dumps(body).encode()
        deadline = time.monotonic() + self.budget
        errors: list[str] = []
        while time.monotonic() < deadline:
            for host, port in list(self.members):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    status, data = _post(host, port, "/v3/" + path, payload,
                                         min(left, max(1.0, self.budget / len(self.members))))
                except OSError as err:
                    errors.append(f"{host}:{port}: {err.strerror or err}")
                    continue
                if status != 200 and _transient(data):
                    errors.append(f"{host}:{port}: {_message(data)}")
                    continue
                self._prefer((host, port))
                if status != 200:
                    raise Internal(f"cluster store {self.url}: {path}: {_message(data)}")
                return json.loads(data or b"{}")  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise StoreUnavailable(f"cluster store {self.url} is unreachable: "
                               + ("; ".join(dict.fromkeys(errors)) or "timeout"))

    def _prefer(self, member: tuple[str, int]) -> None:
        if self.members[0] != member:
            self.members.remove(member)
            self.members.insert(0, member)

    # -- kv ----------------------------------------------------------------------------
    def get(self, key: str) -> KV | None:
        kvs = decode_kvs(self.call("kv/range", {"key": b64(key)}).get("kvs"))
        return kvs[0] if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[KV], int]:
        """Every key under `prefix`, and the store revision they were read at."""
        return self.get_range(prefix, prefix_end(prefix))

    def get_range(self, start: str, end: str) -> tuple[list[KV], int]:
        """Every key in [start, end), and the store revision they were read at."""
        out = self.call("kv/range", {"key": b64(start), "range_end": b64(end)})
        return decode_kvs(out.get("kvs")), int(out["header"].get("revision", 0))

    def put(self, key: str, value: str, lease: int = 0) -> None:
        self.call("kv/put", op_put(key, value, lease)["request_put"])

    def delete(self, key: str, prefix: bool = False) -> int:
        out = self.call("kv/deleterange", op_delete(key, prefix)["request_delete_range"])
        return int(out.get("deleted", 0))

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> tuple[bool, list[dict[str, Any]]]:
        out = self.call("kv/txn", {"compare": compare, "success": success,
                                   "failure": failure or []})
        return bool(out.get("succeeded")), out.get("responses") or []

    # -- leases ------------------------------------------------------------------------
    def lease_grant(self, ttl: int) -> int:
        return int(self.call("lease/grant", {"TTL": str(ttl), "ID": "0"})["ID"])

    def lease_keepalive(self, lease: int) -> int:
        """Refresh `lease`; its remaining TTL (0: it had expired)."""
        out = self.call("lease/keepalive", {"ID": str(lease)})
        return int(out.get("result", {}).get("TTL", 0))

    def lease_ttl(self, lease: int) -> int:
        """Seconds left on `lease` (-1 or 0 when it is gone)."""
        return int(self.call("kv/lease/timetolive", {"ID": str(lease)}).get("TTL", -1))

    def lease_revoke(self, lease: int) -> None:
        try:
            self.call("kv/lease/revoke", {"ID": str(lease)})
        except Internal as err:
            if "not found" not in str(err):
                raise


def _transient(data: bytes) -> bool:
    """An answer that another member (or the same, a moment later) may not give."""
    text = _message(data).lower()
    return any(w in text for w in ("leader", "timed out", "timeout", "unavailable",
                                   "too many requests"))


def _message(data: bytes) -> str:
    try:
        doc = json.loads(data)
        return str(doc.get("error") or doc.get("message") or doc)
    except ValueError:
        return data[:200].decode(errors="replace")


def _post(host: str, port: int, path: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.0 POST; (status, body). OSError on connect/read failure."""
    import _socket
    sock = _socket.socket(_socket.AF_INET6 if ":" in host else _socket.AF_INET,
                          _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
        head = (f"POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
        sock.sendall(head.encode() + payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    raw = b"".join(chunks)
    header, _sep, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(header.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise OSError(f"bad HTTP answer from {host}:{port}") from None
    return status, body
