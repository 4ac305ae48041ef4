"""The node's TLS channel to the cloud: the cloud's CA pinned, 8 MiB messages."""

from __future__ import annotations

import grpc

from node.config import NodeConfig

# Job chunks are at most 1 MiB and snapshot chunks 500 users; 8 MiB leaves room for both.
MAX_MESSAGE_BYTES = 8 << 20


def open_channel(config: NodeConfig, ca_pem: bytes) -> grpc.aio.Channel:
    """A secure channel trusting only the cloud's CA (not the system's roots)."""
    return grpc.aio.secure_channel(
        config.cloud_target,
        grpc.ssl_channel_credentials(root_certificates=ca_pem),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
