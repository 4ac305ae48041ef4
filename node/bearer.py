"""The node's bearer token for cloud calls beside the link (DownloadJob): issued and refreshed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import auth_pb2, auth_pb2_grpc

from node.config import NodeConfig

# Renew this long before expiry, so a token never dies in the middle of a download's start.
MARGIN = timedelta(seconds=30)


class BearerToken:
    """An access token from AuthService.AuthenticateDevice(kind NODE), renewed when it expires."""

    def __init__(
        self, config: NodeConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.config = config
        self.clock = clock
        self._tokens: auth_pb2.TokenPair | None = None
        self._lock = asyncio.Lock()

    async def get(self, channel: grpc.aio.Channel) -> str:
        async with self._lock:
            now = self.clock()
            tokens = self._tokens
            if tokens is not None and _expires(tokens.access_token_expire_time) > now + MARGIN:
                return tokens.access_token
            stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
            if tokens is not None and _expires(tokens.refresh_token_expire_time) > now + MARGIN:
                try:
                    refreshed: auth_pb2.RefreshTokenResponse = await stub.RefreshToken(
                        auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
                    )
                    self._tokens = refreshed.tokens
                    return refreshed.tokens.access_token
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                        raise
            response: auth_pb2.AuthenticateDeviceResponse = await stub.AuthenticateDevice(
                auth_pb2.AuthenticateDeviceRequest(
                    company_code=self.config.company_code,
                    serial_number=self.config.serial_number,
                    access_token=self.config.access_token,
                    kind=auth_pb2.DEVICE_KIND_NODE,
                )
            )
            self._tokens = response.tokens
            return response.tokens.access_token

    def forget(self) -> None:
        """Drops the token (the cloud refused it), so the next call signs in again."""
        self._tokens = None

    def metadata(self, token: str) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {token}"),)


def _expires(stamp: Timestamp) -> datetime:
    # An unset time reads as 1970: expired, which is the safe answer.
    return stamp.ToDatetime(tzinfo=UTC)
