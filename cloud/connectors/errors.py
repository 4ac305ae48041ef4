"""Errors of the directory connectors, in the cloud's tree so transports and the CLI map them once."""

from __future__ import annotations

from cloud.errors import FailedPrecondition, Unavailable


class AzureAdUnavailable(Unavailable):
    """Azure AD or Graph could not be reached or failed; the next round may succeed as it is."""


class AzureAdRefused(FailedPrecondition):
    """Azure AD or Graph refused the request (credentials, consent, tenant): an admin must act."""


class DeltaExpired(Exception):
    """Graph no longer knows the stored delta link: the round starts again as a full one."""
