"""The tenant's directory: users, their secrets and rights; every change bumps the revision."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.bus import directory_topic
from cloud.db.models import Card, Session, Tenant, User
from cloud.domain import credentials
from cloud.domain.enums import DEFAULT_RIGHTS, AccessRight, PrincipalKind, UserSource
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, audit, new_id, next_page_token, page_window
from cloud.domain.tenants import bump_revision
from cloud.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied

_LOGIN = re.compile(r"^[^\s/\\:@][^/\\:]{0,255}$")


@dataclass
class UserFields:
    """Profile fields of a user; None leaves a field unchanged on update."""

    login: str | None = None
    email: str | None = None
    full_name: str | None = None
    department: str | None = None
    rights: frozenset[AccessRight] | None = None
    disabled: bool | None = None
    source: UserSource = UserSource.LOCAL


@dataclass
class NewUser:
    fields: UserFields
    password: str = ""
    pin: str = ""
    cards: list[str] = field(default_factory=list)


def encode_rights(rights: Iterable[AccessRight]) -> str:
    return ",".join(str(int(r)) for r in sorted(set(rights)))


def decode_rights(text: str) -> frozenset[AccessRight]:
    return frozenset(AccessRight(int(v)) for v in text.split(",") if v)


def normalize_login(login: str) -> tuple[str, str]:
    """Returns (login as given, case-folded key)."""
    login = login.strip()
    if not _LOGIN.match(login):
        raise InvalidArgument(
            "a login is 1-256 characters without spaces at the start, '/', '\\' or ':'",
            reason="INVALID_LOGIN",
        )
    return login, login.casefold()


async def card_count(session: AsyncSession, user_id: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).select_from(Card).where(Card.user_id == user_id)
            )
        ).scalar_one()
    )


async def revoke_sessions(rt: Runtime, session: AsyncSession, principal_id: str) -> None:
    """Ends every session of a user or device, in the caller's transaction; this process stops
    trusting them at once and again once the transaction commits (see LiveSessions)."""

    def forget(*_: object) -> None:
        rt.live_sessions.forget_principal(principal_id)

    forget()
    event.listen(session.sync_session, "after_commit", forget, once=True)
    await session.execute(
        update(Session).where(Session.principal_id == principal_id).values(revoked=True)
    )


class Directory:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @contextlib.asynccontextmanager
    async def _changing(self, tenant_id: str) -> AsyncIterator[AsyncSession]:
        """A write transaction on the directory; connected nodes hear of it after the commit."""
        async with self.rt.db.session() as session, session.begin():
            yield session
        await self.rt.bus.publish(directory_topic(tenant_id))

    async def _tenant(self, session: AsyncSession, tenant_id: str) -> Tenant:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("tenant not found")
        return tenant

    async def _user(self, session: AsyncSession, tenant_id: str, user_id: str) -> User:
        user = (
            await session.execute(
                select(User).where(User.tenant_id == tenant_id, User.id == user_id)
            )
        ).scalar_one_or_none()
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def user_by_login(self, session: AsyncSession, tenant_id: str, login: str) -> User | None:
        return (
            await session.execute(
                select(User).where(
                    User.tenant_id == tenant_id, User.login_key == login.strip().casefold()
                )
            )
        ).scalar_one_or_none()

    async def create(self, principal: Principal | None, tenant_id: str, new: NewUser) -> User:
        """Creates a user; principal None means the local admin CLI."""
        if principal is not None:
            principal.require_admin("creating users")
            tenant_id = principal.require_tenant()
        login, key = normalize_login(new.fields.login or "")
        password_hash = (
            await asyncio.to_thread(credentials.hash_password, new.password)
            if new.password
            else None
        )
        now = self.rt.clock()
        try:
            async with self._changing(tenant_id) as session:
                tenant = await self._tenant(session, tenant_id)
                if await self.user_by_login(session, tenant_id, login):
                    raise AlreadyExists(f"a user with login {login} exists", reason="LOGIN_TAKEN")
                f = new.fields
                user = User(
                    id=new_id(),
                    tenant_id=tenant_id,
                    login=login,
                    login_key=key,
                    email=(f.email or "").strip(),
                    full_name=(f.full_name or "").strip(),
                    department=(f.department or "").strip(),
                    password_hash=password_hash,
                    pin_hash=None,
                    rights=encode_rights(DEFAULT_RIGHTS if f.rights is None else f.rights),
                    source=int(f.source),
                    disabled=bool(f.disabled),
                    revision=await bump_revision(session, tenant_id),
                    created_at=now,
                    updated_at=now,
                )
                session.add(user)
                await session.flush()
                if new.pin:
                    await self._set_pin(session, tenant, user, new.pin)
                for card in new.cards:
                    await self._add_card(session, tenant, user, card, now)
                audit(session, now, principal, "user.create", login, tenant_id=tenant_id)
        except IntegrityError as exc:
            raise AlreadyExists("that login, PIN or card is already in use") from exc
        return user

    async def get(
        self, principal: Principal, user_id: str = "", login: str = ""
    ) -> tuple[User, int]:
        tenant_id = principal.require_tenant()
        async with self.rt.db.reader() as session:
            if user_id:
                user = await self._user(session, tenant_id, user_id)
            else:
                found = await self.user_by_login(session, tenant_id, login)
                if found is None:
                    raise NotFound(f"user {login} not found")
                user = found
            if not (principal.is_admin or principal.subject_id == user.id or not principal.is_user):
                # A user may read only themselves; answer as for an unknown user.
                raise NotFound(f"user {user_id or login} not found")
            return user, await card_count(session, user.id)

    async def list_users(
        self, principal: Principal, page_size: int, page_token: str, include_disabled: bool
    ) -> tuple[list[tuple[User, int]], str]:
        tenant_id = principal.require_tenant()
        if principal.is_user and not principal.is_admin:
            raise PermissionDenied("listing users needs the ADMIN right", reason="ADMIN_REQUIRED")
        offset, limit = page_window(page_size, page_token)
        query = select(User).where(User.tenant_id == tenant_id)
        if not include_disabled:
            query = query.where(User.disabled.is_(False))
        async with self.rt.db.reader() as session:
            users = list(
                (
                    await session.execute(
                        query.order_by(User.login_key).offset(offset).limit(limit)
                    )
                ).scalars()
            )
            result = await session.execute(
                select(Card.user_id, func.count())
                .where(Card.tenant_id == tenant_id, Card.user_id.in_([u.id for u in users]))
                .group_by(Card.user_id)
            )
            counts = {user_id: int(n) for user_id, n in result.tuples()}
        return [(u, counts.get(u.id, 0)) for u in users], next_page_token(offset, limit, len(users))

    async def update(
        self, principal: Principal, user_id: str, change: UserFields
    ) -> tuple[User, int]:
        principal.require_admin("changing users")
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        async with self._changing(tenant_id) as session:
            user = await self._user(session, tenant_id, user_id)
            _apply(user, change)
            if change.disabled:
                await revoke_sessions(self.rt, session, user.id)
            user.revision = await bump_revision(session, tenant_id)
            user.updated_at = now
            audit(session, now, principal, "user.update", user.login)
            return user, await card_count(session, user.id)

    async def disable(self, principal: Principal, user_id: str) -> tuple[User, int]:
        return await self.update(principal, user_id, UserFields(disabled=True))

    async def set_password(self, principal: Principal, user_id: str, password: str) -> None:
        tenant_id = principal.require_tenant()
        if not (principal.is_admin or principal.subject_id == user_id):
            raise PermissionDenied("you may change only your own password")
        encoded = await asyncio.to_thread(credentials.hash_password, password)
        now = self.rt.clock()
        async with self._changing(tenant_id) as session:
            user = await self._user(session, tenant_id, user_id)
            user.password_hash = encoded
            user.revision = await bump_revision(session, tenant_id)
            user.updated_at = now
            audit(session, now, principal, "user.set_password", user.login)

    async def set_pin(self, principal: Principal, user_id: str, pin: str) -> None:
        tenant_id = principal.require_tenant()
        if not (principal.is_admin or principal.subject_id == user_id):
            raise PermissionDenied("you may change only your own PIN")
        now = self.rt.clock()
        try:
            async with self._changing(tenant_id) as session:
                tenant = await self._tenant(session, tenant_id)
                user = await self._user(session, tenant_id, user_id)
                if pin:
                    await self._set_pin(session, tenant, user, pin)
                else:
                    user.pin_hash = None
                user.revision = await bump_revision(session, tenant_id)
                user.updated_at = now
                audit(session, now, principal, "user.set_pin", user.login)
        except IntegrityError as exc:
            raise AlreadyExists("that PIN is in use; choose another", reason="PIN_TAKEN") from exc

    async def add_card(self, principal: Principal, user_id: str, card: str) -> None:
        principal.require_admin("binding cards")
        await self.bind_card(principal, principal.require_tenant(), user_id, card)

    async def bind_card(
        self,
        principal: Principal,
        tenant_id: str,
        user_id: str,
        card: str,
        action: str = "user.add_card",
        detail: str = "",
    ) -> None:
        """Binds a card to a user and bumps the revision (node replicas follow); the caller has
        checked that principal may. A card bound to another user is ALREADY_EXISTS CARD_TAKEN."""
        now = self.rt.clock()
        try:
            async with self._changing(tenant_id) as session:
                tenant = await self._tenant(session, tenant_id)
                user = await self._user(session, tenant_id, user_id)
                await self._add_card(session, tenant, user, card, now)
                user.revision = await bump_revision(session, tenant_id)
                user.updated_at = now
                audit(session, now, principal, action, user.login, detail, tenant_id=tenant_id)
        except IntegrityError as exc:
            raise AlreadyExists(
                "that card is bound to a user already", reason="CARD_TAKEN"
            ) from exc

    async def remove_card(self, principal: Principal, user_id: str, card: str) -> None:
        principal.require_admin("removing cards")
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        async with self._changing(tenant_id) as session:
            tenant = await self._tenant(session, tenant_id)
            user = await self._user(session, tenant_id, user_id)
            digest = credentials.card_hash(tenant.credential_key, card)
            result = await session.execute(
                delete(Card).where(
                    Card.tenant_id == tenant_id, Card.user_id == user.id, Card.card_hash == digest
                )
            )
            if not getattr(result, "rowcount", 0):
                raise NotFound("that card is not bound to this user")
            user.revision = await bump_revision(session, tenant_id)
            user.updated_at = now
            audit(session, now, principal, "user.remove_card", user.login)

    async def _set_pin(self, session: AsyncSession, tenant: Tenant, user: User, pin: str) -> None:
        digest = credentials.pin_hash(tenant.credential_key, pin)
        taken = (
            await session.execute(
                select(User.id).where(
                    User.tenant_id == tenant.id, User.pin_hash == digest, User.id != user.id
                )
            )
        ).first()
        if taken:
            raise AlreadyExists("that PIN is in use; choose another", reason="PIN_TAKEN")
        user.pin_hash = digest

    async def _add_card(
        self, session: AsyncSession, tenant: Tenant, user: User, card: str, now: datetime
    ) -> None:
        digest = credentials.card_hash(tenant.credential_key, card)
        owner = (
            await session.execute(
                select(Card.user_id).where(Card.tenant_id == tenant.id, Card.card_hash == digest)
            )
        ).scalar_one_or_none()
        if owner == user.id:
            return
        if owner is not None:
            raise AlreadyExists("that card is bound to another user", reason="CARD_TAKEN")
        session.add(
            Card(
                id=new_id(), tenant_id=tenant.id, user_id=user.id, card_hash=digest, created_at=now
            )
        )

    def require_sync(self, principal: Principal) -> str:
        if principal.kind is not PrincipalKind.SYNC_AGENT and not principal.is_admin:
            raise PermissionDenied("directory sync needs a sync agent token or the ADMIN right")
        return principal.require_tenant()


def _apply(user: User, change: UserFields) -> None:
    if change.email is not None:
        user.email = change.email.strip()
    if change.full_name is not None:
        user.full_name = change.full_name.strip()
    if change.department is not None:
        user.department = change.department.strip()
    if change.rights is not None:
        user.rights = encode_rights(change.rights)
    if change.disabled is not None:
        user.disabled = change.disabled


async def acting_user(
    session: AsyncSession,
    principal: Principal,
    login: str,
    *,
    naming: frozenset[PrincipalKind],
    refused: str,
    missing_login: str,
    right: AccessRight | None = None,
) -> User:
    """The user a call is for: the calling user (login empty or their own), or the user that an
    admin or a caller of one of the `naming` kinds names by login. Unknown, other-tenant and
    disabled users are refused, and so is one without `right`."""
    tenant_id = principal.require_tenant()
    login = login.strip()
    user: User | None
    if principal.is_user and (not login or login.casefold() == principal.login.casefold()):
        user = await session.get(User, principal.subject_id)
    elif principal.kind in naming or principal.is_admin:
        if not login:
            raise InvalidArgument(missing_login)
        user = (
            await session.execute(
                select(User).where(User.tenant_id == tenant_id, User.login_key == login.casefold())
            )
        ).scalar_one_or_none()
        if user is None:
            raise NotFound(f"no user with login {login}", reason="UNKNOWN_USER")
    else:
        raise PermissionDenied(refused)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound("user not found", reason="UNKNOWN_USER")
    if user.disabled:
        raise PermissionDenied(f"the account {user.login} is disabled", reason="USER_DISABLED")
    if right is not None and right not in decode_rights(user.rights):
        verb = {AccessRight.PRINT: "print", AccessRight.SCAN: "scan"}.get(right, right.name.lower())
        raise PermissionDenied(f"{user.login} may not {verb}", reason=f"NO_{right.name}_RIGHT")
    return user
