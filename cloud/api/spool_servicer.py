"""SpoolService: streamed job submission and download, release, cancel, signed URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from printfabric.v1 import spool_pb2, spool_pb2_grpc

from cloud.api import convert
from cloud.api.interceptor import caller
from cloud.domain.enums import JobState
from cloud.domain.spool import Spool
from cloud.errors import InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]


def _states(values: object) -> frozenset[JobState]:
    try:
        return frozenset(JobState(int(v)) for v in values)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise InvalidArgument(f"unknown job state: {exc}") from exc


class SpoolServicer(spool_pb2_grpc.SpoolServiceServicer):
    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    async def SubmitJob(
        self, request_iterator: AsyncIterator[spool_pb2.SubmitJobRequest], context: Ctx
    ) -> spool_pb2.SubmitJobResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("item") != "header":
            raise InvalidArgument("SubmitJob must start with a header message", reason="NO_HEADER")

        marked = first.header.ends_with_marker

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            ended = False
            async for msg in request_iterator:
                kind = msg.WhichOneof("item")
                if ended or kind == "header" or (kind == "end" and not marked):
                    raise InvalidArgument(
                        "only chunks (and, if announced, one end marker) follow the header",
                        reason="SECOND_HEADER",
                    )
                if kind == "end":
                    if msg.end.size != sent:
                        raise InvalidArgument(
                            f"the end marker says {msg.end.size} bytes; {sent} arrived",
                            reason="SIZE_MISMATCH",
                        )
                    ended = True
                    continue
                sent += len(msg.chunk)
                yield msg.chunk
            if marked and not ended:
                # A cancelled call's stream can end like a finished one: not a document.
                raise InvalidArgument(
                    "the upload stopped before its end marker", reason="UPLOAD_CUT"
                )

        info = await self.spool.submit(caller(), convert.submission(first.header), chunks())
        return spool_pb2.SubmitJobResponse(job=convert.job(info))

    async def CreateJob(
        self, request: spool_pb2.CreateJobRequest, context: Ctx
    ) -> spool_pb2.CreateJobResponse:
        info = await self.spool.create_job(caller(), convert.submission(request.header))
        return spool_pb2.CreateJobResponse(job=convert.job(info))

    async def GetJob(
        self, request: spool_pb2.GetJobRequest, context: Ctx
    ) -> spool_pb2.GetJobResponse:
        return spool_pb2.GetJobResponse(
            job=convert.job(await self.spool.get(caller(), request.job_id))
        )

    async def ListJobs(
        self, request: spool_pb2.ListJobsRequest, context: Ctx
    ) -> spool_pb2.ListJobsResponse:
        rows, token = await self.spool.list_jobs(
            caller(),
            request.page_size,
            request.page_token,
            states=_states(request.states),
            all_users=request.all_users,
            owner_login=request.owner_login,
            printer_id=request.printer_id,
            number=request.number,
        )
        return spool_pb2.ListJobsResponse(
            jobs=[convert.job(j) for j in rows], next_page_token=token
        )

    async def DownloadJob(
        self, request: spool_pb2.DownloadJobRequest, context: Ctx
    ) -> AsyncIterator[spool_pb2.DownloadJobResponse]:
        info, data = await self.spool.download(caller(), request.job_id, request.offset)
        yield spool_pb2.DownloadJobResponse(job=convert.job(info))
        async for chunk in data:
            yield spool_pb2.DownloadJobResponse(chunk=chunk)

    async def ReleaseJobs(
        self, request: spool_pb2.ReleaseJobsRequest, context: Ctx
    ) -> spool_pb2.ReleaseJobsResponse:
        rows = await self.spool.release(
            caller(),
            list(request.job_ids),
            request.all_held,
            request.printer_id,
            request.owner_login,
        )
        return spool_pb2.ReleaseJobsResponse(jobs=[convert.job(j) for j in rows])

    async def CancelJob(
        self, request: spool_pb2.CancelJobRequest, context: Ctx
    ) -> spool_pb2.CancelJobResponse:
        return spool_pb2.CancelJobResponse(
            job=convert.job(await self.spool.cancel(caller(), request.job_id))
        )

    async def UpdateJobStatus(
        self, request: spool_pb2.UpdateJobStatusRequest, context: Ctx
    ) -> spool_pb2.UpdateJobStatusResponse:
        (state,) = _states([request.state]) if request.state else (None,)
        if state is None:
            raise InvalidArgument("give the new state")
        info = await self.spool.update_status(
            caller(), request.job_id, state, request.state_message
        )
        return spool_pb2.UpdateJobStatusResponse(job=convert.job(info))

    async def CreateUploadUrl(
        self, request: spool_pb2.CreateUploadUrlRequest, context: Ctx
    ) -> spool_pb2.CreateUploadUrlResponse:
        upload_id, url = await self.spool.create_upload(
            caller(), convert.submission(request.header)
        )
        return spool_pb2.CreateUploadUrlResponse(
            upload_id=upload_id,
            url=url.url,
            headers=url.headers,
            expire_time=convert.ts(url.expire_time),
        )

    async def CommitUpload(
        self, request: spool_pb2.CommitUploadRequest, context: Ctx
    ) -> spool_pb2.CommitUploadResponse:
        return spool_pb2.CommitUploadResponse(
            job=convert.job(await self.spool.commit_upload(caller(), request.upload_id))
        )

    async def CreateDownloadUrl(
        self, request: spool_pb2.CreateDownloadUrlRequest, context: Ctx
    ) -> spool_pb2.CreateDownloadUrlResponse:
        url = await self.spool.download_url(caller(), request.job_id)
        return spool_pb2.CreateDownloadUrlResponse(
            url=url.url, expire_time=convert.ts(url.expire_time)
        )
