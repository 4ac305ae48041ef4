"""The shared credential rules (printfabric.credentials) with their errors as domain errors."""

from __future__ import annotations

from printfabric import credentials as _shared
from printfabric.credentials import (
    InvalidCredential,
    keyed_hash,
    new_access_token,
    token_hash,
    token_matches,
    verify_password,
)

from cloud.errors import InvalidArgument

__all__ = [
    "card_hash",
    "hash_password",
    "keyed_hash",
    "new_access_token",
    "normalize_card",
    "pin_hash",
    "token_hash",
    "token_matches",
    "verify_password",
]


def _domain(exc: InvalidCredential) -> InvalidArgument:
    return InvalidArgument(exc.message, reason=exc.reason)


def hash_password(password: str) -> str:
    try:
        return _shared.hash_password(password)
    except InvalidCredential as exc:
        raise _domain(exc) from exc


def normalize_card(card: str) -> str:
    try:
        return _shared.normalize_card(card)
    except InvalidCredential as exc:
        raise _domain(exc) from exc


def pin_hash(key: bytes, pin: str) -> str:
    try:
        return _shared.pin_hash(key, pin)
    except InvalidCredential as exc:
        raise _domain(exc) from exc


def card_hash(key: bytes, card: str) -> str:
    try:
        return _shared.card_hash(key, card)
    except InvalidCredential as exc:
        raise _domain(exc) from exc
