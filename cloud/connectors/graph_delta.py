"""Reading Microsoft Graph's /users/delta: every page of one round, throttling honoured."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from cloud.connectors.entra_token import network_reason
from cloud.connectors.errors import AzureAdRefused, AzureAdUnavailable, DeltaExpired

log = logging.getLogger(__name__)

# Graph answers these when it is busy; 429 and 503 come with Retry-After.
_RETRYABLE = frozenset({429, 500, 502, 503, 504})
# Graph's words for a delta link it no longer honours (410 Gone, or a 400 with these codes).
_EXPIRED_CODES = frozenset({"syncStateNotFound", "syncStateInvalid", "resyncRequired"})


@dataclass(frozen=True)
class GraphLimits:
    """How patient a round is with Graph."""

    timeout: float = 30.0
    # Tries of one URL (throttled, 5xx, network errors) before the round fails.
    attempts: int = 6
    # Wait before a retry that Graph gave no Retry-After for: backoff, 2*backoff, 4*... capped.
    backoff: float = 1.0
    max_backoff: float = 30.0
    # A Retry-After longer than this fails the round at once; the schedule tries again later.
    max_retry_after: float = 120.0


@dataclass
class DeltaRound:
    """Everything one round read: the users (in Graph's order) and where the next round starts."""

    items: list[dict[str, Any]] = field(default_factory=list)
    delta_link: str = ""
    pages: int = 0
    retries: int = 0


def graph_ssl_context(ca_file: str) -> ssl.SSLContext:
    """TLS >= 1.2 trusting ca_file, or the system's trust store when it is empty."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def initial_delta_url(graph_url: str, select: list[str]) -> str:
    # $select goes on the first request only: Graph keeps it in the links it returns.
    return f"{graph_url.rstrip('/')}/users/delta?$select={quote(','.join(select), safe=',')}"


class GraphReader:
    def __init__(
        self,
        client: httpx.AsyncClient,
        token: str,
        graph_url: str,
        limits: GraphLimits,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.token = token
        self.origin = _origin(graph_url)
        self.limits = limits
        self.sleep = sleep

    async def read_round(self, url: str) -> DeltaRound:
        """Follows @odata.nextLink from url to the @odata.deltaLink; DeltaExpired when Graph no
        longer knows url (a stored delta link), AzureAd* errors for anything else."""
        result = DeltaRound()
        while True:
            page = await self._get_json(url, result)
            result.pages += 1
            values = page.get("value")
            if not isinstance(values, list) or not all(
                isinstance(v, dict) and isinstance(v.get("id"), str) for v in values
            ):
                raise AzureAdUnavailable(
                    f"Graph sent page {result.pages} without a list of users with ids",
                    reason="GRAPH_BAD_PAGE",
                )
            result.items.extend(values)
            next_link = page.get("@odata.nextLink")
            delta_link = page.get("@odata.deltaLink")
            if isinstance(next_link, str) and next_link:
                url = self._own_link(next_link)
            elif isinstance(delta_link, str) and delta_link:
                result.delta_link = self._own_link(delta_link)
                return result
            else:
                raise AzureAdUnavailable(
                    f"Graph sent page {result.pages} with neither @odata.nextLink nor"
                    " @odata.deltaLink",
                    reason="GRAPH_BAD_PAGE",
                )

    def _own_link(self, link: str) -> str:
        # The bearer token goes to Graph only, whatever a page says.
        if _origin(link) != self.origin:
            raise AzureAdUnavailable(
                f"Graph sent a link to another server ({_origin(link)}); not followed",
                reason="GRAPH_BAD_PAGE",
            )
        return link

    async def _get_json(self, url: str, result: DeltaRound) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        page_no = result.pages + 1
        for attempt in range(1, self.limits.attempts + 1):
            last = attempt == self.limits.attempts
            try:
                response = await self.client.get(url, headers=headers)
            except httpx.TransportError as exc:
                reason = network_reason(exc)
                if last:
                    raise AzureAdUnavailable(
                        f"cannot reach Graph at {self.origin} (page {page_no}): {reason}",
                        reason="GRAPH_UNREACHABLE",
                    ) from exc
                wait = self._backoff(attempt)
                log.warning("Graph page %d: %s; retrying in %.1f s", page_no, reason, wait)
            else:
                if response.status_code == 200:
                    return _json_object(response, page_no)
                _raise_unless_retryable(response, page_no)
                wait = self._retry_wait(response, attempt, page_no)
                if last:
                    raise AzureAdUnavailable(
                        f"Graph answered page {page_no} with HTTP {response.status_code}"
                        f" {_error_text(response)} {attempt} times; the round is tried again at"
                        " the next run",
                        reason="GRAPH_FAILED",
                    )
                log.warning(
                    "Graph answered page %d with HTTP %d; retrying the same URL in %.1f s"
                    " (attempt %d of %d)",
                    page_no,
                    response.status_code,
                    wait,
                    attempt,
                    self.limits.attempts,
                )
            result.retries += 1
            await self.sleep(wait)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(self.limits.backoff * 2.0 ** (attempt - 1), self.limits.max_backoff)

    def _retry_wait(self, response: httpx.Response, attempt: int, page_no: int) -> float:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return self._backoff(attempt)
        if retry_after > self.limits.max_retry_after:
            raise AzureAdUnavailable(
                f"Graph throttled page {page_no} for {retry_after:.0f} s, longer than the"
                f" {self.limits.max_retry_after:.0f} s a round waits; it is tried again at the"
                " next run",
                reason="GRAPH_THROTTLED",
            )
        return retry_after


def _raise_unless_retryable(response: httpx.Response, page_no: int) -> None:
    status = response.status_code
    if status in _RETRYABLE:
        return
    code = _error_code(response)
    if status == 410 or code in _EXPIRED_CODES:
        raise DeltaExpired(f"{status} {code}")
    text = _error_text(response)
    if status == 401:
        raise AzureAdRefused(
            f"Graph refused the access token (HTTP 401 {text})", reason="GRAPH_UNAUTHENTICATED"
        )
    if status == 403:
        raise AzureAdRefused(
            f"Graph refused to list users (HTTP 403 {text}): the app needs the application"
            " permission User.Read.All with admin consent",
            reason="GRAPH_PERMISSION_DENIED",
        )
    if status == 400:
        # Typically a mapped property Graph does not know.
        raise AzureAdRefused(
            f"Graph refused the query (HTTP 400 {text}); check the mapped attributes"
            " (azure-ad set --login-attribute/--pin-attribute/--card-attribute)",
            reason="GRAPH_BAD_QUERY",
        )
    raise AzureAdUnavailable(
        f"Graph answered page {page_no} with HTTP {status} {text}", reason="GRAPH_FAILED"
    )


def _json_object(response: httpx.Response, page_no: int) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise AzureAdUnavailable(
            f"Graph sent page {page_no} that is not a JSON object", reason="GRAPH_BAD_PAGE"
        )
    return data


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _error_code(response: httpx.Response) -> str:
    return str(_error(response).get("code") or "")


def _error_text(response: httpx.Response) -> str:
    error = _error(response)
    code, message = str(error.get("code") or ""), str(error.get("message") or "")
    text = ": ".join(p for p in (code, message) if p)
    return f"({text[:300]})" if text else ""


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
