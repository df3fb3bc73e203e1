"""Where Docker's reference outputs live: `shared/reference` beside the repo (as CI lays
it out), else the workplace's copy."""

from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [_REPO.parent / "shared" / "reference", Path("/work/shared/reference")]
REF = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])

# Docker 20.10's dual-stack outputs, captured for minidock (see that directory's README)
REF6 = _REPO / "tests" / "reference_data" / "docker-ipv6"
