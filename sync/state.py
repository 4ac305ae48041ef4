"""What the cloud was last told, so a run pushes only what changed since.

The state file keeps each synced user's profile as sent; PINs and cards only as keyed hashes (the
key is in the same file, which is readable by the tool's account only). It is replaced atomically
after the cloud confirmed a run, and locked while a run is under way.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sync.records import DirectoryUser

VERSION = 1


class StateError(Exception):
    """The state file is unreadable, or another run holds it."""


@dataclass(frozen=True)
class Synced:
    """A user as the cloud was last told; pin/cards are keyed hashes (None: not mapped)."""

    login: str
    email: str = ""
    full_name: str = ""
    department: str = ""
    pin: str | None = None
    cards: str | None = None
    disabled: bool = False

    def disabled_copy(self) -> Synced:
        return replace(self, disabled=True)


@dataclass
class State:
    path: Path
    key: bytes
    users: dict[str, Synced]
    last_request_id: str = ""

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, secrets.token_bytes(32), {})
        except (OSError, ValueError) as exc:
            raise StateError(
                f"the state file {path} is unreadable ({exc}); move it away to start with a "
                "full sync"
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise StateError(f"the state file {path} is not a version {VERSION} state file")
        try:
            users = {k: Synced(**v) for k, v in raw["users"].items()}
            return cls(path, bytes.fromhex(raw["key"]), users, raw.get("last_request_id", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"the state file {path} is damaged ({exc})") from None

    @property
    def empty(self) -> bool:
        return not self.users

    def synced(self, user: DirectoryUser, before: Synced | None) -> Synced:
        """What the state will say once user is applied; an unusable PIN keeps the old one."""
        pin = before.pin if before is not None else None
        if user.pin is not None:
            pin = self._digest("pin", user.pin) if user.pin else ""
        cards = None if user.cards is None else self._digest("cards", "\n".join(user.cards))
        return Synced(
            login=user.login,
            email=user.email,
            full_name=user.full_name,
            department=user.department,
            pin=pin,
            cards=cards,
            disabled=user.disabled,
        )

    def save(self) -> None:
        data: dict[str, Any] = {
            "version": VERSION,
            "key": self.key.hex(),
            "last_request_id": self.last_request_id,
            "users": {k: asdict(v) for k, v in sorted(self.users.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _digest(self, what: str, value: str) -> str:
        return hmac.new(self.key, f"{what}\0{value}".encode(), hashlib.sha256).hexdigest()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Holds the state's lock file: two runs on one state would each push the same changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(f"another printfabric-sync run holds {path}") from None
        yield
    finally:
        os.close(fd)
