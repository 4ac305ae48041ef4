"""The Azure AD sync: a round reads Graph, then applies everything at once, then keeps its state.

A round (1) takes the tenant's lease, (2) gets an app-only token and reads every page of
/users/delta (from the stored delta link, else a full read), (3) plans the records, (4) applies
them with one sync_users call (one transaction, idempotent by a request id derived from what was
read) and (5) only then stores the new delta link and the users it read. A failure before (4)
applies nothing and keeps the old delta link; a failure between (4) and (5) is harmless: the
next round reads the same changes again from the old link and is answered, not re-applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.connectors import azure_ad_settings as store
from cloud.connectors.azure_records import AttributeMapping, KnownUser, RoundPlan, plan_round
from cloud.connectors.entra_token import AppCredentials, acquire_token
from cloud.connectors.errors import AzureAdRefused, AzureAdUnavailable, DeltaExpired
from cloud.connectors.graph_delta import (
    DeltaRound,
    GraphLimits,
    GraphReader,
    graph_ssl_context,
    initial_delta_url,
)
from cloud.connectors.sealing import SecretBox
from cloud.db.engine import run_to_completion
from cloud.db.models import AzureAdConnection, AzureAdUser
from cloud.domain.directory_sync import SyncHeader, SyncRecord, SyncSummary, sync_users
from cloud.domain.enums import PrincipalKind, UserSource
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime
from cloud.errors import CloudError

log = logging.getLogger(__name__)

# Problems kept in the stored last result (the count is always complete).
_STORED_PROBLEMS = 200
_CHUNK = 500


def connector_principal(tenant_id: str) -> Principal:
    """Who the audit log names for what the connector applies."""
    return Principal(
        kind=PrincipalKind.SYNC_AGENT, tenant_id=tenant_id, subject_id="azure-ad", session_id=""
    )


@dataclass
class RoundResult:
    """What one round did, as `azure-ad sync` prints it and `azure-ad status` shows it."""

    ok: bool = False
    full: bool = False
    users_read: int = 0
    pages: int = 0
    retries: int = 0
    created: int = 0
    updated: int = 0
    disabled: int = 0
    unchanged: int = 0
    removed: int = 0
    problem_count: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    directory_revision: int = 0
    started_at: str = ""
    finished_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AzureAdSync:
    def __init__(
        self,
        rt: Runtime,
        box: SecretBox,
        limits: GraphLimits | None = None,
        lease: timedelta = timedelta(minutes=30),
        owner: str = "",
    ) -> None:
        self.rt = rt
        self.box = box
        self.limits = limits or GraphLimits()
        self.lease = lease
        # Names this replica in lease_owner.
        self.owner = owner or f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"

    async def run_now(self, tenant_id: str) -> RoundResult:
        """Runs a round now, due or not (Aborted while another replica runs this tenant)."""
        row = await store.claim(self.rt, tenant_id, self.owner, self.lease, due_only=False)
        assert row is not None
        return await self._run_claimed(row)

    async def run_due(self) -> list[RoundResult]:
        """Runs every enabled tenant whose round is due and that no replica holds, one by one."""
        results = []
        while True:
            due = await store.due_tenants(self.rt, self.rt.clock())
            ran = 0
            for tenant_id in due:
                row = await store.claim(self.rt, tenant_id, self.owner, self.lease, due_only=True)
                if row is not None:
                    results.append(await self._run_claimed(row))
                    ran += 1
            if not ran:
                return results

    async def run_schedule(self, poll: timedelta) -> None:
        """The cloud server's loop: due rounds every poll, until cancelled."""
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("the Azure AD schedule failed; trying again in %s", poll)
            await asyncio.sleep(poll.total_seconds())

    async def _run_claimed(self, row: AzureAdConnection) -> RoundResult:
        started = self.rt.clock()
        result = RoundResult(started_at=started.isoformat())
        plan: _Applied | None = None
        try:
            plan = await self._round(row, result)
            result.ok = True
        except CloudError as exc:
            result.error = exc.message
        except Exception as exc:
            log.exception("the Azure AD round of tenant %s failed", row.tenant_id)
            result.error = f"the round failed unexpectedly: {type(exc).__name__}: {exc}"
        finally:
            if not result.ok and not result.error:
                result.error = "the round was interrupted (the cloud stopped); the next one resumes"
            result.finished_at = self.rt.clock().isoformat()
            try:
                await run_to_completion(self._finish(row, started, result, plan))
            except Exception:
                log.exception("could not record the Azure AD round of tenant %s", row.tenant_id)
        if result.error:
            log.warning("Azure AD sync of tenant %s failed: %s", row.tenant_id, result.error)
        else:
            log.info(
                "Azure AD sync of tenant %s: %s round, %d users in %d pages; created %d,"
                " updated %d, disabled %d, %d problems",
                row.tenant_id,
                "full" if result.full else "delta",
                result.users_read,
                result.pages,
                result.created,
                result.updated,
                result.disabled,
                result.problem_count,
            )
        return result

    async def _round(self, row: AzureAdConnection, result: RoundResult) -> _Applied:
        creds = AppCredentials(
            authority_host=row.authority_host,
            azure_tenant_id=row.azure_tenant_id,
            client_id=row.client_id,
            client_secret=self.box.open(row.client_secret, store.secret_context(row.tenant_id)),
            graph_url=row.graph_url,
            ca_file=row.ca_file,
            timeout=self.limits.timeout,
        )
        mapping = store.mapping_of(row)
        try:
            ssl_context = await asyncio.to_thread(graph_ssl_context, row.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise AzureAdRefused(
                f"the CA file {row.ca_file} cannot be used: {exc}", reason="AZURE_AD_CA_FILE"
            ) from exc
        token = await acquire_token(creds)
        start = row.delta_link
        async with httpx.AsyncClient(verify=ssl_context, timeout=self.limits.timeout) as client:
            reader = GraphReader(client, token, row.graph_url, self.limits)
            initial = initial_delta_url(row.graph_url, mapping.select())
            try:
                read = await self._read(reader, start or initial)
            except DeltaExpired as exc:
                log.info(
                    "Graph no longer knows the delta link of tenant %s (%s): a full round",
                    row.tenant_id,
                    exc,
                )
                start = ""
                try:
                    read = await self._read(reader, initial)
                except DeltaExpired as again:
                    raise AzureAdUnavailable(
                        f"Graph lost track of a full read while it was paged ({again});"
                        " nothing was applied",
                        reason="GRAPH_FAILED",
                    ) from None
        full = not start
        result.full, result.users_read, result.pages = full, len(read.items), read.pages
        result.retries = read.retries
        known = {} if full else await _known_users(self.rt, row.tenant_id)
        plan = plan_round(known, read.items, mapping, full)
        summary = await run_to_completion(
            sync_users(
                self.rt,
                connector_principal(row.tenant_id),
                row.tenant_id,
                SyncHeader(UserSource.AZURE_AD, _request_id(row, start, read), full),
                _stream(plan),
            )
        )
        _count(result, plan, summary, mapping)
        return _Applied(plan, read.delta_link, full)

    async def _read(self, reader: GraphReader, url: str) -> DeltaRound:
        # A round must end well inside its lease, or another replica could start the tenant.
        budget = self.lease.total_seconds() / 2
        try:
            async with asyncio.timeout(budget):
                return await reader.read_round(url)
        except TimeoutError:
            raise AzureAdUnavailable(
                f"reading Azure AD took longer than {budget:.0f} s; nothing was applied",
                reason="GRAPH_TIMEOUT",
            ) from None

    async def _finish(
        self,
        claimed: AzureAdConnection,
        started: datetime,
        result: RoundResult,
        applied: _Applied | None,
    ) -> None:
        """Releases the lease and records the result; after an applied round, also the new
        delta link and the users read, unless the settings changed meanwhile."""
        tenant_id = claimed.tenant_id
        stored = result.as_dict()
        stored["problems"] = [list(p) for p in result.problems[:_STORED_PROBLEMS]]
        async with self.rt.db.session() as session, session.begin():
            row = (
                await session.execute(
                    select(AzureAdConnection)
                    .where(AzureAdConnection.tenant_id == tenant_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if row is None or row.lease_owner != self.owner:
                log.warning("the lease of tenant %s ran out during its round", tenant_id)
                return
            values: dict[str, Any] = {
                "lease_owner": "",
                "lease_until": None,
                "last_run_at": started,
                "last_result": json.dumps(stored),
            }
            if result.ok:
                values["last_success_at"] = self.rt.clock()
            if row.generation == claimed.generation:
                interval = timedelta(seconds=row.interval_seconds)
                values["next_run_at"] = started + (
                    interval if result.ok else min(interval, store.RETRY_AFTER_FAILURE)
                )
                if applied is not None:
                    values["delta_link"] = applied.delta_link
                    values["rounds"] = row.rounds + 1
                    await _remember(session, tenant_id, applied)
            else:
                log.info("the Azure AD settings of tenant %s changed during its round", tenant_id)
            await session.execute(
                update(AzureAdConnection)
                .where(AzureAdConnection.tenant_id == tenant_id)
                .values(**values)
            )


@dataclass(frozen=True)
class _Applied:
    plan: RoundPlan
    delta_link: str
    full: bool


async def _stream(plan: RoundPlan) -> AsyncIterator[SyncRecord]:
    for record in plan.records:
        yield record


def _count(
    result: RoundResult, plan: RoundPlan, summary: SyncSummary, mapping: AttributeMapping
) -> None:
    result.created, result.updated = summary.created, summary.updated
    result.disabled, result.unchanged = summary.disabled, summary.unchanged
    result.removed = plan.removed
    sources = {"PIN not applied": mapping.pin}
    result.problems = list(plan.problems)
    for login, reason in summary.problems:
        # Say which Azure AD property the bad value came from.
        source = next((p for prefix, p in sources.items() if reason.startswith(prefix)), "")
        result.problems.append(
            (login, f"{reason} (Azure AD property {source})" if source else reason)
        )
    result.problem_count = len(result.problems)
    result.directory_revision = summary.directory_revision


def _request_id(row: AzureAdConnection, start: str, read: DeltaRound) -> str:
    """The same round read again (its state was not stored) gets the same id: answered, not
    applied twice."""
    digest = hashlib.sha256()
    digest.update(f"{row.tenant_id}\n{row.generation}\n{row.rounds}\n{start}\n".encode())
    digest.update(json.dumps(read.items, sort_keys=True, separators=(",", ":")).encode())
    return f"azure-ad:{digest.hexdigest()}"


async def _known_users(rt: Runtime, tenant_id: str) -> dict[str, KnownUser]:
    async with rt.db.reader() as session:
        rows = await session.execute(
            select(AzureAdUser.object_id, AzureAdUser.login, AzureAdUser.properties).where(
                AzureAdUser.tenant_id == tenant_id
            )
        )
        return {oid: KnownUser(login, json.loads(props)) for oid, login, props in rows.tuples()}


async def _remember(session: AsyncSession, tenant_id: str, applied: _Applied) -> None:
    plan = applied.plan
    if applied.full:
        await session.execute(delete(AzureAdUser).where(AzureAdUser.tenant_id == tenant_id))
    else:
        stale = sorted(set(plan.keep) | plan.forget)
        for i in range(0, len(stale), _CHUNK):
            await session.execute(
                delete(AzureAdUser).where(
                    AzureAdUser.tenant_id == tenant_id,
                    AzureAdUser.object_id.in_(stale[i : i + _CHUNK]),
                )
            )
    rows = [
        {
            "tenant_id": tenant_id,
            "object_id": object_id,
            "login": user.login,
            "properties": json.dumps(user.properties, sort_keys=True),
        }
        for object_id, user in plan.keep.items()
    ]
    for i in range(0, len(rows), _CHUNK):
        await session.execute(insert(AzureAdUser), rows[i : i + _CHUNK])
