"""Errors of the gateway's JSON endpoints (/api/v1, /blob/v1): `{"error": ..., "reason": ...}`.

One mapping takes the cloud's gRPC status to HTTP; the reason is the cloud's (its
`pf-error-reason` trailer, AIP-193 ErrorInfo.reason) where it gave one.
"""

from __future__ import annotations

import logging
import math

import grpc
from printfabric.mfp.errors import REASON_KEY, RETRY_AFTER_KEY, metadata_value
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}
# The HTTP meaning of a status, the reason of errors the gateway finds itself.
HTTP_REASON: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
}
BEARER_CHALLENGE = 'Bearer realm="PrintFabric"'


class ApiError(Exception):
    """An answer other than success: HTTP status, UPPER_SNAKE reason, a sentence to act on."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str = "",
        *,
        retry_after: int | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or HTTP_REASON.get(status, "ERROR")
        self.retry_after = retry_after
        # The request body was not read: close the connection rather than read it.
        self.close = close

    def response(self) -> JSONResponse:
        headers: dict[str, str] = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = BEARER_CHALLENGE
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.close:
            headers["Connection"] = "close"
        return JSONResponse(
            {"error": self.message, "reason": self.reason},
            status_code=self.status,
            headers=headers,
        )


def from_rpc(error: grpc.aio.AioRpcError) -> ApiError:
    """The cloud's refusal in HTTP terms (status, reason, message, Retry-After)."""
    code = error.code()
    status = HTTP_STATUS.get(code, 502)
    reason = metadata_value(error, REASON_KEY) or HTTP_REASON.get(status, code.name)
    message = error.details() or code.name.lower().replace("_", " ")
    if status >= 500:
        log.warning("cloud call failed: %s %s", code.name, error.details())
        message = f"the cloud is unreachable or failed; try again later ({message})"
    retry_after = None
    if status in (429, 503):
        retry = metadata_value(error, RETRY_AFTER_KEY)
        try:
            retry_after = max(1, math.ceil(float(retry))) if retry else None
        except (ValueError, OverflowError):
            retry_after = None
    return ApiError(status, message, reason, retry_after=retry_after)
