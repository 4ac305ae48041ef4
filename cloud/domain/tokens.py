"""Short-lived signed bearer tokens (JWT, HS256) and their verification."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from cloud.domain.enums import AccessRight, PrincipalKind
from cloud.domain.principal import Principal
from cloud.errors import Unauthenticated

_ISSUER = "printfabric"
_LEEWAY = timedelta(seconds=5)


@dataclass(frozen=True)
class TokenSigner:
    key: bytes
    access_ttl: timedelta

    def issue(self, principal: Principal, now: datetime) -> tuple[str, datetime]:
        expire = now + self.access_ttl
        claims = {
            "iss": _ISSUER,
            "sub": principal.subject_id,
            "tid": principal.tenant_id,
            "knd": int(principal.kind),
            "sid": principal.session_id,
            "rgt": sorted(int(r) for r in principal.rights),
            "lgn": principal.login,
            "iat": int(now.timestamp()),
            "exp": int(expire.timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self.key, algorithm="HS256"), expire

    def verify(self, token: str, now: datetime) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                issuer=_ISSUER,
                leeway=_LEEWAY,
                options={"require": ["exp", "iat", "sub", "sid", "knd"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid access token: {exc}", reason="INVALID_TOKEN") from exc
        # Expiry is checked against the injected clock so tests can move time.
        if claims["exp"] + _LEEWAY.total_seconds() < now.timestamp():
            raise Unauthenticated(
                "the access token has expired; refresh it or log in again", reason="TOKEN_EXPIRED"
            )
        try:
            return Principal(
                kind=PrincipalKind(claims["knd"]),
                tenant_id=str(claims.get("tid", "")),
                subject_id=str(claims["sub"]),
                session_id=str(claims["sid"]),
                rights=frozenset(AccessRight(r) for r in claims.get("rgt", [])),
                login=str(claims.get("lgn", "")),
            )
        except (ValueError, KeyError) as exc:
            raise Unauthenticated("invalid access token claims", reason="INVALID_TOKEN") from exc
