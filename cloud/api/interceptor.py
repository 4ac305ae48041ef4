"""One server interceptor: checks the bearer token, sets the caller, maps domain errors to status."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc

from cloud.api.status import GRPC_STATUS, REASON_KEY, RETRY_AFTER_KEY
from cloud.db.engine import run_to_completion
from cloud.domain.auth import Auth
from cloud.domain.principal import Principal
from cloud.domain.tokens import TokenSigner
from cloud.errors import CloudError, Unauthenticated

log = logging.getLogger(__name__)

_PRINCIPAL: ContextVar[Principal] = ContextVar("printfabric_principal")

# Methods that authenticate by what they carry instead of a bearer token.
PUBLIC_METHODS = frozenset(
    {
        "/printfabric.v1.AuthService/AuthenticateUser",
        "/printfabric.v1.AuthService/AuthenticateDevice",
        "/printfabric.v1.AuthService/RefreshToken",
        "/printfabric.v1.AuthService/RevokeToken",
        # A queue's public description, for driverless set-up before anyone logs in.
        "/printfabric.v1.DeviceService/DescribePrinter",
        # The node proves itself in its Hello message, on the stream.
        "/printfabric.v1.NodeLinkService/Connect",
    }
)


def caller() -> Principal:
    """The verified caller of the current RPC."""
    return _PRINCIPAL.get()


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: CloudError) -> None:
    trailers = [(REASON_KEY, error.reason)]
    if error.retry_after is not None:
        trailers.append((RETRY_AFTER_KEY, str(error.retry_after)))
    context.set_trailing_metadata(tuple(trailers))
    await context.abort(GRPC_STATUS[error.code], error.message)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, signer: TokenSigner, auth: Auth) -> None:
        self.signer = signer
        self.auth = auth

    async def _principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        metadata = dict(context.invocation_metadata() or ())
        header = str(metadata.get("authorization", ""))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "missing 'authorization: Bearer <token>' metadata; authenticate with AuthService first",
                reason="NO_TOKEN",
            )
        principal = self.signer.verify(token.strip(), self.auth.rt.clock())
        await self.auth.check_session(principal)
        return principal

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        public = handler_call_details.method in PUBLIC_METHODS
        wrapped: grpc.RpcMethodHandler[Any, Any] = _wrap(
            handler, None if public else self._principal, handler_call_details.method
        )
        return wrapped


PrincipalSource = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[Principal]] | None


def _wrap(handler: Any, authenticate: PrincipalSource, method: str) -> Any:
    async def enter(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if authenticate is not None:
            _PRINCIPAL.set(await authenticate(context))

    async def fail(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
        if isinstance(exc, CloudError):
            await abort_with(context, exc)
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error in %s (incident %s)", method, incident)
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error; incident {incident} is logged"
        )

    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await enter(context)
            return await inner(request, context)

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # A unary handler runs to its end even if the call is cancelled: a database query
            # cut off by cancellation can leave an aiosqlite connection inside a transaction
            # that holds SQLite's write lock. (Client-streaming handlers must stay cancellable,
            # since a cancelled stream would otherwise read as a finished one; they shield their
            # database work themselves.)
            try:
                if handler.unary_unary:
                    return await run_to_completion(run(request, context))
                return await run(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await fail(context, exc)

        factory = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary
            else grpc.stream_unary_rpc_method_handler
        )
        return factory(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            await enter(context)
            async for response in inner_stream(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await fail(context, exc)

    factory = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream
        else grpc.stream_stream_rpc_method_handler
    )
    return factory(streaming, handler.request_deserializer, handler.response_serializer)
