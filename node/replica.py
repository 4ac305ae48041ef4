"""The node's copy of its tenant's directory: snapshots, deltas, and authentication from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from printfabric import credentials
from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from node.credential import Card, Credential, Pin
from node.db import NodeDatabase
from node.errors import AuthRefused, ReplicaError
from node.models import ReplicaCardRow, ReplicaMeta, ReplicaUserRow, StagedCardRow, StagedUserRow

_USER_COLUMNS = (
    "user_id",
    "login",
    "login_key",
    "email",
    "full_name",
    "department",
    "rights",
    "disabled",
    "password_hash",
    "pin_hash",
    "revision",
)


@dataclass(frozen=True)
class ReplicaUser:
    """A user as the cloud replicates it; secrets only as the hashes the cloud stores."""

    user_id: str
    login: str
    email: str = ""
    full_name: str = ""
    department: str = ""
    # AccessRight values.
    rights: tuple[int, ...] = ()
    disabled: bool = False
    password_hash: str = field(default="", repr=False)
    pin_hash: str = field(default="", repr=False)
    card_hashes: tuple[str, ...] = field(default=(), repr=False)
    revision: int = 0


@dataclass(frozen=True)
class SnapshotChunk:
    revision: int
    users: Sequence[ReplicaUser]
    first: bool
    last: bool
    credential_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class DirectoryDelta:
    from_revision: int
    to_revision: int
    upserts: Sequence[ReplicaUser]
    deleted_user_ids: Sequence[str] = ()


@dataclass(frozen=True)
class ReplicaState:
    revision: int
    tenant_id: str
    node_id: str
    company_code: str
    users: int
    cards: int
    has_credential_key: bool
    # Revision of a snapshot still being received, if any.
    staging_revision: int | None


class Replica:
    def __init__(self, db: NodeDatabase) -> None:
        self.db = db

    # Bookkeeping --------------------------------------------------------------------------

    async def revision(self) -> int:
        async with self.db.session() as session, session.begin():
            return (await _meta(session)).revision

    async def state(self) -> ReplicaState:
        async with self.db.session() as session, session.begin():
            meta = await _meta(session)
            users = await session.scalar(select(func.count()).select_from(ReplicaUserRow))
            cards = await session.scalar(select(func.count()).select_from(ReplicaCardRow))
            return ReplicaState(
                revision=meta.revision,
                tenant_id=meta.tenant_id,
                node_id=meta.node_id,
                company_code=meta.company_code,
                users=users or 0,
                cards=cards or 0,
                has_credential_key=bool(meta.credential_key),
                staging_revision=meta.staging_revision,
            )

    async def claim(self, company_code: str) -> int:
        """Binds the replica to a company; returns the revision to announce in hello.

        A node re-registered to another company must not announce (or keep) the directory
        of the old one: the replica starts over at revision 0.
        """
        async with self.db.session() as session, session.begin():
            meta = await _meta(session)
            if meta.company_code.casefold() != company_code.casefold():
                if meta.company_code:
                    await _wipe(session, meta)
                meta.company_code = company_code
            return meta.revision

    async def record_welcome(self, tenant_id: str, node_id: str) -> bool:
        """Remembers who the cloud says we are; False if the tenant changed and the replica was wiped."""
        async with self.db.session() as session, session.begin():
            meta = await _meta(session)
            same = not meta.tenant_id or meta.tenant_id == tenant_id
            if not same:
                await _wipe(session, meta)
            meta.tenant_id, meta.node_id = tenant_id, node_id
            return same

    # Replication --------------------------------------------------------------------------

    async def apply_snapshot_chunk(self, chunk: SnapshotChunk) -> int | None:
        """Stages one chunk; on the last one swaps the snapshot in and returns its revision.

        Each chunk is its own transaction and goes to the staging tables, so a link cut in
        the middle of a snapshot leaves the live replica as it was.
        """
        async with self.db.session() as session, session.begin():
            meta = await _meta(session)
            if chunk.first:
                await session.execute(delete(StagedUserRow))
                await session.execute(delete(StagedCardRow))
                meta.staging_revision = chunk.revision
                meta.staging_credential_key = chunk.credential_key
            elif meta.staging_revision != chunk.revision:
                raise ReplicaError(
                    f"a snapshot chunk of revision {chunk.revision} arrived, but the snapshot "
                    f"being built is of revision {meta.staging_revision}",
                    reason="SNAPSHOT_OUT_OF_ORDER",
                )
            await _upsert_users(session, StagedUserRow, StagedCardRow, chunk.users)
            if not chunk.last:
                return None
            await session.execute(delete(ReplicaCardRow))
            await session.execute(delete(ReplicaUserRow))
            await session.execute(
                insert(ReplicaUserRow).from_select(
                    _USER_COLUMNS,
                    select(*(getattr(StagedUserRow, c) for c in _USER_COLUMNS)),
                )
            )
            await session.execute(
                insert(ReplicaCardRow).from_select(
                    ("card_hash", "user_id"), select(StagedCardRow.card_hash, StagedCardRow.user_id)
                )
            )
            await session.execute(delete(StagedUserRow))
            await session.execute(delete(StagedCardRow))
            meta.revision = chunk.revision
            # The key comes with the first chunk only; a snapshot without one keeps the old key.
            if meta.staging_credential_key:
                meta.credential_key = meta.staging_credential_key
            meta.staging_revision, meta.staging_credential_key = None, b""
            return meta.revision

    async def apply_delta(self, delta: DirectoryDelta) -> int:
        """Applies one delta chunk in one transaction; returns the revision now held."""
        async with self.db.session() as session, session.begin():
            meta = await _meta(session)
            await _upsert_users(session, ReplicaUserRow, ReplicaCardRow, delta.upserts)
            if delta.deleted_user_ids:
                ids = list(delta.deleted_user_ids)
                await session.execute(delete(ReplicaCardRow).where(ReplicaCardRow.user_id.in_(ids)))
                await session.execute(delete(ReplicaUserRow).where(ReplicaUserRow.user_id.in_(ids)))
            meta.revision = max(meta.revision, delta.to_revision)
            return meta.revision

    async def remember(self, user: ReplicaUser) -> None:
        """Caches a user the cloud vouched for (a remote authentication); never rolls one back."""
        async with self.db.session() as session, session.begin():
            await _upsert_users(session, ReplicaUserRow, ReplicaCardRow, [user])

    # Local authentication -----------------------------------------------------------------

    async def authenticate(self, credential: Credential) -> ReplicaUser | None:
        """The user the credential belongs to, None when the replica cannot tell.

        Raises AuthRefused when the replica knows the answer is no (a disabled user, a wrong
        password, a malformed PIN or card).
        """
        if isinstance(credential, Pin):
            return await self.authenticate_pin(credential.pin)
        if isinstance(credential, Card):
            return await self.authenticate_card(credential.card)
        return await self.authenticate_password(credential.login, credential.password)

    async def authenticate_password(self, login: str, password: str) -> ReplicaUser | None:
        row = await self.user_by_login(login)
        if row is None or not row.password_hash:
            return None
        # scrypt takes tens of milliseconds of CPU: off the event loop.
        if not await asyncio.to_thread(credentials.verify_password, password, row.password_hash):
            raise AuthRefused("wrong login or password", reason="BAD_CREDENTIALS")
        return await self._checked(row)

    async def authenticate_pin(self, pin: str) -> ReplicaUser | None:
        try:
            pin = credentials.normalize_pin(pin)
        except credentials.InvalidCredential as exc:
            raise AuthRefused(exc.message, reason=exc.reason) from exc
        async with self.db.session() as session, session.begin():
            key = (await _meta(session)).credential_key
            if not key:
                return None
            row = await _newest(session, ReplicaUserRow.pin_hash == credentials.pin_hash(key, pin))
        return None if row is None else await self._checked(row)

    async def authenticate_card(self, card: str) -> ReplicaUser | None:
        try:
            card = credentials.normalize_card(card)
        except credentials.InvalidCredential as exc:
            raise AuthRefused(exc.message, reason=exc.reason) from exc
        async with self.db.session() as session, session.begin():
            key = (await _meta(session)).credential_key
            if not key:
                return None
            digest = credentials.card_hash(key, card)
            owner = await session.scalar(
                select(ReplicaCardRow.user_id).where(ReplicaCardRow.card_hash == digest)
            )
            row = await session.get(ReplicaUserRow, owner) if owner else None
        return None if row is None else await self._checked(row)

    async def _checked(self, row: ReplicaUserRow) -> ReplicaUser:
        if row.disabled:
            raise AuthRefused(f"the account {row.login} is disabled", reason="USER_DISABLED")
        return await self.user(row.user_id) or _user(row, ())

    # Directory look-ups ---------------------------------------------------------------------

    async def user_by_login(
        self, login: str, session: AsyncSession | None = None
    ) -> ReplicaUserRow | None:
        """The user with this login (case-insensitive), in session's transaction if given."""
        async with self._reading(session) as reading:
            return await user_row_by_login(reading, login)

    async def logins(
        self, names: Iterable[str], session: AsyncSession | None = None
    ) -> dict[str, str]:
        """Case-folded login -> the login as the directory writes it, for each of names the
        replica knows; in session's transaction if given."""
        async with self._reading(session) as reading:
            return await logins_of(reading, names)

    @asynccontextmanager
    async def _reading(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        if session is not None:
            yield session
            return
        async with self.db.session() as own, own.begin():
            yield own

    async def user(self, user_id: str) -> ReplicaUser | None:
        async with self.db.session() as session, session.begin():
            row = await session.get(ReplicaUserRow, user_id)
            if row is None:
                return None
            cards = (
                await session.scalars(
                    select(ReplicaCardRow.card_hash).where(ReplicaCardRow.user_id == user_id)
                )
            ).all()
            return _user(row, tuple(sorted(cards)))


async def _meta(session: AsyncSession) -> ReplicaMeta:
    meta = await session.get(ReplicaMeta, 1)
    if meta is None:
        meta = ReplicaMeta(
            id=1,
            revision=0,
            credential_key=b"",
            tenant_id="",
            node_id="",
            company_code="",
            staging_revision=None,
            staging_credential_key=b"",
        )
        session.add(meta)
        await session.flush()
    return meta


async def _wipe(session: AsyncSession, meta: ReplicaMeta) -> None:
    for table in (ReplicaUserRow, ReplicaCardRow, StagedUserRow, StagedCardRow):
        await session.execute(delete(table))
    meta.revision, meta.credential_key = 0, b""
    meta.tenant_id, meta.node_id = "", ""
    meta.staging_revision, meta.staging_credential_key = None, b""


async def _newest(session: AsyncSession, where: ColumnElement[bool]) -> ReplicaUserRow | None:
    # Logins and PINs are unique in the cloud; two rows can share one only for the moment
    # between two deltas, and then the most recent change is the truth.
    row: ReplicaUserRow | None = await session.scalar(
        select(ReplicaUserRow).where(where).order_by(ReplicaUserRow.revision.desc()).limit(1)
    )
    return row


async def user_row_by_login(session: AsyncSession, login: str) -> ReplicaUserRow | None:
    """The user with this login (case-insensitive) in the session's transaction; None for ""."""
    key = _login_key(login)
    return await _newest(session, ReplicaUserRow.login_key == key) if key else None


async def logins_of(session: AsyncSession, names: Iterable[str]) -> dict[str, str]:
    """Case-folded login -> the login as the directory writes it, for each of names it knows."""
    keys = {key for key in map(_login_key, names) if key}
    if not keys:
        return {}
    rows = await session.execute(
        select(ReplicaUserRow.login_key, ReplicaUserRow.login)
        .where(ReplicaUserRow.login_key.in_(keys))
        .order_by(ReplicaUserRow.revision)
    )
    # In revision order, so where two rows share a login (see _newest) the newest one wins.
    return dict(rows.tuples().all())


def _login_key(login: str) -> str:
    return login.strip().casefold()


async def _upsert_users(
    session: AsyncSession,
    users_table: type[ReplicaUserRow] | type[StagedUserRow],
    cards_table: type[ReplicaCardRow] | type[StagedCardRow],
    users: Sequence[ReplicaUser],
) -> None:
    """Writes users newer than what the table holds, in revision order, with their cards."""
    latest: dict[str, ReplicaUser] = {}
    for user in users:
        if user.user_id not in latest or latest[user.user_id].revision <= user.revision:
            latest[user.user_id] = user
    if not latest:
        return
    rows = await session.execute(
        select(users_table.user_id, users_table.revision).where(
            users_table.user_id.in_(list(latest))
        )
    )
    held = {user_id: revision for user_id, revision in rows.tuples()}
    fresh = sorted(
        (u for u in latest.values() if held.get(u.user_id, -1) <= u.revision),
        key=lambda u: u.revision,
    )
    if not fresh:
        return
    stmt = sqlite_insert(users_table)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id"],
            set_={c: getattr(stmt.excluded, c) for c in _USER_COLUMNS if c != "user_id"},
        ),
        [_row(u) for u in fresh],
    )
    fresh_ids = [u.user_id for u in fresh]
    await session.execute(delete(cards_table).where(cards_table.user_id.in_(fresh_ids)))
    # In revision order, so a card that moved between users ends with the newest owner.
    cards = [{"card_hash": h, "user_id": u.user_id} for u in fresh for h in u.card_hashes]
    if cards:
        card_stmt = sqlite_insert(cards_table)
        await session.execute(
            card_stmt.on_conflict_do_update(
                index_elements=["card_hash"], set_={"user_id": card_stmt.excluded.user_id}
            ),
            cards,
        )


def _row(user: ReplicaUser) -> dict[str, object]:
    return {
        "user_id": user.user_id,
        "login": user.login,
        "login_key": _login_key(user.login),
        "email": user.email,
        "full_name": user.full_name,
        "department": user.department,
        "rights": ",".join(str(r) for r in sorted(set(user.rights))),
        "disabled": user.disabled,
        "password_hash": user.password_hash,
        "pin_hash": user.pin_hash,
        "revision": user.revision,
    }


def _user(row: ReplicaUserRow, card_hashes: tuple[str, ...]) -> ReplicaUser:
    return ReplicaUser(
        user_id=row.user_id,
        login=row.login,
        email=row.email,
        full_name=row.full_name,
        department=row.department,
        rights=tuple(int(r) for r in row.rights.split(",") if r),
        disabled=row.disabled,
        password_hash=row.password_hash,
        pin_hash=row.pin_hash,
        card_hashes=card_hashes,
        revision=row.revision,
    )
