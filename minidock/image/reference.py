"""Image references: what a user types (`busybox`, `docker.io/library/busybox:1`,
`localhost:5000/app:v2`, `sha256:<hex>`, an ID prefix) and its one canonical form.

Tags are kept in Docker's *familiar* form (`busybox:latest`, not
`docker.io/library/busybox:latest`) because that is what every Docker output shows
and what the tag claims in the store are keyed by. Pure: strings in, strings out.
"""

from __future__ import annotations

import re
from minidock.hints import NamedTuple

from minidock.errors import InvalidArgument

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?)"
_NAME_PATTERN = rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$"
_TAG_PATTERN = r"^[\w][\w.-]{0,127}$"
_HEX = frozenset("0123456789abcdef")


def _is_hex(text: str) -> bool:
    """1 to 64 lower-case hex digits (no regex: this runs on every `run`)."""
    return 0 < len(text) <= 64 and not set(text) - _HEX


def _match(pattern: str, text: str) -> bool:
    # re caches compiled patterns; compiling lazily keeps ~10 ms off every import
    return re.match(pattern, text) is not None
_DEFAULT_DOMAINS = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
DEFAULT_TAG = "latest"


class Ref(NamedTuple):
    """A tagged name in familiar form: `name` never carries docker.io/library."""

    name: str
    tag: str

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


def split_tag(ref: str) -> tuple[str, str | None]:
    """Split `name[:tag]`; a colon before the last slash belongs to a registry port."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, None


def familiar(name: str) -> str:
    """Drop Docker Hub's implicit domain and `library/` namespace."""
    for dom in _DEFAULT_DOMAINS:
        if name.startswith(dom):
            name = name[len(dom):]
            break
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/"):]
    return name


def parse(ref: str) -> Ref:
    """Parse a tagged reference; the tag defaults to `latest`.

    Digest references (`name@sha256:...`) are refused: minidock has no registry.
    """
    if not ref or "@" in ref:
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    name, tag = split_tag(ref)
    if tag is not None and not _match(_TAG_PATTERN, tag):
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    if not _match(_NAME_PATTERN, name):
        if _match(_NAME_PATTERN, name.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name ({name}) must be lowercase")
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    return Ref(familiar(name), tag or DEFAULT_TAG)


def try_parse(ref: str) -> Ref | None:
    """`parse`, or None when `ref` is not a valid tagged name."""
    try:
        return parse(ref)
    except InvalidArgument:
        return None


def id_of(ref: str) -> str | None:
    """The full 64-hex id when `ref` is `sha256:<64 hex>` or 64 hex, else None."""
    hexpart = ref[7:] if ref.startswith("sha256:") else ref
    if len(hexpart) == 64 and _is_hex(hexpart):
        return hexpart
    return None


def id_prefix(ref: str) -> str | None:
    """The hex prefix when `ref` looks like an ID prefix (`ab12`, `sha256:ab12`)."""
    hexpart = ref[7:] if ref.startswith("sha256:") else ref
    return hexpart if _is_hex(hexpart) else None


def display(ref: str) -> str:
    """How Docker names `ref` in "Unable to find image '...' locally"."""
    parsed = try_parse(ref)
    return str(parsed) if parsed else ref
