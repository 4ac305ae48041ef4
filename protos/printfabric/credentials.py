"""Secrets at rest, shared by the cloud and the node: scrypt passwords, keyed PIN/card hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets


class InvalidCredential(ValueError):
    """A PIN, card number or password that is malformed."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


# scrypt cost: ~50 ms on one core, 16 MiB of memory per hash.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
_PIN = re.compile(r"^[0-9]{4,12}$")
_HEX_CARD = re.compile(r"^(0x)?[0-9a-f]+$")


def hash_password(password: str) -> str:
    """Returns 'scrypt$N$r$p$salt$hash' (blocking: call it in a thread)."""
    if len(password) < 1 or len(password) > 1024:
        raise InvalidCredential("a password must have 1 to 1024 characters", "INVALID_PASSWORD")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, encoded: str | None) -> bool:
    """Constant-time check of a password against hash_password's output (blocking)."""
    if not encoded:
        return False
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def normalize_pin(pin: str) -> str:
    pin = pin.strip()
    if not _PIN.match(pin):
        raise InvalidCredential("a PIN is 4 to 12 digits", "INVALID_PIN")
    return pin


def normalize_card(card: str) -> str:
    """Reduces a card number as a reader delivers it to one canonical decimal string.

    Readers deliver the same card as decimal ("0004512345") or hex ("44E1D9", "0x44e1d9").
    Digits only are read as decimal; anything with a-f or a 0x prefix as hex; leading zeros
    and separators (space, '-', ':') do not count.
    """
    raw = re.sub(r"[\s:-]", "", card).lower()
    if not raw:
        raise InvalidCredential("the card number is empty", "INVALID_CARD")
    if raw.isdigit():
        value = int(raw, 10)
    elif _HEX_CARD.match(raw):
        value = int(raw.removeprefix("0x"), 16)
    else:
        raise InvalidCredential("a card number is decimal digits or hexadecimal", "INVALID_CARD")
    if value == 0 or value.bit_length() > 256:
        raise InvalidCredential("the card number is out of range", "INVALID_CARD")
    return str(value)


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of a short secret (PIN, card) under the tenant's credential key, hex."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def pin_hash(key: bytes, pin: str) -> str:
    return keyed_hash(key, "pin", normalize_pin(pin))


def card_hash(key: bytes, card: str) -> str:
    return keyed_hash(key, "card", normalize_card(card))


def new_access_token() -> str:
    """A device/node access token: 256 random bits, shown once."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # The token has 256 bits of entropy, so a plain SHA-256 is enough (no stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))
