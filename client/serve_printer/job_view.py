"""A local job as IPP sees it: job-state, job-state-reasons and the message a person reads.

- pending, `job-queued`: whole and waiting for the forwarder;
- processing, `job-outgoing`: being sent to PrintFabric; with `resources-are-not-ready` as
  well while PrintFabric cannot be reached (or the login ended) and the job waits here;
- completed, `job-completed-successfully` and `queued-in-device` (RFC 8011 5.3.8: forwarded to
  a print system that reports no more status): it is in PrintFabric, held for release or
  printing there, followed with `printfabric jobs`;
- aborted, `aborted-by-system`: the cloud refused it, and the message says why.

The attributes themselves come from `printfabric.ipp.everywhere.job_attributes`, the gateway's
own, fed with the local job as a spool Job.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.formats import FORMATS
from printfabric.ipp import Attribute, JobState
from printfabric.ipp import everywhere as attrs
from printfabric.v1 import common_pb2, spool_pb2

from client.serve_printer.queue import JobState as Local
from client.serve_printer.queue import LocalJob
from client.serve_printer.status import LOGIN_MESSAGE, OFFLINE_MESSAGE, Link, LinkState

WAITING = "resources-are-not-ready"


def job_status(job: LocalJob, link: Link, sending: bool) -> tuple[JobState, tuple[str, ...], str]:
    """(job-state, job-state-reasons, job-state-message) of job now."""
    if job.state is Local.INCOMING:
        return JobState.PENDING_HELD, ("job-incoming",), "waiting for its document"
    if job.state is Local.QUEUED:
        if sending:
            return JobState.PROCESSING, ("job-outgoing",), "being sent to PrintFabric"
        if link.state is LinkState.OFFLINE:
            return JobState.PROCESSING, ("job-outgoing", WAITING), OFFLINE_MESSAGE
        if link.state is LinkState.LOGIN:
            return JobState.PROCESSING, ("job-outgoing", WAITING), LOGIN_MESSAGE
        return JobState.PENDING, ("job-queued",), job.message or "waiting to be sent to PrintFabric"
    if job.state is Local.COMPLETED:
        reasons = ("job-completed-successfully", "queued-in-device")
        return JobState.COMPLETED, reasons, job.message
    if job.state is Local.ABORTED:
        return JobState.ABORTED, ("aborted-by-system",), job.message
    return JobState.CANCELED, ("job-canceled-by-user",), job.message


# IPP job-state -> the spool state whose IPP mapping (everywhere.JOB_STATES) is the same.
_SPOOL_STATE = {
    JobState.PENDING_HELD: spool_pb2.JOB_STATE_INCOMING,
    JobState.PENDING: spool_pb2.JOB_STATE_RELEASED,
    JobState.PROCESSING: spool_pb2.JOB_STATE_PRINTING,
    JobState.COMPLETED: spool_pb2.JOB_STATE_COMPLETED,
    JobState.ABORTED: spool_pb2.JOB_STATE_FAILED,
    JobState.CANCELED: spool_pb2.JOB_STATE_CANCELED,
}


def _stamp(epoch: float) -> Timestamp:
    return Timestamp(seconds=int(epoch))


def job_attributes(
    job: LocalJob,
    link: Link,
    sending: bool,
    printer_uri: str,
    requested: list[str] | None,
    default: tuple[str, ...] = ("all",),
) -> list[Attribute]:
    state, reasons, message = job_status(job, link, sending)
    spool_job = spool_pb2.Job(
        number=job.id,
        title=job.title,
        owner_login=job.user,
        state=_SPOOL_STATE[state],
        state_message=message,
        size_bytes=job.size,
        page_count=int(job.cloud.get("page_count") or 0),
        format=FORMATS.get(job.format.lower(), common_pb2.DOCUMENT_FORMAT_OCTET_STREAM),  # type: ignore[arg-type]
        options=spool_pb2.JobOptions(
            copies=job.copies, duplex=job.duplex, mono=job.mono, media=job.media
        ),
        create_time=_stamp(job.create_time),
        update_time=_stamp(job.process_time or job.create_time),
    )
    if job.complete_time:
        spool_job.complete_time.CopyFrom(_stamp(job.complete_time))
    built = attrs.job_attributes(spool_job, printer_uri, requested, default)
    return [
        Attribute.keyword("job-state-reasons", *reasons) if a.name == "job-state-reasons" else a
        for a in built
    ]
