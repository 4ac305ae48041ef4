"""Bulk directory sync (LDAP/AD tool, Azure AD): one transaction per run, idempotent by run id."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.bus import directory_topic
from cloud.db.models import Card, SyncRun, Tenant, User
from cloud.domain import credentials
from cloud.domain.directory import decode_rights, encode_rights, normalize_login, revoke_sessions
from cloud.domain.enums import DEFAULT_RIGHTS, AccessRight, UserSource
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, audit, new_id
from cloud.domain.tenants import bump_revision
from cloud.errors import CloudError, InvalidArgument, NotFound


@dataclass(frozen=True)
class SyncHeader:
    source: UserSource
    request_id: str = ""
    full: bool = False


@dataclass(frozen=True)
class SyncRecord:
    login: str
    email: str = ""
    full_name: str = ""
    department: str = ""
    pin: str = ""
    clear_pin: bool = False
    cards: tuple[str, ...] = ()
    replace_cards: bool = False
    disabled: bool = False
    rights: frozenset[AccessRight] = frozenset()
    set_rights: bool = False


@dataclass
class SyncSummary:
    created: int = 0
    updated: int = 0
    disabled: int = 0
    unchanged: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    directory_revision: int = 0


async def sync_users(
    rt: Runtime,
    principal: Principal,
    tenant_id: str,
    header: SyncHeader,
    records: AsyncIterator[SyncRecord],
) -> SyncSummary:
    """Applies a sync run; records that fail validation are reported, the rest applied."""
    if header.source not in (UserSource.LDAP, UserSource.AZURE_AD, UserSource.LOCAL):
        raise InvalidArgument("the sync header needs a source (LDAP, AZURE_AD or LOCAL)")
    now = rt.clock()
    summary = SyncSummary()
    async with rt.db.session() as session, session.begin():
        if header.request_id:
            done = (
                await session.execute(
                    select(SyncRun.summary).where(
                        SyncRun.tenant_id == tenant_id, SyncRun.request_id == header.request_id
                    )
                )
            ).scalar_one_or_none()
            if done is not None:
                async for _ in records:
                    pass
                stored = json.loads(done)
                stored["problems"] = [tuple(p) for p in stored["problems"]]
                return SyncSummary(**stored)
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("tenant not found")
        key = tenant.credential_key
        users = {
            u.login_key: u
            for u in (
                await session.execute(select(User).where(User.tenant_id == tenant_id))
            ).scalars()
        }
        pins = {u.pin_hash: u.id for u in users.values() if u.pin_hash}
        card_rows = await session.execute(
            select(Card.card_hash, Card.user_id).where(Card.tenant_id == tenant_id)
        )
        cards = CardIndex(card_rows.tuples())
        seen: set[str] = set()
        # Taking the next revision locks the tenant row for the run; later revisions are counted
        # here and written back once at the end, not one UPDATE per user.
        start = await bump_revision(session, tenant_id)
        revision = start - 1

        async def next_revision() -> int:
            nonlocal revision
            revision += 1
            return revision

        async for record in records:
            try:
                login, login_key = normalize_login(record.login)
            except CloudError as exc:
                summary.problems.append((record.login, exc.message))
                continue
            if login_key in seen:
                summary.problems.append(
                    (login, "the login appears twice in this run; the first was kept")
                )
                continue
            seen.add(login_key)
            user = users.get(login_key)
            created = user is None
            if user is None:
                user = User(
                    id=new_id(),
                    tenant_id=tenant_id,
                    login=login,
                    login_key=login_key,
                    password_hash=None,
                    pin_hash=None,
                    rights=encode_rights(record.rights if record.set_rights else DEFAULT_RIGHTS),
                    source=int(header.source),
                    disabled=False,
                    revision=0,
                    created_at=now,
                    updated_at=now,
                    email="",
                    full_name="",
                    department="",
                )
                session.add(user)
                users[login_key] = user
            changed = False
            for attr in ("email", "full_name", "department"):
                value = getattr(record, attr).strip()
                if getattr(user, attr) != value:
                    setattr(user, attr, value)
                    changed = True
            if user.disabled != record.disabled:
                user.disabled = record.disabled
                changed = True
                if record.disabled:
                    await revoke_sessions(rt, session, user.id)
                    summary.disabled += 1
            if record.set_rights and decode_rights(user.rights) != record.rights:
                user.rights = encode_rights(record.rights)
                changed = True
            if user.source != int(header.source):
                user.source = int(header.source)
                changed = True
            changed |= _sync_pin(record, user, key, pins, summary)
            changed |= await _sync_cards(session, record, user, key, cards, summary, now)
            if created:
                summary.created += 1
            elif changed:
                summary.updated += 1
            else:
                summary.unchanged += 1
            if changed or created:
                user.revision = await next_revision()
                user.updated_at = now
            if len(seen) % 500 == 0:
                await _flush(session, cards)
        await _flush(session, cards)
        if header.full:
            for user in users.values():
                if (
                    user.login_key not in seen
                    and user.source == int(header.source)
                    and not user.disabled
                ):
                    # Gone from the directory: disabled, never deleted, so history stays.
                    user.disabled = True
                    user.revision = await next_revision()
                    user.updated_at = now
                    await revoke_sessions(rt, session, user.id)
                    summary.disabled += 1
        await session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(directory_revision=max(revision, start))
        )
        summary.directory_revision = max(revision, start)
        if header.request_id:
            session.add(
                SyncRun(
                    id=new_id(),
                    tenant_id=tenant_id,
                    request_id=header.request_id,
                    summary=json.dumps(asdict(summary)),
                    created_at=now,
                )
            )
        audit(
            session,
            now,
            principal,
            "directory.sync",
            header.source.name,
            f"created={summary.created} updated={summary.updated} disabled={summary.disabled}"
            f" problems={len(summary.problems)}",
            tenant_id=tenant_id,
        )
    await rt.bus.publish(directory_topic(tenant_id))
    return summary


def _sync_pin(
    record: SyncRecord, user: User, key: bytes, pins: dict[str, str], summary: SyncSummary
) -> bool:
    if record.clear_pin and user.pin_hash:
        pins.pop(user.pin_hash, None)
        user.pin_hash = None
        return True
    if not record.pin:
        return False
    try:
        digest = credentials.pin_hash(key, record.pin)
    except CloudError as exc:
        summary.problems.append((user.login, f"PIN not applied: {exc.message}"))
        return False
    if digest == user.pin_hash:
        return False
    if pins.get(digest, user.id) != user.id:
        summary.problems.append((user.login, "PIN not applied: another user has the same PIN"))
        return False
    if user.pin_hash:
        pins.pop(user.pin_hash, None)
    pins[digest] = user.id
    user.pin_hash = digest
    return True


async def _flush(session: AsyncSession, cards: CardIndex) -> None:
    """Writes the users so far, then queues the cards of the new ones among them."""
    await session.flush()
    session.add_all(cards.pending)
    cards.pending.clear()


class CardIndex:
    """The tenant's card hashes by hash and by user, kept in step during one sync run."""

    def __init__(self, rows: Iterable[tuple[str, str]]) -> None:
        self.owner: dict[str, str] = {}
        self.by_user: dict[str, set[str]] = defaultdict(set)
        # Cards of users not written yet: a card row references its user row, and no ORM
        # relationship orders the two inserts, so these wait for the next flush of the users
        # (one flush per 500 users, not one per new user).
        self.pending: list[Card] = []
        for digest, user_id in rows:
            self.bind(digest, user_id)

    def bind(self, digest: str, user_id: str) -> None:
        self.owner[digest] = user_id
        self.by_user[user_id].add(digest)

    def unbind(self, digest: str) -> None:
        user_id = self.owner.pop(digest, None)
        if user_id is not None:
            self.by_user[user_id].discard(digest)


