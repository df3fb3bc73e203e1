"""One bench run: its options and its engines, started on first use and kept for the run.

Starting dockerd and loading the image into each root costs seconds, so each engine is
made once per run and every benchmark removes its own containers when it is done.
A peer that is not installed or cannot start is recorded with the reason, and the
table says so instead of a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.engines import Docker, Engine, Minidock, Podman


@dataclass
class Session:
    quick: bool = False
    peers: tuple[str, ...] = ("docker", "podman")
    fleet: int = 0                  # minidock's fleet size (0: 3,000, --quick 30)
    peer_fleet: int = 0             # Docker's fleet size (0: 300, --quick 30)
    engines: dict[str, Engine] = field(default_factory=dict)

    def n(self, full: int, quick: int) -> int:
        """An iteration count: `full` normally, `quick` with --quick."""
        return quick if self.quick else full

    @property
    def minidock(self) -> Minidock:
        if "minidock" not in self.engines:
            md = Minidock()
            self.engines["minidock"] = md
            md.load_image()
        return self.engines["minidock"]  # type: ignore[return-value]

    def peer(self, name: str) -> Engine | None:
        """The running peer, or None (then `why(name)` says why)."""
        if name not in self.peers:
            return None
        if name not in self.engines:
            eng: Engine = Docker() if name == "docker" else Podman()
            self.engines[name] = eng
            if not eng.unavailable:
                eng.start()
            if not eng.unavailable and name == "docker":
                try:
                    eng.load_image()
                except Exception as err:
                    eng.unavailable = f"docker load failed: {err}"
        eng = self.engines[name]
        return None if eng.unavailable else eng

    def why(self, name: str) -> str:
        if name not in self.peers:
            return "not run"
        eng = self.engines.get(name)
        return eng.unavailable if eng else "not started"

    def peer_value(self, name: str, value: float | None) -> float | str:
        return value if value is not None else self.why(name)
