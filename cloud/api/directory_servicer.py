"""DirectoryService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from printfabric.v1 import directory_pb2, directory_pb2_grpc

from cloud.api import convert
from cloud.api.interceptor import caller
from cloud.domain.directory import Directory, NewUser
from cloud.domain.directory_sync import SyncHeader, SyncRecord, sync_users
from cloud.domain.enums import UserSource
from cloud.errors import InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]
_UPDATABLE = {"email", "full_name", "department", "rights", "disabled"}


class DirectoryServicer(directory_pb2_grpc.DirectoryServiceServicer):
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def CreateUser(
        self, request: directory_pb2.CreateUserRequest, context: Ctx
    ) -> directory_pb2.CreateUserResponse:
        new = NewUser(
            fields=convert.user_fields(request.user, None),
            password=request.password,
            pin=request.pin,
            cards=list(request.cards),
        )
        created = await self.directory.create(caller(), "", new)
        return directory_pb2.CreateUserResponse(user=convert.user(created, len(set(request.cards))))

    async def GetUser(
        self, request: directory_pb2.GetUserRequest, context: Ctx
    ) -> directory_pb2.GetUserResponse:
        who = caller()
        user_id = request.user_id
        if not user_id and not request.login:
            # Neither: the calling user (how the gateway learns whose access token it holds).
            if not who.is_user:
                raise InvalidArgument("give user_id or login")
            user_id = who.subject_id
        user, cards = await self.directory.get(who, user_id, request.login)
        return directory_pb2.GetUserResponse(user=convert.user(user, cards))

    async def ListUsers(
        self, request: directory_pb2.ListUsersRequest, context: Ctx
    ) -> directory_pb2.ListUsersResponse:
        rows, token = await self.directory.list_users(
            caller(), request.page_size, request.page_token, request.include_disabled
        )
        return directory_pb2.ListUsersResponse(
            users=[convert.user(u, c) for u, c in rows], next_page_token=token
        )

    async def UpdateUser(
        self, request: directory_pb2.UpdateUserRequest, context: Ctx
    ) -> directory_pb2.UpdateUserResponse:
        paths = set(request.update_mask.paths)
        if not paths or paths - _UPDATABLE:
            raise InvalidArgument(f"update_mask must name some of {', '.join(sorted(_UPDATABLE))}")
        user, cards = await self.directory.update(
            caller(), request.user.user_id, convert.user_fields(request.user, paths)
        )
        return directory_pb2.UpdateUserResponse(user=convert.user(user, cards))

    async def DisableUser(
        self, request: directory_pb2.DisableUserRequest, context: Ctx
    ) -> directory_pb2.DisableUserResponse:
        user, cards = await self.directory.disable(caller(), request.user_id)
        return directory_pb2.DisableUserResponse(user=convert.user(user, cards))

    async def SetPassword(
        self, request: directory_pb2.SetPasswordRequest, context: Ctx
    ) -> directory_pb2.SetPasswordResponse:
        await self.directory.set_password(caller(), request.user_id, request.password)
        return directory_pb2.SetPasswordResponse()

    async def SetPin(
        self, request: directory_pb2.SetPinRequest, context: Ctx
    ) -> directory_pb2.SetPinResponse:
        await self.directory.set_pin(caller(), request.user_id, request.pin)
        return directory_pb2.SetPinResponse()

    async def AddCard(
        self, request: directory_pb2.AddCardRequest, context: Ctx
    ) -> directory_pb2.AddCardResponse:
        await self.directory.add_card(caller(), request.user_id, request.card)
        return directory_pb2.AddCardResponse()

    async def RemoveCard(
        self, request: directory_pb2.RemoveCardRequest, context: Ctx
    ) -> directory_pb2.RemoveCardResponse:
        await self.directory.remove_card(caller(), request.user_id, request.card)
        return directory_pb2.RemoveCardResponse()

    async def SyncUsers(
        self, request_iterator: AsyncIterator[directory_pb2.SyncUsersRequest], context: Ctx
    ) -> directory_pb2.SyncUsersResponse:
        principal = caller()
        tenant_id = self.directory.require_sync(principal)
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("item") != "header":
            raise InvalidArgument("the first SyncUsers message must be the header")
        h = first.header
        try:
            header = SyncHeader(source=UserSource(h.source), request_id=h.request_id, full=h.full)
        except ValueError as exc:
            raise InvalidArgument("unknown user source") from exc

        async def records() -> AsyncIterator[SyncRecord]:
            async for msg in request_iterator:
                if msg.WhichOneof("item") != "record":
                    raise InvalidArgument("only records may follow the SyncUsers header")
                r = msg.record
                yield SyncRecord(
                    login=r.login,
                    email=r.email,
                    full_name=r.full_name,
                    department=r.department,
                    pin=r.pin,
                    clear_pin=r.clear_pin,
                    cards=tuple(r.cards),
                    replace_cards=r.replace_cards,
                    disabled=r.disabled,
                    rights=convert.rights(r.rights),
                    set_rights=r.set_rights,
                )

        summary = await sync_users(self.directory.rt, principal, tenant_id, header, records())
        return directory_pb2.SyncUsersResponse(
            created=summary.created,
            updated=summary.updated,
            disabled=summary.disabled,
            unchanged=summary.unchanged,
            problems=[
                directory_pb2.SyncUserProblem(login=login, reason=why)
                for login, why in summary.problems
            ],
            directory_revision=summary.directory_revision,
        )
