"""The one exception of printfabric.lpd: what went wrong, for a person and for a program."""

from __future__ import annotations


class LpdError(Exception):
    """An LPD exchange failed.

    `message` says what happened in a person's words ("the printer at 10.0.0.5:515 refused
    queue 'x' (negative acknowledgement 1)"); `reason` is an UPPER_SNAKE code for programs:
    BAD_QUEUE_NAME, BAD_JOB, BAD_CONTROL_FILE, NO_DOCUMENT, UNKNOWN_HOST, CONNECTION_REFUSED,
    UNREACHABLE, CONNECTION_LOST, TIMEOUT, QUEUE_REFUSED, CONTROL_FILE_REFUSED,
    DATA_FILE_REFUSED, REMOVE_REFUSED.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
