"""What the proxy client (proxy.py) and the proxy process (proxyd.py) must agree on.

Three things, all pure except `bind_forward`:
- a *forward* as a plain tuple `(proto, host_ip, host_port, container_ip, container_port)`
  and its validation;
- the control protocol on `<exec-root>/proxy.sock`, a SOCK_SEQPACKET unix socket: one
  request = one packet, so message boundaries and the SCM_RIGHTS fds that ride with a
  packet never need reassembly. A request is UTF-8 text, a header line then one line
  per forward; a reply is `ok` or `err <message>`, then lines of detail:

      client                                    proxyd
        publish <owner> <serve 0|1> <last 0|1>   (fds of the bound listeners, same order)
        tcp 0.0.0.0 8080 172.17.0.2 80     --->  installs when last=1
                                           <---  ok
  More than MAX_FDS forwards travel as several `publish` packets with last=0 and one
  with last=1; the proxy installs nothing before the last (all-or-nothing).
- the table file `<exec-root>/proxy.json` (owner -> serve flag and forwards), which a
  restarted proxy reads to re-bind what it served.

Why not `json` for everything, and `_socket` instead of `socket`: this module is
imported by the proxy process, whose memory counts against the per-container budget;
`json`, `socket` and `signal` pull in `re` and `enum` (about 1 MiB). Only a restarted
proxy imports `json`, to read the table once.
"""

from __future__ import annotations

import _json
import _socket
import os

Fwd = tuple[str, str, int, str, int]

MAX_FDS = 250          # the kernel's SCM_MAX_FD is 253 per message
MAX_MSG = 1 << 16      # one packet; 250 forward lines stay far below this
OPS = ("publish", "unpublish", "ping", "list", "stop")
FILES = {"sock": "proxy.sock", "pid": "proxy.pid", "table": "proxy.json", "lock": "proxy.lock"}


class WireError(ValueError):
    """A malformed message or table entry."""


def path(exec_root: str, name: str) -> str:
    """The proxy's files in the exec-root: sock, pid, table, lock."""
    return os.path.join(exec_root, FILES[name])


# -- forwards ---------------------------------------------------------------------
def family_of(ip: str) -> int:
    return _socket.AF_INET6 if ":" in ip else _socket.AF_INET


def check_forward(fields: list | tuple) -> Fwd:
    """Validate five fields into a forward tuple; WireError names the first bad one."""
    if len(fields) != 5:
        raise WireError(f"forward needs 5 fields, got {len(fields)}")
    proto, host_ip, host_port, cip, cport = fields
    if proto not in ("tcp", "udp"):
        raise WireError(f"invalid proto: {proto}")
    for ip in (host_ip, cip):
        try:
            _socket.inet_pton(family_of(str(ip)), str(ip))
        except (OSError, TypeError) as err:
            raise WireError(f"invalid IP address: {ip}") from err
    ports = []
    for port in (host_port, cport):
        try:
            value = int(port)
        except (TypeError, ValueError) as err:
            raise WireError(f"invalid port: {port}") from err
        if not 0 < value < 65536:
            raise WireError(f"invalid port: {port}")
        ports.append(value)
    return (proto, str(host_ip), ports[0], str(cip), ports[1])


def check_owner(owner: str) -> str:
    if not owner or len(owner) > 256 or not owner.isprintable() or any(c.isspace() for c in owner):
        raise WireError(f"invalid owner: {owner!r}")
    return owner


def listen_address(fwd: Fwd) -> str:
    """Go's spelling of the listen address: `tcp4 0.0.0.0:8080`, `udp6 [::]:53`."""
    proto, ip, port = fwd[0], fwd[1], fwd[2]
    if ":" in ip:
        return f"{proto}6 [{ip}]:{port}"
    return f"{proto}4 {ip}:{port}"


def bind_error(fwd: Fwd, err: OSError) -> str:
    """Docker's message for a failed bind, e.g. `... bind: address already in use`."""
    cause = os.strerror(err.errno) if err.errno else str(err)
    cause = cause[:1].lower() + cause[1:]
    return f"Error starting userland proxy: listen {listen_address(fwd)}: bind: {cause}"


