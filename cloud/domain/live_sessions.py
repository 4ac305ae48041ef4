"""Sessions recently read as live, so an access token costs a database read once a second, not
once per call.

Every RPC checks that its access token's session is not revoked (Auth.check_session). A
session read as live is trusted for RECHECK_SECONDS; a revocation made in this process (a
logout, a reused refresh token, a disabled user or device) forgets its sessions at once and
again when its transaction commits, so it takes effect at once here (but for a check that was
reading the session row at that very moment) and within RECHECK_SECONDS in other cloud
processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

RECHECK_SECONDS = 1.0
MAX_ENTRIES = 100_000


class LiveSessions:
    def __init__(
        self,
        recheck_seconds: float = RECHECK_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recheck = recheck_seconds
        self._max = max_entries
        self._clock = clock
        # session id -> (when to read it again, principal id, tenant id)
        self._seen: dict[str, tuple[float, str, str]] = {}
        self._by_principal: dict[str, set[str]] = {}

    def tenant_of(self, session_id: str) -> str | None:
        """The tenant of a session read as live lately; None: read it from the database."""
        seen = self._seen.get(session_id)
        if seen is None:
            return None
        if seen[0] <= self._clock():
            self.forget_session(session_id)
            return None
        return seen[2]

    def remember(self, session_id: str, principal_id: str, tenant_id: str) -> None:
        now = self._clock()
        if len(self._seen) >= self._max:
            for stale in [k for k, v in self._seen.items() if v[0] <= now]:
                self.forget_session(stale)
            if len(self._seen) >= self._max:
                self._seen.clear()
                self._by_principal.clear()
        self._seen[session_id] = (now + self._recheck, principal_id, tenant_id)
        self._by_principal.setdefault(principal_id, set()).add(session_id)

    def forget_session(self, session_id: str) -> None:
        seen = self._seen.pop(session_id, None)
        if seen is None:
            return
        sessions = self._by_principal.get(seen[1])
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._by_principal[seen[1]]

    def forget_principal(self, principal_id: str) -> None:
        for session_id in self._by_principal.pop(principal_id, set()):
            self._seen.pop(session_id, None)
