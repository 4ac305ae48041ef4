"""Events between cloud replicas and presence: Redis when configured, in-process otherwise."""

from cloud.bus.base import Bus, Subscription
from cloud.bus.memory import InProcessBus
from cloud.bus.redis import RedisBus

__all__ = [
    "Bus",
    "InProcessBus",
    "RedisBus",
    "Subscription",
    "config_topic",
    "delivery_topic",
    "directory_topic",
    "node_topic",
]


def directory_topic(tenant_id: str) -> str:
    """Published after a tenant's directory changed."""
    return f"pf.dir.{tenant_id}"


def config_topic(tenant_id: str) -> str:
    """Published after a tenant's printers (queues) changed: its nodes' configuration with them."""
    return f"pf.config.{tenant_id}"


def node_topic(node_id: str) -> str:
    """Published after a job for one of the node's printers was released or canceled."""
    return f"pf.node.{node_id}"


def delivery_topic() -> str:
    """Published after a job for a printer the cloud delivers to itself was released or canceled."""
    return "pf.deliver"
