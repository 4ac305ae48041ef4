"""App-only access tokens for Microsoft Graph: msal's client-credentials flow, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from cloud.connectors.errors import AzureAdRefused, AzureAdUnavailable

log = logging.getLogger(__name__)

# Token errors an admin must fix (RFC 6749 section 5.2, plus Azure AD's own).
_REFUSALS = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "invalid_grant",
        "invalid_request",
        "invalid_scope",
        "invalid_tenant",
        "access_denied",
    }
)


@dataclass(frozen=True)
class AppCredentials:
    """An app registration's client credentials in one Azure AD tenant."""

    authority_host: str
    azure_tenant_id: str
    client_id: str
    client_secret: str
    graph_url: str
    ca_file: str = ""
    timeout: float = 30.0

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.azure_tenant_id}"

    @property
    def scope(self) -> str:
        """The Graph resource's app-only scope: its origin (no /v1.0) plus /.default."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


async def acquire_token(creds: AppCredentials) -> str:
    """An access token for Graph; AzureAdRefused or AzureAdUnavailable with a message to act on."""
    # msal is synchronous (requests): discovery and the token request block, so a thread.
    return await asyncio.to_thread(_acquire, creds)


def _acquire(creds: AppCredentials) -> str:
    # One app per round: a round's token is used at once, and the connection is closed after.
    with _Session(creds.ca_file, creds.timeout) as session:
        return _token(creds, session)


def _token(creds: AppCredentials, session: requests.Session) -> str:
    try:
        app = msal.ConfidentialClientApplication(
            creds.client_id,
            client_credential=creds.client_secret,
            authority=creds.authority,
            # The authority is the admin's choice (a national cloud, a test server): no lookup
            # at login.microsoftonline.com of whether Microsoft knows it.
            instance_discovery=False,
            http_client=session,
            token_cache=msal.TokenCache(),
        )
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[creds.scope])
    except ValueError as exc:
        # msal's words for an authority whose OpenID configuration is refused (unknown tenant).
        raise AzureAdRefused(
            f"Azure AD at {creds.authority_host} does not know the tenant"
            f" {creds.azure_tenant_id}: {_first_line(str(exc))}",
            reason="AZURE_AD_TENANT_UNKNOWN",
        ) from exc
    except OSError as exc:  # requests' errors are OSErrors too
        raise AzureAdUnavailable(
            f"cannot reach Azure AD at {creds.authority_host}: {network_reason(exc)}",
            reason="AZURE_AD_UNREACHABLE",
        ) from exc
    token = result.get("access_token")
    if isinstance(token, str) and token:
        return token
    error = str(result.get("error") or "no access_token in the answer")
    description = _first_line(str(result.get("error_description") or ""))
    message = f"Azure AD refused the token request for app {creds.client_id} ({error})"
    if description:
        message += f": {description}"
    if error == "invalid_client":
        message += "; check the client secret (printfabric-cloud azure-ad set)"
    log.warning("%s", message)
    if error in _REFUSALS:
        raise AzureAdRefused(message, reason="AZURE_AD_CREDENTIALS_REFUSED")
    raise AzureAdUnavailable(message, reason="AZURE_AD_TOKEN_FAILED")


class _Session(requests.Session):
    """requests as msal would set it up, except that the CA file goes with every request: a
    session-wide verify loses to REQUESTS_CA_BUNDLE in the environment (requests #3829)."""

    def __init__(self, ca_file: str, timeout: float) -> None:
        super().__init__()
        self.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
        self._pinned_verify: str | bool = ca_file or True
        self._timeout = timeout

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        kwargs["verify"] = self._pinned_verify
        return super().request(method, url, *args, **kwargs)


def network_reason(exc: BaseException) -> str:
    """The part of a requests/urllib3/httpx error a person can act on."""
    text = str(exc)
    for pattern in (
        r"\[Errno -?\d+\] [^'\")]*",
        r"certificate verify failed[^'\")(]*",
        r"[Tt]imed? ?out[^'\")]*",
    ):
        match = re.search(pattern, text)
        if match:
            return match.group(0).strip()
    return _first_line(text)[:300] or type(exc).__name__


def _first_line(text: str) -> str:
    # Azure AD descriptions continue with "Trace ID: ... Correlation ID: ..." lines.
    return text.strip().splitlines()[0] if text.strip() else ""
