"""The client's one exception tree, and the exit codes `printfabric` documents (README)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `printfabric` exits with; scripts can rely on these."""

    OK = 0
    # The server failed, or something unexpected happened.
    FAILED = 1
    # A bad command line (argparse's own code).
    USAGE = 2
    # Not logged in, the login expired or was revoked, or wrong credentials: log in again.
    LOGIN = 3
    # The file cannot be printed: unreadable, not a printable format, too large.
    DOCUMENT = 4
    # No such printer or job.
    NOT_FOUND = 5
    # The gateway, node or printer could not be reached (after retrying), or TLS failed.
    UNREACHABLE = 6
    # The server refused: no right to print, job already finished, too many attempts.
    REFUSED = 7


class ClientError(Exception):
    """A failure reported to the user in one line, with the exit code it maps to."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class LoginRequired(ClientError):
    exit_code = ExitCode.LOGIN


class DocumentError(ClientError):
    exit_code = ExitCode.DOCUMENT


class NotFound(ClientError):
    exit_code = ExitCode.NOT_FOUND


class Unreachable(ClientError):
    exit_code = ExitCode.UNREACHABLE


class Refused(ClientError):
    exit_code = ExitCode.REFUSED


class UsageError(ClientError):
    """A bad option value argparse could not catch (exit 2, as argparse's own errors)."""

    exit_code = ExitCode.USAGE
