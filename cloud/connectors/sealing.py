"""Sealing of connector secrets at rest (AES-256-GCM) with a key kept in the cloud's home."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloud.errors import FailedPrecondition

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SecretBox:
    """Seals a secret to a context (e.g. "azure-ad:<tenant id>"), so a sealed value copied to
    another tenant's row does not open there."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a connector key has at least 32 bytes")
        self._aead = AESGCM(key[:32])

    def seal(self, secret: str, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        if sealed[:1] != _VERSION or len(sealed) <= 1 + _NONCE_BYTES:
            raise FailedPrecondition("the stored secret is not one this cloud sealed; set it again")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context.encode()).decode()
        except InvalidTag:
            raise FailedPrecondition(
                "the stored secret does not open with this cloud's connector key"
                " (was connector-secrets.key replaced?); set it again",
                reason="SECRET_UNREADABLE",
            ) from None
