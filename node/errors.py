"""The node's exception tree: every error the node reports derives from NodeError."""

from __future__ import annotations


class NodeError(Exception):
    """Root of the node's errors; `reason` is an UPPER_SNAKE code for logs and device screens."""

    reason: str = "NODE_ERROR"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or type(self).reason


class ConfigError(NodeError):
    """The node's configuration is missing something or contradicts itself."""

    reason = "BAD_CONFIG"


class AuthRefused(NodeError):
    """The replica knows the credential and says no (disabled user, wrong password, bad PIN)."""

    reason = "REFUSED"


class ReplicaError(NodeError):
    """Directory data that does not fit the replica (a chunk of a snapshot never started)."""

    reason = "REPLICA_MISMATCH"


class UsageFileError(NodeError):
    """A line of an accounting JSONL file that is not a usage entry."""

    reason = "BAD_USAGE_RECORD"


class DeliveryFailed(NodeError):
    """A job that cannot be delivered: its data is wrong, gone, or the target refuses it."""

    reason = "DELIVERY_FAILED"
