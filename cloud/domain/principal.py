"""Who is calling: the verified content of an access token."""

from __future__ import annotations

from dataclasses import dataclass

from cloud.domain.enums import AccessRight, PrincipalKind
from cloud.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    # Empty for the platform operator.
    tenant_id: str
    # User id, device id, node id or sync agent id.
    subject_id: str
    session_id: str
    rights: frozenset[AccessRight] = frozenset()
    login: str = ""

    @property
    def is_user(self) -> bool:
        return self.kind is PrincipalKind.USER

    @property
    def is_operator(self) -> bool:
        return self.kind is PrincipalKind.OPERATOR

    @property
    def is_admin(self) -> bool:
        return self.is_user and AccessRight.ADMIN in self.rights

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise PermissionDenied(f"{what} needs the ADMIN right", reason="ADMIN_REQUIRED")

    def require_tenant(self) -> str:
        if not self.tenant_id:
            raise PermissionDenied("this call is for a tenant's users and devices")
        return self.tenant_id

    def require_kind(self, *kinds: PrincipalKind, what: str) -> None:
        if self.kind not in kinds:
            allowed = ", ".join(k.name.lower() for k in kinds)
            raise PermissionDenied(f"{what} is for {allowed} callers only")
