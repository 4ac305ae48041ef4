"""The gateway's workstation API (docs/client-api.md) as async calls, errors as ClientError.

`Gateway` speaks to one gateway URL; `Account` adds the saved session: it hands out a fresh
access token (refreshing it, under the session lock, before it expires) and retries a call once
with a refreshed token when the gateway says the token is no longer good.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from client.errors import (
    ClientError,
    DocumentError,
    LoginRequired,
    NotFound,
    Refused,
    Unreachable,
)
from client.session import Session, SessionStore

T = TypeVar("T")
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
# Reasons that mean "this document cannot be printed there", whatever the HTTP status.
_DOCUMENT_REASONS = frozenset({"UNSUPPORTED_FORMAT", "JOB_TOO_LARGE", "EMPTY_DOCUMENT"})
LOGIN_AGAIN = "run `printfabric login` again"


def ssl_context(ca_cert: str) -> ssl.SSLContext:
    """Verifies against the system's CAs and ca_cert (if any); TLS 1.2 at least."""
    context = ssl.create_default_context()
    try:
        if ca_cert:
            context.load_verify_locations(cafile=ca_cert)
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(f"cannot read the CA certificate {ca_cert}: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def transport_error(exc: Exception, where: str) -> ClientError:
    """A connection-level failure as the error a person can act on."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return Unreachable(
            f"{where} has a certificate this computer does not trust ({text}); "
            "log in with --ca FILE naming the CA that signed it"
        )
    return Unreachable(f"cannot reach {where}: {text}")


def http_error(reply: httpx.Response, body: bytes) -> ClientError:
    """The ClientError for a gateway's JSON error answer."""
    message, reason = f"HTTP {reply.status_code}", ""
    try:
        data = json.loads(body)
        message, reason = str(data.get("error") or message), str(data.get("reason") or "")
    except ValueError:
        if body:
            message = f"{message}: {body[:200].decode('utf-8', 'replace')}"
    status = reply.status_code
    if reason in _DOCUMENT_REASONS or status == 413:
        return DocumentError(message, reason)
    if status == 401:
        return LoginRequired(f"{message}: {LOGIN_AGAIN}", reason or "UNAUTHENTICATED")
    if status == 404:
        return NotFound(message, reason)
    if status in (403, 409, 429):
        retry = reply.headers.get("retry-after")
        return Refused(f"{message} (try again in {retry} s)" if retry else message, reason)
    if status in (502, 503, 504):
        return Unreachable(message, reason)
    return ClientError(message, reason)


class Gateway:
    """JSON calls to one gateway; bearer is the access token for the calls that need one."""

    def __init__(self, url: str, ca_cert: str = "") -> None:
        self.url = url.rstrip("/")
        self.ssl = ssl_context(ca_cert)
        self.http = httpx.AsyncClient(
            base_url=f"{self.url}/api/v1", verify=self.ssl, timeout=TIMEOUT
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        bearer: str = "",
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        read_seconds: float | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            reply = await self.http.request(
                method,
                path,
                json=body,
                params=params,
                headers=headers,
                timeout=httpx.Timeout(read_seconds, connect=15.0) if read_seconds else TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, f"the gateway {self.url}") from exc
        if reply.status_code >= 300:
            raise http_error(reply, reply.content)
        try:
            return reply.json()
        except ValueError as exc:
            raise ClientError(f"the gateway {self.url} answered something not JSON") from exc

    async def login(self, company: str, login: str, password: str) -> dict[str, Any]:
        body = {"company": company, "login": login, "password": password}
        try:
            answer: dict[str, Any] = await self.call("POST", "/login", body=body)
        except LoginRequired as exc:
            raise LoginRequired(exc.message.removesuffix(f": {LOGIN_AGAIN}"), exc.reason) from None
        return answer

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.call(
            "POST", "/refresh", body={"refresh_token": refresh_token}
        )
        return answer

    async def logout(self, refresh_token: str) -> None:
        await self.call("POST", "/logout", body={"refresh_token": refresh_token})


class Account:
    """The saved session with its gateway: authenticated calls with a token kept fresh."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.session = store.load()
        self.gateway = Gateway(self.session.gateway_url, self.session.ca_cert)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.http.aclose()

    @property
    def ssl(self) -> ssl.SSLContext:
        return self.gateway.ssl

    async def token(self, force: bool = False) -> str:
        """A usable access token; refreshes first when it is (nearly) expired or force is set."""
        if not force and self.session.fresh():
            return self.session.access_token
        stale = self.session.access_token
        async with self.store.locked():
            current = self.store.load()
            if current.access_token != stale and current.fresh():
                # Another process refreshed while we waited for the lock.
                self.session = current
                return current.access_token
            if current.refresh_expires <= time.time():
                raise LoginRequired(f"your login has expired: {LOGIN_AGAIN}", "SESSION_EXPIRED")
            try:
                tokens = await self.gateway.refresh(current.refresh_token)
            except LoginRequired:
                raise LoginRequired(
                    f"your login has expired or was ended: {LOGIN_AGAIN}", "SESSION_EXPIRED"
                ) from None
            self.session = current.with_tokens(tokens)
            self.store.save(self.session)
        return self.session.access_token

    async def authorized(self, call: Callable[[str], Awaitable[T]]) -> T:
        """call(token); once more with a refreshed token if the gateway refused the first."""
        token = await self.token()
        try:
            return await call(token)
        except LoginRequired as exc:
            if exc.reason == "SESSION_EXPIRED":
                raise
        return await call(await self.token(force=True))

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.authorized(
            lambda t: self.gateway.call("GET", path, bearer=t, params=params)
        )

    async def post(
        self, path: str, body: dict[str, Any] | None = None, read_seconds: float | None = None
    ) -> Any:
        return await self.authorized(
            lambda t: self.gateway.call(
                "POST", path, bearer=t, body=body or {}, read_seconds=read_seconds
            )
        )

    async def printers(self) -> list[dict[str, Any]]:
        answer = await self.get("/printers")
        return list(answer["printers"])

    async def printer(self, name: str) -> dict[str, Any]:
        return choose_printer(await self.printers(), name)

    async def jobs(self, states: list[str]) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        token = ""
        while True:
            params: dict[str, Any] = {"page_size": 500, "page_token": token}
            if states:
                params["state"] = states
            answer = await self.get("/jobs", params)
            jobs.extend(answer["jobs"])
            token = answer.get("next_page_token") or ""
            if not token:
                return jobs

    async def job(self, ref: str) -> dict[str, Any]:
        answer = await self.get(f"/jobs/{quote(ref, safe='')}")
        return dict(answer["job"])

    async def cancel(self, ref: str) -> dict[str, Any]:
        answer = await self.post(f"/jobs/{quote(ref, safe='')}/cancel")
        return dict(answer["job"])


def choose_printer(printers: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The printer named wanted, or the user's only printer when none is named."""
    names = ", ".join(p["name"] for p in printers) or "none"
    if not wanted:
        if len(printers) == 1:
            return printers[0]
        raise ClientError(
            f"say which printer with --printer (or PRINTFABRIC_PRINTER); yours: {names}",
            "NO_PRINTER",
        )
    for printer in printers:
        if printer["name"] == wanted.lower() or printer["id"] == wanted:
            return printer
    raise NotFound(f"there is no printer {wanted!r} for you (yours: {names})", "UNKNOWN_QUEUE")


def new_session(gateway: Gateway, company: str, ca_cert: str, answer: dict[str, Any]) -> Session:
    """The Session a login answer makes."""
    user = answer.get("user") or {}
    blank = Session(
        gateway_url=gateway.url,
        company=str(answer.get("company") or company),
        login=str(user.get("login", "")),
        full_name=str(user.get("full_name", "")),
        ca_cert=ca_cert,
        access_token="",
        access_expires=0.0,
        refresh_token="",
        refresh_expires=0.0,
    )
    return blank.with_tokens(answer)