async def _sync_cards(
    session: AsyncSession,
    record: SyncRecord,
    user: User,
    key: bytes,
    cards: CardIndex,
    summary: SyncSummary,
    now: datetime,
) -> bool:
    if not record.replace_cards and not record.cards:
        return False
    wanted: set[str] = set()
    for card in record.cards:
        try:
            digest = credentials.card_hash(key, card)
        except CloudError as exc:
            summary.problems.append((user.login, f"card not applied: {exc.message}"))
            continue
        if cards.owner.get(digest, user.id) != user.id:
            summary.problems.append((user.login, "card not applied: it is bound to another user"))
            continue
        wanted.add(digest)
    have = set(cards.by_user.get(user.id, ()))
    add = wanted - have
    remove = (have - wanted) if record.replace_cards else set()
    new_user = user in session.new
    for digest in add:
        row = Card(
            id=new_id(), tenant_id=user.tenant_id, user_id=user.id, card_hash=digest, created_at=now
        )
        if new_user:
            cards.pending.append(row)
        else:
            session.add(row)
        cards.bind(digest, user.id)
    if remove:
        await session.execute(
            delete(Card).where(
                Card.tenant_id == user.tenant_id,
                Card.user_id == user.id,
                Card.card_hash.in_(remove),
            )
        )
        for digest in remove:
            cards.unbind(digest)
    return bool(add or remove)
