"""Where the client keeps its login (config) and the local printer's queue (state)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClientPaths:
    """config: session.json (0600); state: serve-printer's queue and certificate."""

    config: Path
    state: Path

    @property
    def session_file(self) -> Path:
        return self.config / "session.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientPaths:
        """PRINTFABRIC_CONFIG_DIR / PRINTFABRIC_STATE_DIR, else the XDG base directories."""
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        state_home = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state")
        return cls(
            config=Path(env.get("PRINTFABRIC_CONFIG_DIR") or config_home / "printfabric"),
            state=Path(env.get("PRINTFABRIC_STATE_DIR") or state_home / "printfabric"),
        )


def private_dir(path: Path) -> Path:
    """path as a folder only its owner can enter (made if missing, tightened if not)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path
