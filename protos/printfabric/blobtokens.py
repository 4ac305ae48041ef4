"""Signed blob URLs of the embedded blob folder: HMAC-SHA256 tokens and the folder's layout.

The cloud signs a token granting one HTTP method on one blob until an expiry; the gateway, which
serves `/blob/v1/{token}`, verifies it with the same key and reads or writes the file. Both sides
use this module, so the token format and where a key's file lives can never drift apart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: HMAC-SHA256 is only as strong as its key; 32 random bytes match the hash's own strength.
MIN_KEY_BYTES = 32

#: The folder backend keeps finished blobs here, under root, one file per key ...
BLOBS_DIR = "blobs"
#: ... and files being written here (same filesystem, so storing one is an atomic rename).
STAGING_DIR = "staging"

_METHODS = frozenset({"GET", "PUT"})
# Binds every signature to this token format, so a MAC made with the same key for another purpose
# can never be replayed as a blob token.
_DOMAIN = b"printfabric.blob.v1."
# S3 caps a key at 1024 bytes; our keys are ASCII, so characters and bytes are the same count.
_MAX_KEY_LENGTH = 1024
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class InvalidBlobToken(Exception):
    """A blob token was malformed, tampered with, signed by another key, expired or misused."""


@dataclass(frozen=True)
class BlobGrant:
    """What a verified token allows: method on blob_key, until expire_time, up to max_bytes."""

    blob_key: str
    method: str
    expire_time: datetime
    max_bytes: int


def validate_key(key: str) -> str:
    """Returns key if it is a well-formed blob key ("tenant/jobs/job-id"), else raises ValueError.

    Only [A-Za-z0-9._-] segments joined by single slashes are accepted, and no segment may be made
    of dots alone, so a key can never name a path outside a backend's root.
    """
    if not key:
        raise ValueError("blob key is empty")
    if len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"blob key is longer than {_MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not segment:
            raise ValueError(f"blob key {key!r} has an empty segment (leading, trailing or '//')")
        if not _KEY_SEGMENT.fullmatch(segment):
            raise ValueError(
                f"blob key {key!r} has a segment with characters other than [A-Za-z0-9._-]"
            )
        if not segment.strip("."):
            raise ValueError(f"blob key {key!r} has a segment made only of dots")
    return key


def blob_path(root: Path, key: str) -> Path:
    """The file of the blob stored under key in the blob folder root (root/blobs/<key>)."""
    blobs = root / BLOBS_DIR
    path = blobs.joinpath(*validate_key(key).split("/"))
    # validate_key() already rules out every escape; this guards against a future change to the
    # key rules quietly opening one.
    if not path.is_relative_to(blobs):
        raise ValueError(f"blob key {key!r} escapes the blob root")
    return path


def sign_blob_token(
    key: bytes, blob_key: str, method: str, expire_time: datetime, max_bytes: int = 0
) -> str:
    """Returns a URL-safe token "payload.signature" granting method on blob_key until expire_time.

    The expiry is kept to the whole second (rounded down). max_bytes caps a PUT (0: no cap).
    """
    _check_key(key)
    validate_key(blob_key)
    if method not in _METHODS:
        raise ValueError(f"blob token method must be GET or PUT, got {method!r}")
    _check_aware(expire_time, "expire_time")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
    if max_bytes and method != "PUT":
        raise ValueError("max_bytes applies to PUT tokens only")
    claims = {"k": blob_key, "m": method, "e": int(expire_time.timestamp()), "b": max_bytes}
    payload = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_signature(key, payload)}"


def verify_blob_token(key: bytes, token: str, method: str, now: datetime) -> BlobGrant:
    """Returns the grant of token if it is genuine, for method, and unexpired at now.

    Raises InvalidBlobToken otherwise, with a message saying which check failed.
    """
    _check_key(key)
    _check_aware(now, "now")
    payload, dot, signature = token.partition(".")
    if not (dot and payload and signature and token.isascii()):
        raise InvalidBlobToken("malformed blob token: expected 'payload.signature'")
    # The signature is checked before the payload is even decoded: nothing an attacker wrote is
    # parsed, and compare_digest keeps the check's time independent of where the bytes differ.
    if not hmac.compare_digest(signature, _signature(key, payload)):
        raise InvalidBlobToken("blob token signature does not match: tampered or another key")
    grant = _decode_claims(payload)
    if grant.method != method:
        raise InvalidBlobToken(
            f"blob token grants {grant.method}, not {method}, on {grant.blob_key!r}"
        )
    if now >= grant.expire_time:
        raise InvalidBlobToken(f"blob token expired at {grant.expire_time.isoformat()}")
    return grant


def _decode_claims(payload: str) -> BlobGrant:
    try:
        claims: Any = json.loads(_b64decode(payload))
    except (ValueError, binascii.Error) as exc:
        # Only reachable with a genuine signature over a bad payload, i.e. a bug on our side.
        raise InvalidBlobToken("blob token payload is not valid JSON") from exc
    if not isinstance(claims, dict):
        raise InvalidBlobToken("blob token payload is not an object")
    blob_key, method = claims.get("k"), claims.get("m")
    expire, max_bytes = claims.get("e"), claims.get("b")
    if not (
        isinstance(blob_key, str)
        and method in _METHODS
        and type(expire) is int
        and type(max_bytes) is int
        and max_bytes >= 0
    ):
        raise InvalidBlobToken("blob token payload lacks a valid key, method, expiry or size")
    try:
        validate_key(blob_key)
    except ValueError as exc:
        raise InvalidBlobToken(f"blob token names an invalid key: {exc}") from exc
    return BlobGrant(
        blob_key=blob_key,
        method=str(method),
        expire_time=datetime.fromtimestamp(expire, UTC),
        max_bytes=max_bytes,
    )


def _signature(key: bytes, payload: str) -> str:
    return _b64encode(hmac.new(key, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    # Padding is dropped: "=" would need escaping in a URL and carries no information.
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the blob URL signing key must be at least {MIN_KEY_BYTES} bytes")


def _check_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
