"""Authentication: users by password, PIN or card; devices, nodes and sync agents by token."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.db.models import Card, Device, Node, Session, Tenant, User
from cloud.domain import credentials
from cloud.domain.directory import Directory, decode_rights
from cloud.domain.enums import DeviceKind, PrincipalKind
from cloud.domain.principal import Principal
from cloud.domain.ratelimit import AttemptLimiter, Counter
from cloud.domain.runtime import Runtime, audit, new_id
from cloud.domain.tenants import tenant_by_code
from cloud.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated

# One message for every way a credential can be wrong, so answers reveal nothing.
_BAD_CREDENTIALS = "wrong company code, login, password, PIN or card"
_BAD_DEVICE = "wrong company code, serial number or access token"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    access_expire: datetime
    refresh_token: str
    refresh_expire: datetime


@dataclass(frozen=True)
class Credential:
    """Exactly one of login+password, pin or card."""

    login: str = ""
    password: str = ""
    pin: str = ""
    card: str = ""


class Auth:
    def __init__(self, rt: Runtime, limiter: AttemptLimiter | None = None) -> None:
        self.rt = rt
        self.limiter = limiter or AttemptLimiter.in_process()

    async def authenticate_user(
        self,
        company_code: str,
        credential: Credential,
        device_id: str = "",
        register_card: str = "",
    ) -> tuple[Tokens, User, int]:
        """Opens a session for the user a credential names.

        Failed attempts count per login (passwords) and per device (device_id, when it names a
        device of the tenant; PIN and card attempts without one count together per tenant).
        While a count is locked every attempt it covers is refused, the right one included.
        register_card binds that card to the user of a password credential before the session
        opens (card self-registration at a device).
        """
        _check_shape(credential)
        if register_card:
            if credential.pin or credential.card:
                raise InvalidArgument(
                    "register_card goes with a login and password only",
                    reason="REGISTER_CARD_NEEDS_PASSWORD",
                )
            credentials.normalize_card(register_card)
        async with self.rt.db.reader() as session:
            tenant = await tenant_by_code(session, company_code)
            if tenant is None:
                raise Unauthenticated(_BAD_CREDENTIALS, reason="BAD_CREDENTIALS")
            counters = await self._counters(session, tenant.id, credential, device_id)
            await self.limiter.check(counters, self.rt.clock())
            user = await self._find_user(session, tenant, credential)
        if user is None:
            await self.limiter.failed(counters, self.rt.clock())
            if credential.card and _well_formed_card(credential.card):
                raise NotFound(
                    "this card is not registered; log in with your login and password to "
                    "register it",
                    reason="UNKNOWN_CARD",
                )
            raise Unauthenticated(_BAD_CREDENTIALS, reason="BAD_CREDENTIALS")
        if credential.login:
            await self.limiter.succeeded(self.limiter.login(tenant.id, user.login_key))
        if user.disabled:
            raise PermissionDenied(
                f"the account {user.login} is disabled; ask your administrator",
                reason="USER_DISABLED",
            )
        principal = Principal(
            kind=PrincipalKind.USER,
            tenant_id=tenant.id,
            subject_id=user.id,
            session_id=new_id(),
            rights=decode_rights(user.rights),
            login=user.login,
        )
        if register_card:
            await self._register_card(principal, user, register_card, device_id)
        tokens = await self._open_session(principal)
        async with self.rt.db.reader() as session:
            cards = len(
                (await session.execute(select(Card.id).where(Card.user_id == user.id))).all()
            )
        return tokens, user, cards

    async def _counters(
        self, session: AsyncSession, tenant_id: str, credential: Credential, device_id: str
    ) -> list[Counter]:
        known = bool(device_id) and len(device_id) <= 32
        if known:
            known = (
                await session.execute(
                    select(Device.id).where(Device.tenant_id == tenant_id, Device.id == device_id)
                )
            ).first() is not None
        counters = []
        if credential.login or credential.password:
            # No login is longer than 256 characters: a longer one counts, but cannot bloat
            # the counter store.
            login_key = credential.login.strip().casefold()[:257]
            counters.append(self.limiter.login(tenant_id, login_key))
            if known:
                counters.append(self.limiter.device(tenant_id, device_id))
        else:
            # A PIN or a card names no user: the device is what an attacker must go through.
            counters.append(self.limiter.device(tenant_id, device_id if known else ""))
        return counters

    async def _register_card(
        self, principal: Principal, user: User, card: str, device_id: str
    ) -> None:
        detail = f"self-registration at device {device_id}" if device_id else "self-registration"
        try:
            await Directory(self.rt).bind_card(
                principal, user.tenant_id, user.id, card, "user.register_card", detail
            )
        except AlreadyExists as exc:
            raise AlreadyExists(
                "this card is registered to another user; ask your administrator",
                reason="CARD_IN_USE",
            ) from exc

    async def _find_user(
        self, session: AsyncSession, tenant: Tenant, credential: Credential
    ) -> User | None:
        _check_shape(credential)
        scoped = select(User).where(User.tenant_id == tenant.id)
        if credential.pin:
            digest = credentials.keyed_hash(tenant.credential_key, "pin", credential.pin.strip())
            return (
                await session.execute(scoped.where(User.pin_hash == digest))
            ).scalar_one_or_none()
        if credential.card:
            try:
                digest = credentials.card_hash(tenant.credential_key, credential.card)
            except InvalidArgument:
                return None
            return (
                await session.execute(
                    scoped.join(Card, Card.user_id == User.id).where(
                        Card.tenant_id == tenant.id, Card.card_hash == digest
                    )
                )
            ).scalar_one_or_none()
        user = (
            await session.execute(
                scoped.where(User.login_key == credential.login.strip().casefold())
            )
        ).scalar_one_or_none()
        ok = await asyncio.to_thread(
            credentials.verify_password, credential.password, user.password_hash if user else None
        )
        return user if ok else None

    async def verify_agent(
        self, company_code: str, serial_number: str, access_token: str, kind: DeviceKind
    ) -> Device | Node:
        """The device, node or sync agent these credentials name; UNAUTHENTICATED otherwise."""
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            tenant = await tenant_by_code(session, company_code)
            if tenant is None:
                raise Unauthenticated(_BAD_DEVICE, reason="BAD_DEVICE_CREDENTIALS")
            row: Device | Node | None
            if kind is DeviceKind.NODE:
                row = (
                    await session.execute(
                        select(Node).where(
                            Node.tenant_id == tenant.id, Node.serial_number == serial_number
                        )
                    )
                ).scalar_one_or_none()
            else:
                row = (
                    await session.execute(
                        select(Device).where(
                            Device.tenant_id == tenant.id,
                            Device.kind == int(kind),
                            Device.serial_number == serial_number,
                        )
                    )
                ).scalar_one_or_none()
            if row is None or not credentials.token_matches(access_token, row.token_hash):
                raise Unauthenticated(_BAD_DEVICE, reason="BAD_DEVICE_CREDENTIALS")
            if row.revoked:
                raise Unauthenticated("this device's access was revoked", reason="DEVICE_REVOKED")
            row.last_seen_at = now
        return row

    async def authenticate_device(
        self, company_code: str, serial_number: str, access_token: str, kind: DeviceKind
    ) -> tuple[Tokens, str, str]:
        """Returns tokens, the device/node id and the tenant id."""
        row = await self.verify_agent(company_code, serial_number, access_token, kind)
        principal = Principal(
            kind=PrincipalKind(int(kind)),
            tenant_id=row.tenant_id,
            subject_id=row.id,
            session_id=new_id(),
        )
        return await self._open_session(principal), row.id, row.tenant_id

    async def find_user(self, tenant_id: str, credential: Credential) -> User | None:
        """The user a credential names in the tenant, without opening a session (remote auth)."""
        async with self.rt.db.reader() as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None:
                return None
            return await self._find_user(session, tenant, credential)

    async def operator_session(self) -> Tokens:
        """Mints a platform operator session (local admin CLI only)."""
        return await self._open_session(
            Principal(
                kind=PrincipalKind.OPERATOR,
                tenant_id="",
                subject_id="operator",
                session_id=new_id(),
            )
        )

    async def _open_session(self, principal: Principal) -> Tokens:
        now = self.rt.clock()
        secret = secrets.token_urlsafe(32)
        expire = now + self.rt.settings.refresh_token_ttl
        async with self.rt.db.session() as session, session.begin():
            session.add(
                Session(
                    id=principal.session_id,
                    tenant_id=principal.tenant_id or None,
                    principal_kind=int(principal.kind),
                    principal_id=principal.subject_id,
                    refresh_hash=credentials.token_hash(secret),
                    revoked=False,
                    expires_at=expire,
                    created_at=now,
                )
            )
            audit(session, now, principal, "session.open")
        access, access_expire = self.rt.signer.issue(principal, now)
        return Tokens(access, access_expire, f"{principal.session_id}.{secret}", expire)

    async def refresh(self, refresh_token: str) -> Tokens:
        now = self.rt.clock()
        session_id, _, secret = refresh_token.partition(".")
        principal: Principal | None = None
        new_secret = secrets.token_urlsafe(32)
        async with self.rt.db.session() as session, session.begin():
            row = await session.get(Session, session_id) if session_id else None
            if row is None or row.revoked or row.expires_at < now:
                raise Unauthenticated("the session has ended; log in again", reason="SESSION_ENDED")
            reused = not credentials.token_matches(secret, row.refresh_hash)
            if not reused:
                principal = await self._current_principal(session, row)
                row.refresh_hash = credentials.token_hash(new_secret)
                row.expires_at = now + self.rt.settings.refresh_token_ttl
            expire = row.expires_at
        if principal is None:
            # A refresh token used twice means it leaked, and a disabled account or revoked
            # device must not come back: either way the session ends for everyone holding it.
            await self._end_session(session_id)
            if reused:
                raise Unauthenticated(
                    "the session has ended; log in again", reason="REFRESH_REUSED"
                )
            raise Unauthenticated(
                "the account or device is no longer active", reason="SESSION_ENDED"
            )
        access, access_expire = self.rt.signer.issue(principal, now)
        return Tokens(access, access_expire, f"{session_id}.{new_secret}", expire)

    async def _end_session(self, session_id: str) -> None:
        self.rt.live_sessions.forget_session(session_id)
        async with self.rt.db.session() as session, session.begin():
            await session.execute(
                update(Session).where(Session.id == session_id).values(revoked=True)
            )
        self.rt.live_sessions.forget_session(session_id)

    async def _current_principal(self, session: AsyncSession, row: Session) -> Principal | None:
        """Re-reads rights and state so a refresh reflects changes since login."""
        kind = PrincipalKind(row.principal_kind)
        tenant_id = row.tenant_id or ""
        if kind is PrincipalKind.USER:
            user = await session.get(User, row.principal_id)
            if user is None or user.disabled:
                return None
            return Principal(
                kind, tenant_id, user.id, row.id, decode_rights(user.rights), user.login
            )
        if kind is PrincipalKind.NODE:
            node = await session.get(Node, row.principal_id)
            return (
                None
                if node is None or node.revoked
                else Principal(kind, tenant_id, node.id, row.id)
            )
        if kind is PrincipalKind.OPERATOR:
            return Principal(kind, "", row.principal_id, row.id)
        device = await session.get(Device, row.principal_id)
        return (
            None
            if device is None or device.revoked
            else Principal(kind, tenant_id, device.id, row.id)
        )

    async def revoke(self, refresh_token: str) -> None:
        session_id, _, secret = refresh_token.partition(".")
        async with self.rt.db.session() as session, session.begin():
            row = await session.get(Session, session_id) if session_id else None
            if row is None or not credentials.token_matches(secret, row.refresh_hash):
                raise Unauthenticated("unknown refresh token", reason="INVALID_TOKEN")
            row.revoked = True
            self.rt.live_sessions.forget_session(session_id)
            audit(session, self.rt.clock(), None, "session.revoke", tenant_id=row.tenant_id)
        self.rt.live_sessions.forget_session(session_id)

    async def check_session(self, principal: Principal) -> None:
        """Refuses access tokens of revoked or expired sessions (called once per RPC; a session
        read as live is trusted for a second, see cloud.domain.live_sessions)."""
        live = self.rt.live_sessions
        tenant_id = live.tenant_of(principal.session_id)
        if tenant_id is None:
            async with self.rt.db.reader() as session:
                row = await session.get(Session, principal.session_id)
            if row is None or row.revoked:
                raise Unauthenticated(
                    "the session was revoked; log in again", reason="SESSION_REVOKED"
                )
            tenant_id = row.tenant_id or ""
            live.remember(row.id, row.principal_id, tenant_id)
        if tenant_id != principal.tenant_id:
            raise Unauthenticated("the session was revoked; log in again", reason="SESSION_REVOKED")


def _check_shape(credential: Credential) -> None:
    given = [
        bool(credential.login or credential.password),
        bool(credential.pin),
        bool(credential.card),
    ]
    if sum(given) != 1:
        raise InvalidArgument("give exactly one of login+password, PIN or card")


def _well_formed_card(card: str) -> bool:
    try:
        credentials.normalize_card(card)
    except InvalidArgument:
        return False
    return True
