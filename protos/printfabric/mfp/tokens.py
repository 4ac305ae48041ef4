"""User sessions at a device: a short signed token naming the user, the tenant and the device.

The gateway and the node issue them after checking the user's credential; the device sends the
token back with each call for that user. They are HMAC-SHA256 signed with the issuer's key (the
gateways of one deployment share theirs), carry an expiry, and hold no secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from printfabric.mfp.errors import MfpError


@dataclass(frozen=True)
class UserClaims:
    tenant: str
    login: str
    device_id: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UserTokenSigner:
    def __init__(self, key: bytes, ttl_seconds: float = 900.0) -> None:
        if len(key) < 16:
            raise ValueError("the user-token key must have at least 16 bytes")
        self._key = key
        self.ttl = ttl_seconds

    def issue(self, tenant: str, login: str, device_id: str) -> tuple[str, float]:
        expires = time.time() + self.ttl
        body = json.dumps(
            {"t": tenant, "l": login, "d": device_id, "e": int(expires)}, separators=(",", ":")
        ).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return f"{_b64(body)}.{_b64(mac)}", float(int(expires))

    def verify(self, token: str, device_id: str) -> UserClaims:
        """The claims of a valid token issued for this device; MfpError 401 otherwise."""
        bad = MfpError(401, "USER_SESSION_INVALID", "the user session is not valid; log in again")
        body_text, _, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError as exc:
            raise bad from exc
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise bad
        try:
            data = json.loads(body)
            claims = UserClaims(str(data["t"]), str(data["l"]), str(data["d"]), float(data["e"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise bad from exc
        if claims.device_id != device_id:
            raise bad
        if claims.expires_at < time.time():
            raise MfpError(401, "USER_SESSION_EXPIRED", "the user session expired; log in again")
        return claims


def load_or_create_key(path: Path) -> bytes:
    """The signing key kept at path (32 random bytes, mode 0600), made on first use."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()  # another process made it first
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
    return key
