"""What a node needs from the cloud: directory pages by revision, its printers and released jobs."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from printfabric.lpd import check_lpr_uri
from sqlalchemy import select, update

from cloud.db.models import Card, Job, Node, Printer, Tenant, User
from cloud.domain.enums import JobState
from cloud.domain.jobs import JobInfo, job_query
from cloud.domain.runtime import Runtime
from cloud.errors import NotFound

log = logging.getLogger(__name__)

PAGE = 500


@dataclass(frozen=True)
class ReplicaRecord:
    user: User
    card_hashes: list[str]


@dataclass(frozen=True)
class TenantDirectory:
    revision: int
    credential_key: bytes


async def tenant_directory(rt: Runtime, tenant_id: str) -> TenantDirectory:
    async with rt.db.reader() as session:
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return TenantDirectory(tenant.directory_revision, tenant.credential_key)


async def users_since(
    rt: Runtime, tenant_id: str, after: int, up_to: int | None = None, limit: int = PAGE
) -> list[ReplicaRecord]:
    """Users changed after revision `after` (and not after `up_to`), oldest change first."""
    query = select(User).where(User.tenant_id == tenant_id, User.revision > after)
    if up_to is not None:
        query = query.where(User.revision <= up_to)
    async with rt.db.reader() as session:
        users = list((await session.execute(query.order_by(User.revision).limit(limit))).scalars())
        cards: dict[str, list[str]] = defaultdict(list)
        if users:
            rows = await session.execute(
                select(Card.user_id, Card.card_hash).where(
                    Card.tenant_id == tenant_id, Card.user_id.in_([u.id for u in users])
                )
            )
            for user_id, digest in rows.tuples():
                cards[user_id].append(digest)
    return [ReplicaRecord(u, sorted(cards[u.id])) for u in users]


async def node_printers(rt: Runtime, node: Node) -> list[Printer]:
    async with rt.db.reader() as session:
        return list(
            (
                await session.execute(
                    select(Printer)
                    .where(Printer.tenant_id == node.tenant_id, Printer.node_id == node.id)
                    .order_by(Printer.name)
                )
            ).scalars()
        )


async def tenant_queues(rt: Runtime, tenant_id: str) -> list[Printer]:
    """Every print queue of the tenant (a node takes LPD jobs for any of them)."""
    async with rt.db.reader() as session:
        return list(
            (
                await session.execute(
                    select(Printer).where(Printer.tenant_id == tenant_id).order_by(Printer.name)
                )
            ).scalars()
        )


async def released_jobs(rt: Runtime, node: Node) -> list[JobInfo]:
    """Jobs released to this node's printers that wait for delivery."""
    async with rt.db.reader() as session:
        rows = await session.execute(
            job_query()
            .where(
                Job.tenant_id == node.tenant_id,
                Job.state.in_([int(JobState.RELEASED), int(JobState.PRINTING)]),
                Job.release_printer_id.in_(
                    select(Printer.id).where(
                        Printer.tenant_id == node.tenant_id, Printer.node_id == node.id
                    )
                ),
            )
            .order_by(Job.updated_at)
        )
        return [JobInfo(*row) for row in rows.all()]


async def canceled_jobs(rt: Runtime, tenant_id: str, job_ids: set[str]) -> list[str]:
    if not job_ids:
        return []
    async with rt.db.reader() as session:
        rows = await session.execute(
            select(Job.id).where(
                Job.tenant_id == tenant_id,
                Job.id.in_(job_ids),
                Job.state.in_([int(JobState.CANCELED), int(JobState.EXPIRED)]),
            )
        )
        return list(rows.scalars())


def announced_lpd_uri(node: Node, value: str) -> str:
    """The LPD address a node's hello announced, or "" when it announced none or one that is not
    lpr://host[:port] (then logged: workstations are never handed an address we cannot vouch
    for, and a stale one is not kept either)."""
    if not value:
        return ""
    try:
        return check_lpr_uri(value)
    except ValueError as exc:
        log.warning(
            "node %s (tenant %s) announced an LPD address that is ignored: %s",
            node.serial_number,
            node.tenant_id,
            exc,
        )
        return ""


async def record_node_state(
    rt: Runtime,
    node_id: str,
    revision: int | None,
    version: str | None,
    lpd_uri: str | None = None,
) -> None:
    """What a node told: None leaves a field as it is."""
    values: dict[str, object] = {"last_seen_at": rt.clock()}
    if revision is not None:
        values["directory_revision"] = revision
    if version is not None:
        values["software_version"] = version[:64]
    if lpd_uri is not None:
        values["lpd_uri"] = lpd_uri
    async with rt.db.session() as session, session.begin():
        await session.execute(update(Node).where(Node.id == node_id).values(**values))


async def replica_record(rt: Runtime, user: User) -> ReplicaRecord:
    async with rt.db.reader() as session:
        rows = await session.execute(
            select(Card.card_hash).where(Card.tenant_id == user.tenant_id, Card.user_id == user.id)
        )
        return ReplicaRecord(user, sorted(rows.scalars()))
