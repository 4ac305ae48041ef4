"""Errors of the MFP API: an HTTP status and a JSON body `{"error": {"code", "message", ...}}`."""

from __future__ import annotations

import math
from typing import Any

import grpc

REASON_KEY = "pf-error-reason"
RETRY_AFTER_KEY = "pf-retry-after"

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class MfpError(Exception):
    """An answer other than success, with a code a device can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after_seconds
        return {"error": error}

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after or 0))

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after_seconds)}


def metadata_value(error: grpc.aio.AioRpcError, key: str) -> str:
    """One trailing metadata value of a failed call ("" when absent)."""
    for k, v in error.trailing_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("utf-8", "replace")
    return ""


def from_grpc(error: grpc.aio.AioRpcError) -> MfpError:
    """The cloud's answer in the MFP API's terms (status, reason, message, retry-after)."""
    code = error.code()
    status = _HTTP_STATUS.get(code, 502)
    reason = metadata_value(error, REASON_KEY) or code.name
    message = error.details() or code.name.lower().replace("_", " ")
    retry = metadata_value(error, RETRY_AFTER_KEY)
    extra: dict[str, Any] = {}
    if reason == "UNKNOWN_CARD":
        extra["self_registration"] = True
    if status >= 502:
        message = f"the cloud is unreachable or failed: {message}"
    return MfpError(status, reason, message, retry_after=float(retry) if retry else None, **extra)
