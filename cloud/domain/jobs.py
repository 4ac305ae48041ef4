"""Job records: what a job is, who may see it, and how it is read back."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.db.models import Job, Printer, User
from cloud.domain.enums import DocumentFormat, JobState, PrincipalKind
from cloud.domain.principal import Principal
from cloud.errors import InvalidArgument, NotFound

MAX_COPIES = 999


@dataclass(frozen=True)
class JobOptions:
    copies: int = 1
    duplex: bool = False
    mono: bool = False
    media: str = ""

    def checked(self) -> JobOptions:
        copies = self.copies or 1
        if not 1 <= copies <= MAX_COPIES:
            raise InvalidArgument(f"copies must be 1 to {MAX_COPIES}")
        if len(self.media) > 128:
            raise InvalidArgument("media name is too long")
        return JobOptions(copies, self.duplex, self.mono, self.media.strip())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> JobOptions:
        data = json.loads(text or "{}")
        return JobOptions(
            **{k: data[k] for k in ("copies", "duplex", "mono", "media") if k in data}
        )


@dataclass(frozen=True)
class JobSubmission:
    """A submitter's header: everything but the data."""

    printer: str
    title: str = ""
    format: DocumentFormat = DocumentFormat.UNSPECIFIED
    options: JobOptions = JobOptions()
    request_id: str = ""
    origin: str = ""
    size_hint: int = 0
    owner_login: str = ""
    # The job made by Spool.create_job that this document completes.
    job_id: str = ""

    def checked(self) -> JobSubmission:
        if not self.printer.strip():
            raise InvalidArgument("the job header names no printer (queue)", reason="NO_QUEUE")
        if len(self.title) > 512 or len(self.origin) > 256 or len(self.request_id) > 128:
            raise InvalidArgument("title, origin or request_id is too long")
        if self.size_hint < 0:
            raise InvalidArgument("size_hint must not be negative")
        return JobSubmission(
            printer=self.printer.strip(),
            title=self.title.strip(),
            format=self.format,
            options=self.options.checked(),
            request_id=self.request_id.strip(),
            origin=self.origin.strip(),
            size_hint=self.size_hint,
            owner_login=self.owner_login.strip(),
            job_id=self.job_id.strip(),
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = int(self.format)
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> JobSubmission:
        data = json.loads(text)
        data["format"] = DocumentFormat(data["format"])
        data["options"] = JobOptions(**data["options"])
        return JobSubmission(**data)


@dataclass(frozen=True)
class JobInfo:
    """A job row with the names callers want to see beside it."""

    job: Job
    printer_name: str
    owner_login: str

    @property
    def options(self) -> JobOptions:
        return JobOptions.from_json(self.job.options)


def job_query() -> Select[tuple[Job, str, str]]:
    return (
        select(Job, Printer.name, User.login)
        .join(Printer, Printer.id == Job.printer_id)
        .join(User, User.id == Job.owner_user_id)
    )


async def load_job(session: AsyncSession, principal: Principal, job_id: str) -> JobInfo:
    """The job if the caller may see it; NOT_FOUND otherwise (also for other tenants' ids)."""
    tenant_id = principal.require_tenant()
    row = (
        await session.execute(job_query().where(Job.tenant_id == tenant_id, Job.id == job_id))
    ).first()
    if row is None or not may_see(principal, row[0]):
        raise NotFound(f"job {job_id} not found", reason="UNKNOWN_JOB")
    return JobInfo(*row)


def may_see(principal: Principal, job: Job) -> bool:
    if principal.kind in (PrincipalKind.NODE, PrincipalKind.MFP):
        return True
    return principal.is_user and (principal.is_admin or job.owner_user_id == principal.subject_id)


def held_message(retention: timedelta) -> str:
    hours = retention.total_seconds() / 3600
    span = f"{hours:g} hours" if hours >= 1 else f"{retention.total_seconds() / 60:g} minutes"
    return f"Held for release: log in at any printer of your company to print it (kept {span})"


def finish(job: Job, state: JobState, message: str, now: datetime, retention: timedelta) -> None:
    """Moves a job to a final state; its data is purged after the retention period."""
    for name, value in finished(state, message, now, retention).items():
        setattr(job, name, value)


def finished(
    state: JobState, message: str, now: datetime, retention: timedelta
) -> dict[str, object]:
    """The columns finish() sets, for an UPDATE statement."""
    return {
        "state": int(state),
        "state_message": message,
        "completed_at": now,
        "updated_at": now,
        "expires_at": now + retention,
    }
