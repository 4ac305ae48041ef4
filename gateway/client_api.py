"""The workstation API, `/api/v1` (docs/client-api.md): JSON over HTTPS, each call gRPC to the cloud.

The gateway keeps nothing: the caller's bearer token goes to the cloud as it came, and the cloud
decides. Input is checked here only as far as JSON goes (shape, types); a body that is not what
the API takes is a 400 with a sentence saying what is wrong, never a 500.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from printfabric.formats import FORMATS
from printfabric.request_body import RequestBody
from printfabric.v1 import auth_pb2, device_pb2, spool_pb2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import client_json
from gateway.api_errors import ApiError, from_rpc
from gateway.upstream import Upstream

log = logging.getLogger(__name__)

# No request of this API carries more (documents go to the upload URL, not here).
MAX_BODY = 64 << 10
_TIMEOUT = 30.0
# What an access token may look like on the wire (gRPC metadata takes printable ASCII only).
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_INT32_MAX = (1 << 31) - 1

Json = dict[str, Any]
Metadata = tuple[tuple[str, str], ...]
Handler = Callable[[Request], Awaitable[Json]]


def _endpoint(
    handler: Handler, *, refused_reason: str = ""
) -> Callable[[Request], Awaitable[Response]]:
    """A route: handler's JSON answer, or the error it raised as `{"error", "reason"}`.

    refused_reason replaces the cloud's reason when it refuses the caller (401): the API
    promises one reason per kind of refusal, whatever detail the cloud gave.
    """

    async def run(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request))
        except ApiError as exc:
            return exc.response()
        except ClientDisconnect:
            return Response(status_code=400, headers={"Connection": "close"})
        except grpc.aio.AioRpcError as exc:
            error = from_rpc(exc)
            if error.status == 401 and refused_reason:
                error.reason = refused_reason
            return error.response()
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return ApiError(500, "internal error of the gateway; it is logged").response()

    return run


async def _body(request: Request) -> Json:
    """The request's JSON object (400 when it is not one, 413 when it is too big)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise ApiError(413, f"a request body is at most {MAX_BODY} bytes", close=True)
    data = bytearray()
    body = RequestBody(request)
    async for chunk in body:
        data += chunk
        if len(data) > MAX_BODY:
            raise ApiError(413, f"a request body is at most {MAX_BODY} bytes", close=True)
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "the body is not JSON; send a JSON object") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "the body must be a JSON object")
    return parsed


def _text(body: Json, name: str, *, required: bool = False, limit: int = 1024) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name} is missing")
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON may carry lone surrogates ("\\ud800")
        raise ApiError(400, f"{name} is not valid Unicode text") from None
    if required and not value:
        raise ApiError(400, f"{name} is empty")
    if len(value) > limit:
        raise ApiError(400, f"{name} is longer than {limit} characters")
    return value


def _flag(body: Json, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false")
    return value


def _number(body: Json, name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"{name} must be a whole number")
    if not minimum <= value <= maximum:
        raise ApiError(400, f"{name} must be from {minimum} to {maximum}")
    return value


def _query_number(request: Request, name: str, *, maximum: int) -> int:
    value = request.query_params.get(name, "").strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()):
        raise ApiError(400, f"{name} must be a whole number")
    return min(int(value), maximum)


