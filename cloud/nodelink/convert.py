"""NodeLink message conversion (the node's view of users, accounting entries from a node)."""

from __future__ import annotations

from printfabric.v1 import node_link_pb2

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
