"""AuthService: user and device authentication, refresh and revoke."""

from __future__ import annotations

from typing import Any

import grpc
from printfabric.v1 import auth_pb2, auth_pb2_grpc

from cloud.api import convert
from cloud.domain.auth import Auth, Credential
from cloud.errors import InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def AuthenticateUser(
        self, request: auth_pb2.AuthenticateUserRequest, context: Ctx
    ) -> auth_pb2.AuthenticateUserResponse:
        which = request.credential.WhichOneof("credential")
        if which is None:
            raise InvalidArgument("give a password, PIN or card credential")
        c = request.credential
        credential = Credential(
            login=c.password.login, password=c.password.password, pin=c.pin, card=c.card
        )
        tokens, user, cards = await self.auth.authenticate_user(
            request.company_code,
            credential,
            device_id=request.device_id,
            register_card=request.register_card,
        )
        return auth_pb2.AuthenticateUserResponse(
            tokens=convert.tokens(tokens), user=convert.user(user, cards)
        )

    async def AuthenticateDevice(
        self, request: auth_pb2.AuthenticateDeviceRequest, context: Ctx
    ) -> auth_pb2.AuthenticateDeviceResponse:
        kind = convert.device_kind(request.kind)
        tokens, device_id, tenant_id = await self.auth.authenticate_device(
            request.company_code, request.serial_number, request.access_token, kind
        )
        return auth_pb2.AuthenticateDeviceResponse(
            tokens=convert.tokens(tokens),
            device_id=device_id,
            kind=request.kind,
            tenant_id=tenant_id,
        )

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: Ctx
    ) -> auth_pb2.RefreshTokenResponse:
        return auth_pb2.RefreshTokenResponse(
            tokens=convert.tokens(await self.auth.refresh(request.refresh_token))
        )

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: Ctx
    ) -> auth_pb2.RevokeTokenResponse:
        await self.auth.revoke(request.refresh_token)
        return auth_pb2.RevokeTokenResponse()
