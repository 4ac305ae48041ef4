"""NodeLink message conversion (the node's view of users and of its configuration)."""

from __future__ import annotations

from printfabric.v1 import node_link_pb2

from cloud.db.models import Node, Printer
from cloud.domain.directory import decode_rights
from cloud.domain.replication import ReplicaRecord


def replica_user(record: ReplicaRecord) -> node_link_pb2.ReplicaUser:
    u = record.user
    return node_link_pb2.ReplicaUser(
        user_id=u.id,
        login=u.login,
        email=u.email,
        full_name=u.full_name,
        department=u.department,
        rights=sorted(int(r) for r in decode_rights(u.rights)),  # type: ignore[misc]
        disabled=u.disabled,
        password_hash=u.password_hash or "",
        pin_hash=u.pin_hash or "",
        card_hashes=record.card_hashes,
        revision=u.revision,
    )


def node_config(
    node: Node, heartbeat_seconds: int, printers: list[Printer], queues: list[Printer]
) -> node_link_pb2.NodeConfig:
    """The node's configuration: the printers it delivers for and every queue of its tenant."""
    return node_link_pb2.NodeConfig(
        display_name=node.display_name,
        heartbeat_seconds=heartbeat_seconds,
        printers=[
            node_link_pb2.NodePrinter(printer_id=p.id, name=p.name, device_uri=p.device_uri)
            for p in printers
        ],
        queues=[node_link_pb2.NodeQueue(printer_id=q.id, name=q.name) for q in queues],
    )