def bind_forward(fwd: Fwd, backlog: int = 4096) -> "_socket.socket | None":
    """Bind (and for TCP listen) the host side of one forward.

    Returns None when the family is not available in this kernel (no IPv6): `::`
    bindings are optional. Raises OSError from bind/listen; the caller words it.
    TCP sets SO_REUSEADDR (rebinding after a restart must not wait for TIME_WAIT; a
    live listener still conflicts); UDP must not, or two binds would both succeed.
    """
    fam = family_of(fwd[1])
    kind = _socket.SOCK_STREAM if fwd[0] == "tcp" else _socket.SOCK_DGRAM
    try:
        sock = _socket.socket(fam, kind | _socket.SOCK_CLOEXEC)
    except OSError as err:
        if fam == _socket.AF_INET6 and err.errno in (97, 93):  # EAFNOSUPPORT, EPROTONOSUPPORT
            return None
        raise
    try:
        if fam == _socket.AF_INET6:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
        if kind == _socket.SOCK_STREAM:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind((fwd[1], fwd[2]))
        if kind == _socket.SOCK_STREAM:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


# -- control messages ---------------------------------------------------------------
def encode_request(op: str, owner: str = "-", serve: bool = True, last: bool = True,
                   forwards: list[Fwd] | tuple = ()) -> bytes:
    if op not in OPS:
        raise WireError(f"unknown op: {op}")
    lines = [f"{op} {check_owner(owner)} {int(serve)} {int(last)}"]
    lines += [" ".join(str(x) for x in check_forward(f)) for f in forwards]
    data = "\n".join(lines).encode()
    if len(data) > MAX_MSG:
        raise WireError("message too long")
    return data


def decode_request(data: bytes) -> tuple[str, str, bool, bool, list[Fwd]]:
    """-> (op, owner, serve, last, forwards); WireError if anything is malformed."""
    try:
        lines = data.decode().split("\n")
    except UnicodeDecodeError as err:
        raise WireError("message is not utf-8") from err
    head = lines[0].split(" ")
    if len(head) != 4 or head[0] not in OPS or head[2] not in "01" or head[3] not in "01" \
            or len(head[2]) != 1 or len(head[3]) != 1:
        raise WireError(f"malformed header: {lines[0][:80]!r}")
    forwards = [check_forward(line.split(" ")) for line in lines[1:]]
    return head[0], check_owner(head[1]), head[2] == "1", head[3] == "1", forwards


def split_publish(owner: str, forwards: list[Fwd], serve: bool,
                  max_fds: int = MAX_FDS) -> list[tuple[bytes, range]]:
    """The packets of one publish: (message, indexes of the fds it carries)."""
    chunks = [range(i, min(i + max_fds, len(forwards)))
              for i in range(0, len(forwards), max_fds)] or [range(0, 0)]
    return [(encode_request("publish", owner, serve, idx is chunks[-1],
                            [forwards[i] for i in idx]), idx) for idx in chunks]


def encode_reply(ok: bool, message: str = "", detail: list[str] | tuple = ()) -> bytes:
    head = "ok" if ok else "err " + message.replace("\n", " ")
    return "\n".join([head, *detail]).encode()


def decode_reply(data: bytes) -> tuple[bool, str, list[str]]:
    """-> (ok, error message, detail lines)."""
    if not data:
        raise WireError("empty reply")
    head, *detail = data.decode(errors="replace").split("\n")
    if head == "ok":
        return True, "", detail
    if head.startswith("err "):
        return False, head[4:], detail
    raise WireError(f"malformed reply: {head[:80]!r}")


# -- the table file ----------------------------------------------------------------
Table = dict[str, list[tuple[Fwd, bool]]]     # owner -> [(forward, serve)]
_KEYS = ("proto", "host_ip", "host_port", "container_ip", "container_port")


def encode_table(table: Table) -> str:
    """JSON by hand (values are validated, so only strings need quoting)."""
    q = _json.encode_basestring_ascii
    owners = []
    for owner, entries in sorted(table.items()):
        items = ",\n".join(
            "        {" + ", ".join(f"{q(k)}: {q(v) if isinstance(v, str) else int(v)}"
                                  for k, v in zip(_KEYS, fwd))
            + f', "serve": {"true" if serve else "false"}}}' for fwd, serve in entries)
        owners.append(f"    {q(owner)}: [\n{items}\n    ]" if items else f"    {q(owner)}: []")
    body = ",\n".join(owners)
    return '{"owners": {\n' + body + ("\n" if body else "") + "}}\n"


def decode_table(text: str) -> Table:
    import json  # only a restarted proxy (or a client after a kill) reads the table
    try:
        doc = json.loads(text)
        table: Table = {}
        for owner, entries in doc["owners"].items():
            table[check_owner(owner)] = [
                (check_forward([e[k] for k in _KEYS]), e["serve"] is True) for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise WireError(f"malformed proxy table: {err}") from err
    return table
