"""The cloud's exception tree: every domain error carries a code that transports map once."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    ABORTED = "ABORTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class CloudError(Exception):
    """Root of every error the cloud reports to a caller."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, reason: str = "", retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # UPPER_SNAKE machine-readable reason (AIP-193 ErrorInfo.reason).
        self.reason = reason or self.code.value
        # Whole seconds after which the same call may succeed (a lock or limit running out).
        self.retry_after = retry_after


class InvalidArgument(CloudError):
    code = ErrorCode.INVALID_ARGUMENT


class NotFound(CloudError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(CloudError):
    code = ErrorCode.ALREADY_EXISTS


class PermissionDenied(CloudError):
    code = ErrorCode.PERMISSION_DENIED


class Unauthenticated(CloudError):
    code = ErrorCode.UNAUTHENTICATED


class FailedPrecondition(CloudError):
    code = ErrorCode.FAILED_PRECONDITION


class ResourceExhausted(CloudError):
    code = ErrorCode.RESOURCE_EXHAUSTED


class TooLarge(ResourceExhausted):
    pass


class Unavailable(CloudError):
    code = ErrorCode.UNAVAILABLE


class Aborted(CloudError):
    code = ErrorCode.ABORTED
