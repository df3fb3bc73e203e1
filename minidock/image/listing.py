"""The rows of `minidock images`: one per tag, `<none>` for untagged images (pure)."""

from __future__ import annotations

from datetime import datetime
from minidock.hints import Any

from minidock.image.humanize import ago, human_size

HEADER = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]


def _matches(tag: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    repo, _, tg = tag.rpartition(":")
    want_repo, colon, want_tag = pattern.rpartition(":") if ":" in pattern.rsplit("/", 1)[-1] \
        else (pattern, "", "")
    return repo == want_repo and (not colon or tg == want_tag)


def image_rows(images: list[tuple[str, dict[str, Any]]], pattern: str | None = None,
               no_trunc: bool = False, now: datetime | None = None
               ) -> tuple[list[str], list[list[str]]]:
    """(header, rows) for `images [REPOSITORY[:TAG]]`, newest image first."""
    rows = []
    for image_id, doc in images:
        shown = f"sha256:{image_id}" if no_trunc else image_id[:12]
        tail = [shown, ago(doc.get("Created") or "", now), human_size(doc.get("Size") or 0)]
        tags = doc.get("RepoTags") or []
        if not tags and not pattern:
            rows.append(["<none>", "<none>", *tail])
        for tag in tags:
            if _matches(tag, pattern):
                repo, _, tg = tag.rpartition(":")
                rows.append([repo, tg, *tail])
    return HEADER, rows
