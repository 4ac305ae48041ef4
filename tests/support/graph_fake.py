"""A loopback Azure AD + Microsoft Graph for the Azure AD sync tests, over real HTTPS.

It speaks what the connector uses of the documented protocols: the OpenID configuration msal
reads, the v2.0 token endpoint (client_credentials grant), and Graph's /v1.0/users/delta with
$select, paging by @odata.nextLink ($skiptoken) and delta rounds by @odata.deltaLink
($deltatoken). A delta round returns only the users changed since the token: new ones whole,
changed ones with their id and the changed properties, removed ones as {"id", "@removed"}.
Tests change the directory, arm throttling (429 + Retry-After) and page failures, and read the
requests it recorded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printfabric.https import listen_socket, serving
from printfabric.tls import ensure_dev_pki
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    at: float
    status: int = 0


@dataclass
class _Round:
    pages: list[list[dict[str, Any]]]
    select: list[str]
    upto: int


@dataclass
class GraphFake:
    folder: Path
    azure_tenant_id: str = "11111111-2222-3333-4444-555555555555"
    client_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    client_secret: str = "fake~client~secret"
    page_size: int = 2000
    port: int = 0
    # Object id -> every property of the user.
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tls = ensure_dev_pki(self.folder / "graph-tls", ("127.0.0.1", "localhost"))
        self._seq = 0
        self._created: dict[str, int] = {}
        # Object id -> property -> when it last changed.
        self._changed: dict[str, dict[str, int]] = {}
        self._removed: dict[str, int] = {}
        self._rounds: dict[str, _Round] = {}
        self._tokens: set[str] = set()
        self._expired_below = 0
        self._throttle: tuple[int, int] = (0, 0)
        self._failures: dict[int, tuple[int, int, bytes | None]] = {}

    # -- addresses ----------------------------------------------------------------------

    @property
    def authority_host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1.0"

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_cert

    # -- the directory ------------------------------------------------------------------

    def add_user(self, **properties: Any) -> str:
        object_id = str(properties.pop("id", uuid.uuid4()))
        self._seq += 1
        self.users[object_id] = {"id": object_id, "accountEnabled": True, **properties}
        self._created[object_id] = self._seq
        self._changed[object_id] = {}
        return object_id

    def add_users(self, count: int, domain: str = "contoso.test", start: int = 0) -> list[str]:
        return [
            self.add_user(
                userPrincipalName=f"user{i:05d}@{domain}",
                mail=f"user{i:05d}@mail.{domain}",
                displayName=f"User {i:05d}",
                department=f"Dept {i % 10}",
                jobTitle="Engineer",
                employeeId=f"{100000 + i}",
                onPremisesSamAccountName=f"user{i:05d}",
                onPremisesExtensionAttributes={
                    "extensionAttribute1": f"{700000 + i}",
                    "extensionAttribute2": None,
                },
            )
            for i in range(start, start + count)
        ]

    def update(self, object_id: str, **properties: Any) -> None:
        self._seq += 1
        self.users[object_id].update(properties)
        for name in properties:
            self._changed[object_id][name] = self._seq

    def disable(self, object_id: str) -> None:
        self.update(object_id, accountEnabled=False)

    def remove(self, object_id: str) -> None:
        self._seq += 1
        del self.users[object_id]
        self._removed[object_id] = self._seq

    def expire_delta_links(self) -> None:
        """Every delta link issued so far answers 410 Gone (syncStateNotFound)."""
        self._expired_below = self._seq + 1

    # -- faults -------------------------------------------------------------------------

    def throttle(self, count: int, retry_after: int) -> None:
        """The next count Graph requests answer 429 with Retry-After: retry_after."""
        self._throttle = (count, retry_after)

    def fail_page(
        self, page: int, status: int = 500, times: int = 1_000_000, body: bytes | None = None
    ) -> None:
        """Requests for page number page (1-based in a round) answer status (with body, e.g.
        200 and a body that is not JSON), times times."""
        self._failures[page] = (status, times, body)

    def graph_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v1.0/")]

    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/oauth2/v2.0/token")]

    # -- the protocol -------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
                Route("/v1.0/users/delta", self._delta),
            ]
        )

    def _record(self, request: Request, form: dict[str, str] | None = None) -> Recorded:
        entry = Recorded(
            request.method,
            request.url.path,
            dict(request.query_params),
            form or {},
            time.monotonic(),
        )
        self.requests.append(entry)
        return entry

    async def _discovery(self, request: Request) -> Response:
        entry = self._record(request)
        tenant = request.path_params["tenant"]
        if tenant != self.azure_tenant_id:
            return _answer(
                entry,
                400,
                _aad_error("invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found."),
            )
        base = f"{self.authority_host}/{tenant}"
        return _answer(
            entry,
            200,
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "id_token", "token"],
            },
        )

    async def _token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        entry = self._record(request, form)
        if form.get("grant_type") != "client_credentials":
            return _answer(entry, 400, _aad_error("unsupported_grant_type", "AADSTS70003"))
        if form.get("client_id") != self.client_id:
            return _answer(
                entry,
                400,
                _aad_error(
                    "unauthorized_client",
                    f"AADSTS700016: Application with identifier '{form.get('client_id')}' was"
                    " not found in the directory.",
                ),
            )
        if form.get("client_secret") != self.client_secret:
            return _answer(
                entry,
                401,
                _aad_error(
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being"
                    " sent in the request is the client secret value, not the client secret"
                    f" ID, for a secret added to app '{self.client_id}'.",
                ),
            )
        if form.get("scope") != f"{self.authority_host}/.default":
            return _answer(
                entry,
                400,
                _aad_error("invalid_scope", f"AADSTS1002012: bad scope {form.get('scope')}"),
            )
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        return _answer(
            entry,
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    async def _delta(self, request: Request) -> Response:
        entry = self._record(request)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self._tokens:
            return _answer(
                entry,
                401,
                _graph_error("InvalidAuthenticationToken", "Access token is empty or invalid."),
            )
        count, retry_after = self._throttle
        if count > 0:
            self._throttle = (count - 1, retry_after)
            response = _answer(
                entry, 429, _graph_error("TooManyRequests", "Too many requests; retry later.")
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        query = request.query_params
        if "$skiptoken" in query:
            key, _, index_text = query["$skiptoken"].rpartition(".")
            state = self._rounds.get(key)
            if state is None:
                return _answer(entry, 400, _graph_error("BadRequest", "unknown $skiptoken"))
            index = int(index_text)
        else:
            if "$deltatoken" in query:
                since = _decode(query["$deltatoken"])
                if since["seq"] < self._expired_below:
                    return _answer(
                        entry,
                        410,
                        _graph_error("syncStateNotFound", "The sync state is no longer valid."),
                    )
                select = list(since["select"])
                items = self._changes_since(int(since["seq"]), select)
            else:
                select = [s for s in query.get("$select", "").split(",") if s]
                items = [_selected(u, select) for u in self.users.values()]
            key = secrets.token_hex(8)
            pages = [items[i : i + self.page_size] for i in range(0, len(items), self.page_size)]
            state = _Round(pages or [[]], select, self._seq)
            self._rounds[key] = state
            index = 0
        failure = self._failures.get(index + 1)
        if failure is not None and failure[1] > 0:
            status, times, body = failure
            self._failures[index + 1] = (status, times - 1, body)
            if body is not None:
                entry.status = status
                return Response(body, status, media_type="application/json")
            return _answer(
                entry, status, _graph_error("serviceNotAvailable", "Service unavailable.")
            )
        page: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#users",
            "value": state.pages[index],
        }
        if index + 1 < len(state.pages):
            page["@odata.nextLink"] = f"{self.graph_url}/users/delta?$skiptoken={key}.{index + 1}"
        else:
            token = _encode({"seq": state.upto, "select": state.select})
            page["@odata.deltaLink"] = f"{self.graph_url}/users/delta?$deltatoken={token}"
        return _answer(entry, 200, page)

    def _changes_since(self, since: int, select: list[str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for object_id, user in self.users.items():
            if self._created[object_id] > since:
                items.append(_selected(user, select))
                continue
            changed = [
                name
                for name, seq in self._changed[object_id].items()
                if seq > since and (not select or name in select)
            ]
            if changed:
                items.append({"id": object_id, **{name: user.get(name) for name in changed}})
        for object_id, seq in self._removed.items():
            if seq > since and self._created[object_id] <= since:
                items.append({"id": object_id, "@removed": {"reason": "changed"}})
        return items


@contextlib.asynccontextmanager
async def graph_fake(folder: Path, **settings: Any) -> AsyncIterator[GraphFake]:
    """Serves a GraphFake on 127.0.0.1 (an ephemeral port) in this event loop."""
    fake = GraphFake(folder, **settings)
    sock = listen_socket("127.0.0.1", 0)
    fake.port = sock.getsockname()[1]
    async with serving(fake.app(), sock, fake.tls.cert, fake.tls.key, name="graph-fake"):
        yield fake


def _selected(user: dict[str, Any], select: list[str]) -> dict[str, Any]:
    if not select:
        return dict(user)
    return {"id": user["id"], **{name: user.get(name) for name in select if name != "id"}}


def _answer(entry: Recorded, status: int, body: dict[str, Any]) -> JSONResponse:
    entry.status = status
    return JSONResponse(body, status)


def _aad_error(error: str, description: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"{description}\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID:"
        f" {uuid.uuid4()}\r\nTimestamp: 2026-12-08 10:00:00Z",
        "error_codes": [int("".join(c for c in description.split(":")[0] if c.isdigit()) or 0)],
    }


def _graph_error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "innerError": {"request-id": str(uuid.uuid4())}}
    }


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return data
