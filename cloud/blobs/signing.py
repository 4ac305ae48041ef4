"""HMAC-SHA256 tokens granting one HTTP method on one blob of the local backend until expiry.

The implementation lives in the shared package (printfabric.blobtokens) because the gateway,
which may not import the cloud, verifies these tokens when it serves the signed URLs.
"""

from printfabric.blobtokens import (
    MIN_KEY_BYTES,
    BlobGrant,
    InvalidBlobToken,
    sign_blob_token,
    verify_blob_token,
)

__all__ = [
    "MIN_KEY_BYTES",
    "BlobGrant",
    "InvalidBlobToken",
    "sign_blob_token",
    "verify_blob_token",
]
