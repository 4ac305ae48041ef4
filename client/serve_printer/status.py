"""How the link to PrintFabric is doing, as the forwarder last found it; the IPP side shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

OFFLINE_MESSAGE = "offline: kept on this computer, sent when PrintFabric is reachable"
LOGIN_MESSAGE = (
    "your PrintFabric login has ended: kept on this computer, sent once you log in again "
    "with `printfabric login`"
)


class LinkState(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    # The gateway cannot be reached: jobs stay queued and are retried.
    OFFLINE = "offline"
    # The session is missing, expired or was revoked: jobs wait for a new login.
    LOGIN = "login"


@dataclass
class Link:
    state: LinkState = LinkState.UNKNOWN
    # What the last failure said, for the log and printer-state-message.
    detail: str = ""
    since: float = field(default_factory=time.time)

    def set(self, state: LinkState, detail: str = "") -> bool:
        """Records the state; True if it changed (so that each change is logged once)."""
        self.detail = detail
        if state is self.state:
            return False
        self.state = state
        self.since = time.time()
        return True

    @property
    def message(self) -> str:
        """printer-state-message."""
        if self.state is LinkState.OFFLINE:
            return "Offline: jobs are kept on this computer and sent when PrintFabric is reachable"
        if self.state is LinkState.LOGIN:
            return "Log in again with `printfabric login`: jobs wait on this computer until then"
        return "Ready"
