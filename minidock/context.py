"""Where minidock keeps things, resolved once per CLI call from flags and environment.

`--root` / MINIDOCK_ROOT (default /var/lib/minidock) holds persistent state;
`--exec-root` / MINIDOCK_EXEC_ROOT (default /run/minidock) holds runtime state;
`--config` / MINIDOCK_CONFIG (default <root>/daemon.json) holds daemon options.
The store and the daemon config are opened lazily: commands that need neither
(help, version) pay nothing.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from typing import Any

    from minidock.store import Store

# A container record: Docker's inspect document (runtime/container.py), plus private
# keys starting with "_" ("Any" as a string: typing is not imported at run time, see hints.py).
Container = dict[str, "Any"]

DEFAULT_ROOT = "/var/lib/minidock"
DEFAULT_EXEC_ROOT = "/run/minidock"


class Context:
    """Paths of one CLI call; a plain class (dataclasses costs ~10 ms of imports)."""

    def __init__(self, root: str = DEFAULT_ROOT, exec_root: str = DEFAULT_EXEC_ROOT,
                 config_path: str | None = None) -> None:
        self.root = root
        self.exec_root = exec_root
        self.config_path = config_path
        self._store: "Store | None" = None
        self._config: Any = None

    def __repr__(self) -> str:
        return f"Context(root={self.root!r}, exec_root={self.exec_root!r})"

    @classmethod
    def from_env(cls, root: str | None = None, exec_root: str | None = None,
                 config: str | None = None) -> "Context":
        return cls(
            root=os.path.abspath(root or os.environ.get("MINIDOCK_ROOT") or DEFAULT_ROOT),
            exec_root=os.path.abspath(
                exec_root or os.environ.get("MINIDOCK_EXEC_ROOT") or DEFAULT_EXEC_ROOT),
            config_path=config or os.environ.get("MINIDOCK_CONFIG"),
        )

    @property
    def store(self) -> "Store":
        if self._store is None:
            from minidock.store import Store
            self._store = Store(self.root)
        return self._store

    @property
    def config(self) -> Any:
        """The validated DaemonConfig (config.py)."""
        if self._config is None:
            from minidock.config import load_config
            self._config = load_config(self.daemon_json)
        return self._config

    @property
    def daemon_json(self) -> str:
        return self.config_path or os.path.join(self.root, "daemon.json")

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    def run_dir(self, cid: str) -> str:
        return os.path.join(self.exec_root, "containers", cid)

    def netns_dir(self) -> str:
        return os.path.join(self.exec_root, "netns")

    def layers_dir(self) -> str:
        return os.path.join(self.root, "images", "layers")
