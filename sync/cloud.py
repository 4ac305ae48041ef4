"""Pushing a run to the cloud: DirectoryService.SyncUsers as the tenant's sync agent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import grpc
from printfabric.v1 import auth_pb2, auth_pb2_grpc, common_pb2, directory_pb2, directory_pb2_grpc

from sync.config import Cloud

# Resends of one run after a broken connection; the run's request id makes them safe.
ATTEMPTS = 4
MAX_MESSAGE_BYTES = 8 << 20
_RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}


class CloudError(Exception):
    """The cloud refused the run or could not be reached; nothing of the run was applied."""


def push(
    cloud: Cloud,
    request_id: str,
    full: bool,
    records: Sequence[directory_pb2.SyncUserRecord],
    sent: Callable[[int], None] = lambda n: None,
    sleep: Callable[[float], None] = time.sleep,
) -> directory_pb2.SyncUsersResponse:
    """Sends the run (one transaction in the cloud); resent on a broken connection."""
    header = directory_pb2.SyncUsersHeader(
        source=common_pb2.USER_SOURCE_LDAP, request_id=request_id, full=full
    )
    last = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            sleep(min(2.0**attempt, 10.0))
        progress = 0

        def stream() -> Iterator[directory_pb2.SyncUsersRequest]:
            nonlocal progress
            yield directory_pb2.SyncUsersRequest(header=header)
            for record in records:
                yield directory_pb2.SyncUsersRequest(record=record)
                progress += 1
                sent(1)

        with _channel(cloud) as channel:
            try:
                token = _sign_in(cloud, channel)
                stub = directory_pb2_grpc.DirectoryServiceStub(channel)  # type: ignore[no-untyped-call]
                reply: directory_pb2.SyncUsersResponse = stub.SyncUsers(
                    stream(),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=cloud.timeout,
                )
                return reply
            except grpc.RpcError as exc:
                sent(-progress)
                code, details = exc.code(), exc.details() or ""
                if code == grpc.StatusCode.UNAUTHENTICATED:
                    raise CloudError(
                        f"the cloud refused the sync agent {cloud.serial_number} of "
                        f"{cloud.company_code}: {details} (check company_code, serial_number "
                        "and the token)"
                    ) from None
                if code == grpc.StatusCode.PERMISSION_DENIED:
                    raise CloudError(
                        f"the cloud refused the sync: {details} (the device must be a sync agent)"
                    ) from None
                if code not in _RETRY:
                    raise CloudError(
                        f"the cloud refused the sync: {code.name}: {details}"
                    ) from None
                last = f"{code.name}: {details}"
    raise CloudError(
        f"cannot reach the cloud at {cloud.target} after {ATTEMPTS} attempts ({last}); "
        "nothing was applied"
    )


def _sign_in(cloud: Cloud, channel: grpc.Channel) -> str:
    stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
    reply: auth_pb2.AuthenticateDeviceResponse = stub.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=cloud.company_code,
            serial_number=cloud.serial_number,
            access_token=cloud.token,
            kind=auth_pb2.DEVICE_KIND_SYNC_AGENT,
        ),
        timeout=30,
    )
    return reply.tokens.access_token


def _channel(cloud: Cloud) -> grpc.Channel:
    return grpc.secure_channel(
        cloud.target,
        grpc.ssl_channel_credentials(root_certificates=cloud.ca_file.read_bytes()),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
