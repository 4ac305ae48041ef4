"""Blob storage for print and scan data: one interface, a local-folder and an S3 backend."""

from cloud.blobs.base import (
    MAX_CHUNK_SIZE,
    MAX_URL_LIFETIME,
    BlobError,
    BlobNotFound,
    BlobStore,
    SignedUrl,
    validate_key,
)
from cloud.blobs.local import LocalBlobStore
from cloud.blobs.s3 import S3BlobStore
from cloud.blobs.signing import BlobGrant, InvalidBlobToken, sign_blob_token, verify_blob_token

__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_URL_LIFETIME",
    "BlobError",
    "BlobGrant",
    "BlobNotFound",
    "BlobStore",
    "InvalidBlobToken",
    "LocalBlobStore",
    "S3BlobStore",
    "SignedUrl",
    "sign_blob_token",
    "validate_key",
    "verify_blob_token",
]
