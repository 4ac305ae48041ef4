"""The logged-in session: kept in session.json (0600), refreshed before the access token expires.

Several processes share one session (a `printfabric print` while `serve-printer` runs). A refresh
token works once, so refreshing happens under a lock on the session file, and whoever takes the
lock second finds the new tokens already there instead of spending the old refresh token again
(which would log the user out).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from client.errors import LoginRequired
from client.paths import ClientPaths, private_dir

# An access token with less than this left is refreshed before use.
REFRESH_MARGIN = 120.0


@dataclass(frozen=True)
class Session:
    gateway_url: str
    company: str
    login: str
    full_name: str
    # The CA file that verifies the gateway ("" trusts the system's CAs).
    ca_cert: str
    access_token: str
    access_expires: float
    refresh_token: str
    refresh_expires: float

    def fresh(self, now: float | None = None) -> bool:
        return self.access_expires - REFRESH_MARGIN > (time.time() if now is None else now)

    def with_tokens(self, tokens: dict[str, Any]) -> Session:
        """This session with the token pair of a login or refresh answer."""
        return replace(
            self,
            access_token=str(tokens["access_token"]),
            access_expires=_epoch(tokens["access_token_expire_time"]),
            refresh_token=str(tokens["refresh_token"]),
            refresh_expires=_epoch(tokens["refresh_token_expire_time"]),
        )


def _epoch(rfc3339: object) -> float:
    return datetime.fromisoformat(str(rfc3339).replace("Z", "+00:00")).timestamp()


class SessionStore:
    """session.json in the config folder, written atomically with mode 0600."""

    def __init__(self, paths: ClientPaths) -> None:
        self.paths = paths
        self.path = paths.session_file

    def load(self) -> Session:
        try:
            data = json.loads(self.path.read_text())
            names = {f.name for f in fields(Session)}
            return Session(**{k: v for k, v in data.items() if k in names})
        except FileNotFoundError:
            raise LoginRequired("not logged in: run `printfabric login` first") from None
        except (OSError, ValueError, TypeError) as exc:
            raise LoginRequired(
                f"the saved login in {self.path} cannot be read ({exc}): "
                "run `printfabric login` again"
            ) from None

    def save(self, session: Session) -> None:
        folder = private_dir(self.path.parent)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".session-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(session), fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Holds the session's lock file for a refresh (waiting for it off the event loop)."""
        folder = private_dir(self.path.parent)
        fd = os.open(folder / "session.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