def _bearer(request: Request) -> Metadata:
    """The caller's access token as gRPC metadata; 401 without one."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        raise ApiError(401, "this call needs 'Authorization: Bearer <access_token>'; log in first")
    return (("authorization", f"Bearer {token}"),)


class ClientApi:
    """The /api/v1 routes, answered by gRPC calls through upstream's channel."""

    def __init__(self, upstream: Upstream, default_company: str) -> None:
        self.upstream = upstream
        self.default_company = default_company

    def app(self) -> Starlette:
        session = "UNAUTHENTICATED"

        def route(path: str, handler: Handler, method: str, refused: str = session) -> Route:
            return Route(path, _endpoint(handler, refused_reason=refused), methods=[method])

        async def not_found(request: Request, exc: Exception) -> Response:
            return ApiError(404, f"the API has nothing at {request.url.path}").response()

        async def not_allowed(request: Request, exc: Exception) -> Response:
            return ApiError(
                405, f"{request.method} is not allowed on {request.url.path}"
            ).response()

        return Starlette(
            routes=[
                # A wrong password keeps the cloud's reason (BAD_CREDENTIALS).
                route("/login", self.login, "POST", refused=""),
                route("/refresh", self.refresh, "POST", refused="SESSION_EXPIRED"),
                route("/logout", self.logout, "POST"),
                route("/printers", self.printers, "GET"),
                route("/jobs", self.jobs, "GET"),
                route("/jobs/{ref:str}", self.job, "GET"),
                route("/jobs/{ref:str}/cancel", self.cancel, "POST"),
                route("/uploads", self.create_upload, "POST"),
                route("/uploads/{upload_id:str}/commit", self.commit_upload, "POST"),
            ],
            exception_handlers={404: not_found, 405: not_allowed},
        )

    # Sessions -----------------------------------------------------------------------------

    async def login(self, request: Request) -> Json:
        body = await _body(request)
        company = _text(body, "company", limit=64).strip().upper() or self.default_company
        if not company:
            raise ApiError(400, "company is missing (this gateway has no default company)")
        login = _text(body, "login", required=True, limit=256)
        password = _text(body, "password", required=True, limit=1024)
        reply = await self.upstream.auth.AuthenticateUser(
            auth_pb2.AuthenticateUserRequest(
                company_code=company,
                credential=auth_pb2.UserCredential(
                    password=auth_pb2.PasswordCredential(login=login, password=password)
                ),
            ),
            timeout=_TIMEOUT,
        )
        return {
            "company": company,
            **client_json.tokens(reply.tokens),
            "user": client_json.user(reply.user),
        }

    async def refresh(self, request: Request) -> Json:
        token = _text(await _body(request), "refresh_token", required=True, limit=4096)
        reply = await self.upstream.auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=token), timeout=_TIMEOUT
        )
        return client_json.tokens(reply.tokens)

    async def logout(self, request: Request) -> Json:
        token = _text(await _body(request), "refresh_token", required=True, limit=4096)
        try:
            await self.upstream.auth.RevokeToken(
                auth_pb2.RevokeTokenRequest(refresh_token=token), timeout=_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            # Unknown, rotated or already revoked: either way this token opens nothing now.
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise
        return {}

    # Printers and jobs --------------------------------------------------------------------

    async def printers(self, request: Request) -> Json:
        reply = await self.upstream.devices.ListUserPrinters(
            device_pb2.ListUserPrintersRequest(), metadata=_bearer(request), timeout=_TIMEOUT
        )
        return {"printers": [client_json.printer(p) for p in reply.printers]}

    async def jobs(self, request: Request) -> Json:
        metadata = _bearer(request)
        query = request.query_params
        states = []
        for name in query.getlist("state"):
            state = client_json.JOB_STATES.get(name.strip().lower())
            if state is None:
                known = ", ".join(client_json.JOB_STATES)
                raise ApiError(400, f"state {name!r} is not one of {known}")
            states.append(state)
        page_size = _query_number(request, "page_size", maximum=10_000)
        reply = await self.upstream.spool.ListJobs(
            spool_pb2.ListJobsRequest(
                states=states,  # type: ignore[arg-type]
                page_size=page_size,
                page_token=query.get("page_token", ""),
            ),
            metadata=metadata,
            timeout=_TIMEOUT,
        )
        return {
            "jobs": [client_json.job(j) for j in reply.jobs],
            "next_page_token": reply.next_page_token,
        }

    async def _find(self, ref: str, metadata: Metadata) -> spool_pb2.Job:
        """The caller's job by its id or its number."""
        if ref.isascii() and ref.isdigit() and 0 < int(ref) <= _INT32_MAX:
            reply = await self.upstream.spool.ListJobs(
                spool_pb2.ListJobsRequest(number=int(ref), page_size=1),
                metadata=metadata,
                timeout=_TIMEOUT,
            )
            if not reply.jobs:
                raise ApiError(404, f"job {ref} not found", "UNKNOWN_JOB")
            found: spool_pb2.Job = reply.jobs[0]
            return found
        got = await self.upstream.spool.GetJob(
            spool_pb2.GetJobRequest(job_id=ref), metadata=metadata, timeout=_TIMEOUT
        )
        job: spool_pb2.Job = got.job
        return job

    async def job(self, request: Request) -> Json:
        job = await self._find(str(request.path_params["ref"]), _bearer(request))
        return {"job": client_json.job(job)}

    async def cancel(self, request: Request) -> Json:
        metadata = _bearer(request)
        job = await self._find(str(request.path_params["ref"]), metadata)
        reply = await self.upstream.spool.CancelJob(
            spool_pb2.CancelJobRequest(job_id=job.job_id), metadata=metadata, timeout=_TIMEOUT
        )
        return {"job": client_json.job(reply.job)}

    # Uploads straight to storage ----------------------------------------------------------

    async def create_upload(self, request: Request) -> Json:
        metadata = _bearer(request)
        body = await _body(request)
        mime = _text(body, "format", limit=128).strip().lower()
        document_format = FORMATS.get(mime or "application/octet-stream")
        if document_format is None:
            raise ApiError(
                400,
                f"format {mime} is not one PrintFabric prints; leave it empty to have it detected",
                "DOCUMENT_FORMAT_NOT_SUPPORTED",
            )
        header = spool_pb2.JobHeader(
            printer=_text(body, "printer", required=True, limit=128),
            title=_text(body, "title", limit=512),
            format=document_format,  # type: ignore[arg-type]
            options=spool_pb2.JobOptions(
                copies=_number(body, "copies", 1, minimum=1, maximum=_INT32_MAX),
                duplex=_flag(body, "duplex"),
                mono=_flag(body, "mono"),
            ),
            request_id=_text(body, "request_id", limit=128),
            origin=f"API {request.headers.get('user-agent', '')}".strip()[:256],
            size_hint=_number(body, "size", 0, minimum=0, maximum=(1 << 63) - 1),
        )
        made = await self.upstream.spool.CreateUploadUrl(
            spool_pb2.CreateUploadUrlRequest(header=header), metadata=metadata, timeout=_TIMEOUT
        )
        return client_json.upload(made)

    async def commit_upload(self, request: Request) -> Json:
        metadata = _bearer(request)
        reply = await self.upstream.spool.CommitUpload(
            spool_pb2.CommitUploadRequest(upload_id=str(request.path_params["upload_id"])),
            metadata=metadata,
            # Committing reads the whole document back (hash, pages): give big ones time.
            timeout=600,
        )
        return {"job": client_json.job(reply.job)}
