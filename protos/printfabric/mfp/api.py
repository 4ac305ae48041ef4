"""The MFP API as a FastAPI app under /mfp/v1 (OpenAPI at /mfp/v1/openapi.json).

Devices authenticate with `Authorization: Bearer <device_token>` from POST /mfp/v1/device/session;
calls made for a user add `X-User-Token` from POST /mfp/v1/users/authenticate. Every error is a
4xx/5xx with the JSON body `{"error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from printfabric.mfp import models
from printfabric.mfp.backend import DeviceContext, MfpBackend, UserContext
from printfabric.mfp.errors import MfpError

log = logging.getLogger(__name__)

PREFIX = "/mfp/v1"
MAX_JSON_BYTES = 64 << 10
DEFAULT_MAX_SCAN_BYTES = 2 << 30
_READ = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorBody} for status in (400, 401, 403, 404, 409, 413, 429, 503)
}


def _error_response(error: MfpError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


class BodyLimit:
    """Refuses request bodies over a limit (413, JSON body) before or while they arrive."""

    def __init__(self, app: ASGIApp, max_json_bytes: int, max_scan_bytes: int) -> None:
        self.app = app
        self.max_json = max_json_bytes
        self.max_scan = max_scan_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_scan if scope["path"] == f"{PREFIX}/scans" else self.max_json
        too_big = MfpError(
            413, "BODY_TOO_LARGE", f"the request body is over the limit of {limit} bytes"
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await _error_response(too_big)(scope, receive, send)
                    return
        seen = 0
        exceeded = False
        answered = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooBig(too_big)
            return message

        async def tracked(message: Message) -> None:
            nonlocal answered
            if exceeded:
                # The app answers the cut body its own way (a parse error): answer 413 instead.
                if not answered:
                    answered = True
                    await _error_response(too_big)(scope, receive, send)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not answered:
            await _error_response(too_big)(scope, receive, send)


class _TooBig(Exception):
    def __init__(self, error: MfpError) -> None:
        self.error = error


async def _device(authorization: Annotated[str | None, Header()] = None) -> DeviceContext:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MfpError(
            401,
            "NO_DEVICE_SESSION",
            "send 'Authorization: Bearer <device_token>' from POST /mfp/v1/device/session",
        )
    return DeviceContext(token.strip())


DeviceDep = Annotated[DeviceContext, Depends(_device)]


async def _user(
    request: Request, dev: DeviceDep, x_user_token: Annotated[str | None, Header()] = None
) -> UserContext:
    if not x_user_token:
        raise MfpError(
            401, "NO_USER_SESSION", "send 'X-User-Token' from POST /mfp/v1/users/authenticate"
        )
    backend: MfpBackend = request.app.state.mfp_backend
    return await backend.user(dev, x_user_token)


UserDep = Annotated[UserContext, Depends(_user)]


def build_mfp_app(
    backend: MfpBackend,
    *,
    title: str = "PrintFabric MFP API",
    max_json_bytes: int = MAX_JSON_BYTES,
    max_scan_bytes: int = DEFAULT_MAX_SCAN_BYTES,
) -> FastAPI:
    app = FastAPI(
        title=title,
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        description=__doc__,
    )

    @app.exception_handler(MfpError)
    async def _mfp_error(_request: Request, exc: MfpError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(MfpError(400, "INVALID_REQUEST", _summary(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return _error_response(MfpError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error("MFP API failure (incident %s)", incident, exc_info=exc)
        return _error_response(
            MfpError(500, "INTERNAL", f"internal error; incident {incident} is logged")
        )

    @app.post(f"{PREFIX}/device/session", responses=_ERRORS, tags=["device"])
    async def device_session(body: models.DeviceLogin) -> models.DeviceSession:
        """MFP authentication: Company Identification Code, serial number and access token."""
        return await backend.device_login(body)

    @app.get(f"{PREFIX}/device/config", responses=_ERRORS, tags=["device"])
    async def device_config(dev: DeviceDep) -> models.DeviceConfig:
        """The device's configuration for its embedded application."""
        return await backend.device_config(dev)

    @app.post(f"{PREFIX}/users/authenticate", responses=_ERRORS, tags=["users"])
    async def authenticate(dev: DeviceDep, body: models.UserLogin) -> models.UserSession:
        """User log-in by password, PIN or card. An unknown card answers 404 UNKNOWN_CARD with
        self_registration true; too many failed attempts answer 429 with Retry-After."""
        return await backend.authenticate(dev, body)

    @app.post(f"{PREFIX}/users/register-card", responses=_ERRORS, tags=["users"])
    async def register_card(dev: DeviceDep, body: models.CardRegistration) -> models.UserSession:
        """Self-registration: binds an unknown card to the user after a login + password check."""
        return await backend.register_card(dev, body)

    @app.get(f"{PREFIX}/jobs", responses=_ERRORS, tags=["jobs"])
    async def list_jobs(dev: DeviceDep, usr: UserDep) -> models.JobList:
        """The user's held jobs."""
        return models.JobList(jobs=await backend.list_jobs(dev, usr))

    @app.post(f"{PREFIX}/jobs/release", responses=_ERRORS, tags=["jobs"])
    async def release(dev: DeviceDep, usr: UserDep, body: models.ReleaseRequest) -> models.JobList:
        """Releases some (job_ids) or all of the user's held jobs to this device's printer."""
        if not body.job_ids and not body.all:
            raise MfpError(400, "INVALID_REQUEST", "name job_ids or set all to true")
        return models.JobList(jobs=await backend.release(dev, usr, body))

    @app.delete(f"{PREFIX}/jobs/{{job_id}}", responses=_ERRORS, tags=["jobs"])
    async def delete_job(dev: DeviceDep, usr: UserDep, job_id: str) -> models.JobInfo:
        """Deletes (cancels) one of the user's jobs."""
        return await backend.delete_job(dev, usr, job_id)

    @app.get(
        f"{PREFIX}/jobs/{{job_id}}/document",
        responses={
            **_ERRORS,
            200: {"content": {"application/octet-stream": {}}, "description": "The document"},
        },
        response_class=StreamingResponse,
        tags=["jobs"],
    )
    async def download(dev: DeviceDep, usr: UserDep, job_id: str) -> StreamingResponse:
        """The print document, streamed, for devices that pull the data themselves."""
        got = await backend.download(dev, usr, job_id)
        return StreamingResponse(
            got.chunks,
            media_type=got.media_type,
            headers={"Content-Length": str(got.job.size), "X-Job-Number": str(got.job.number)},
        )

    @app.get(f"{PREFIX}/scan/profiles", responses=_ERRORS, tags=["scan"])
    async def scan_profiles(dev: DeviceDep, usr: UserDep) -> models.ScanProfiles:
        """The user's scan destinations and profiles."""
        return models.ScanProfiles(destinations=await backend.scan_profiles(dev, usr))

    @app.post(f"{PREFIX}/scans", responses=_ERRORS, tags=["scan"])
    async def upload_scan(
        dev: DeviceDep,
        description: Annotated[str, Form(description="The description file (JSON)")],
        document: Annotated[UploadFile, File(description="The scanned document")],
    ) -> models.ScanReceipt:
        """A scanned document with its description file (multipart/form-data)."""
        try:
            described = models.ScanDescription.model_validate(json.loads(description))
        except (ValueError, ValidationError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else None
            message = _summary(errors) if errors else f"the description is not JSON: {exc}"
            raise MfpError(400, "INVALID_DESCRIPTION", message) from exc
        return await backend.upload_scan(dev, described, _read(document))

    @app.post(f"{PREFIX}/accounting", responses=_ERRORS, tags=["accounting"])
    async def accounting(dev: DeviceDep, body: models.AccountingRecord) -> models.AccountingReceipt:
        """One accounting record; a repeated id is stored once (duplicate: true)."""
        return await backend.record_usage(dev, body)

    app.state.mfp_backend = backend
    app.add_middleware(BodyLimit, max_json_bytes=max_json_bytes, max_scan_bytes=max_scan_bytes)
    return app


async def _read(upload: UploadFile) -> AsyncIterator[bytes]:
    try:
        while chunk := await upload.read(_READ):
            yield chunk
    finally:
        await upload.close()


def _summary(errors: Any) -> str:
    parts = []
    for error in list(errors or ())[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"
