"""The node's MFP API: the gateway's JSON shape (printfabric.mfp) served over HTTPS at the site.

User log-ins are answered from the node's replica first, so MFPs on the site keep logging users
in while the cloud is unreachable; what the replica cannot decide goes up the link (remote
authentication). Everything else (device log-in, configuration, jobs, scans, accounting) is
forwarded to the cloud as the device, exactly as the gateway does, and answers 503 while the
cloud cannot be reached.

Device sessions are the cloud's (`pfd1.<company>.<device>.<cloud token>`). The node asks the
cloud whether a session is good whenever it can; a session the cloud confirmed once is taken
for `mfp_offline_grace` while the cloud cannot be asked. Only sessions of the node's own
tenant are served (403 otherwise). Failed PIN and password attempts are counted per login and
per device in this process; too many lock the count for a while (429, Retry-After), and while
it is locked the right secret is refused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from printfabric.formats import mime_type
from printfabric.https import listen_socket, serving
from printfabric.mfp import DeviceContext, MfpError, UserContext, build_mfp_app, models
from printfabric.mfp.backend import Download
from printfabric.mfp.cloud import CloudMfpBackend, DeviceToken, credential
from printfabric.mfp.errors import from_grpc
from printfabric.mfp.tokens import UserTokenSigner, load_or_create_key
from printfabric.tls import TlsFiles, ensure_dev_pki
from printfabric.v1 import common_pb2, device_pb2
from sqlalchemy import select

from node import lpd
from node.channel import open_channel
from node.config import NodeConfig
from node.credential import Card, Credential, LoginPassword, Pin
from node.db import NodeDatabase
from node.delivery import NodePrinter
from node.errors import AuthRefused, ConfigError
from node.jobs import JobDesk
from node.link import NodeLink
from node.models import DevicePrinter, LpdJob
from node.replica import Replica, ReplicaUser

log = logging.getLogger(__name__)

# The cloud could not be asked: fall back to what the node knows.
_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_OFFLINE_NOTE = (
    " (the cloud is unreachable: only users this node already knows can log in until it is back)"
)


# Failed attempts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counter:
    """One count of failures: its key, its limit and how a person is told about its lock."""

    key: str
    limit: int
    # "login" or "device": what the answer says is locked.
    scope: str
    # "for this login", "at this device"
    words: str


@dataclass
class _Count:
    window_start: float = 0.0
    failures: int = 0
    locked_until: float = 0.0


class AttemptLimiter:
    """Failed PIN/password attempts per login and per device, in this process.

    A count's window opens with its first failure; the failure that reaches the limit locks
    the count for the lockout, and while it is locked every attempt it covers is refused, the
    right secret included (otherwise it would be no lock).
    """

    _PRUNE_AT = 10_000

    def __init__(
        self,
        per_login: int,
        per_device: int,
        window: float,
        lockout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_login = per_login
        self.per_device = per_device
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self._counts: dict[str, _Count] = {}

    def counters(self, device_id: str, login: str | None) -> list[Counter]:
        counters = [Counter(f"device:{device_id}", self.per_device, "device", "at this device")]
        if login is not None:
            key = f"login:{login.strip().casefold()}"
            counters.insert(0, Counter(key, self.per_login, "login", "for this login"))
        return [c for c in counters if c.limit > 0]

    def check(self, counters: list[Counter]) -> None:
        """Raises 429 TOO_MANY_ATTEMPTS when one of the counts is locked."""
        now = self.clock()
        for counter in counters:
            count = self._counts.get(counter.key)
            if count is not None and count.locked_until > now:
                raise _locked(counter, count.locked_until - now)

    def failed(self, counters: list[Counter]) -> tuple[MfpError | None, int]:
        """Counts a failure: the lock it caused (if any), and the attempts left before one."""
        now = self.clock()
        lock: MfpError | None = None
        left = math.inf
        for counter in counters:
            count = self._counts.get(counter.key)
            if count is None:
                self._prune(now)
                count = self._counts[counter.key] = _Count(window_start=now)
            if now - count.window_start >= self.window:
                count.window_start, count.failures = now, 0
            count.failures += 1
            if count.failures >= counter.limit:
                count.window_start, count.failures = now, 0
                count.locked_until = now + self.lockout
                lock = lock or _locked(counter, self.lockout)
            left = min(left, counter.limit - count.failures)
        return lock, 0 if lock is not None or left is math.inf else int(left)

    def succeeded(self, counters: list[Counter]) -> None:
        """A right secret clears its login's count (not the device's)."""
        for counter in counters:
            if counter.scope == "login":
                self._counts.pop(counter.key, None)

    def _prune(self, now: float) -> None:
        if len(self._counts) < self._PRUNE_AT:
            return
        for key, count in list(self._counts.items()):
            if count.locked_until <= now and now - count.window_start >= self.window:
                del self._counts[key]


def _locked(counter: Counter, seconds: float) -> MfpError:
    wait = max(1, math.ceil(seconds))
    return MfpError(
        429,
        "TOO_MANY_ATTEMPTS",
        f"too many failed attempts {counter.words}; try again in {_say(wait)}",
        retry_after=wait,
        locked=counter.scope,
    )


def _say(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


# Device sessions the cloud confirmed ------------------------------------------------------------


class DeviceSessions:
    """Device sessions the cloud confirmed, kept (as SHA-256 of the token, never the token) in
    a file of the node's home, so a node restarted during an outage still knows its MFPs."""

    _MAX = 10_000

    def __init__(self, path: Path, grace: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.grace = grace
        self.clock = clock
        # token digest -> (company, device id, when the cloud last confirmed it)
        self._seen: dict[str, tuple[str, str, float]] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        """Reads the file (blocking); a missing or unreadable one is an empty list."""
        try:
            data = json.loads(self.path.read_text())
            entries = {str(k): (str(v[0]), str(v[1]), float(v[2])) for k, v in dict(data).items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, IndexError) as exc:
            log.warning("ignoring the device session list %s: %s", self.path, exc)
            return
        now = self.clock()
        self._seen = {k: v for k, v in entries.items() if now - v[2] < self.grace}

    def known(self, raw: str, token: DeviceToken) -> bool:
        entry = self._seen.get(_digest(raw))
        return (
            entry is not None
            and entry[:2] == (token.company, token.device_id)
            and self.clock() - entry[2] < self.grace
        )

    async def confirmed(self, raw: str, token: DeviceToken) -> None:
        key = _digest(raw)
        new = key not in self._seen
        self._seen[key] = (token.company, token.device_id, self.clock())
        if new:
            await self._save()

    async def forget(self, raw: str) -> None:
        if self._seen.pop(_digest(raw), None) is not None:
            await self._save()

    async def _save(self) -> None:
        async with self._lock:
            now = self.clock()
            fresh = sorted(
                ((k, v) for k, v in self._seen.items() if now - v[2] < self.grace),
                key=lambda kv: kv[1][2],
            )[-self._MAX :]
            self._seen = dict(fresh)
            text = json.dumps({k: list(v) for k, v in fresh})
            try:
                await asyncio.to_thread(_write_private, self.path, text)
            except OSError as exc:
                log.warning("cannot keep the device session list %s: %s", self.path, exc)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _write_private(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


# The backend -----------------------------------------------------------------------------------


class NodeMfpBackend(CloudMfpBackend):
    """The MFP API at the node: log-ins from the replica first, everything else by the cloud."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        signer: UserTokenSigner,
        *,
        company_code: str,
        replica: Replica,
        link: NodeLink | None,
        limiter: AttemptLimiter,
        sessions: DeviceSessions,
        check_timeout: float = 5.0,
        db: NodeDatabase | None = None,
        jobs: JobDesk | None = None,
    ) -> None:
        super().__init__(channel, signer)
        self.company_code = company_code
        self.replica = replica
        self.link = link
        self.limiter = limiter
        self.sessions = sessions
        self.check_timeout = check_timeout
        # Where LPD jobs held at this node are (listed, released and deleted here too).
        self.db = db
        self.jobs = jobs

    # Tenant and device checks ----------------------------------------------------------------

    def _same_company(self, company: str) -> bool:
        return company.strip().casefold() == self.company_code.strip().casefold()

    def _own(self, device: DeviceContext) -> DeviceToken:
        """The device token, if it is of this node's tenant; 401 if malformed, 403 if not ours."""
        token = DeviceToken.decode(device.token)
        if not self._same_company(token.company):
            raise MfpError(
                403,
                "WRONG_TENANT",
                "this device session is of another company than this node's; "
                "log the device in at its own company's node or at the cloud",
            )
        return token

    def _online(self) -> bool:
        return self.link is None or self.link.connected.is_set()

    async def _verified(self, device: DeviceContext) -> DeviceToken:
        """The device token, checked by the cloud when it can be asked, else by what the node
        remembers the cloud confirmed."""
        token = self._own(device)
        known = self.sessions.known(device.token, token)
        if known and not self._online():
            return token
        try:
            reply = await self.devices.GetDeviceConfig(
                device_pb2.GetDeviceConfigRequest(),
                metadata=token.metadata,
                timeout=self.check_timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _UNREACHABLE:
                await self.sessions.forget(device.token)
                raise from_grpc(exc) from None
            if known:
                return token
            raise MfpError(
                503,
                "CLOUD_UNREACHABLE",
                "the cloud is unreachable and this node has not seen this device session "
                "before, so it cannot check it; try again when the cloud is back",
                retry_after=30,
            ) from None
        await self.sessions.confirmed(device.token, token)
        await self._remember_printer(token.device_id, reply.printer)
        return token

    async def _remember_printer(self, device_id: str, printer: device_pb2.Printer) -> None:
        if self.db is None or not printer.printer_id:
            return
        async with self.db.session() as session, session.begin():
            row = await session.get(DevicePrinter, device_id)
            if row is None:
                row = DevicePrinter(device_id=device_id)
                session.add(row)
            row.printer_id, row.name, row.device_uri = (
                printer.printer_id,
                printer.name,
                printer.device_uri,
            )
            row.updated_at = datetime.now(UTC)

    async def _device_printer(self, device_id: str) -> NodePrinter:
        """The printer a device prints on, as the cloud last said; 503 if never said."""
        row = None
        if self.db is not None:
            async with self.db.session() as session, session.begin():
                row = await session.get(DevicePrinter, device_id)
        if row is None or not row.device_uri:
            raise MfpError(
                503,
                "PRINTER_UNKNOWN",
                "this node does not know yet which printer this device prints on; try again "
                "when the cloud is reachable",
                retry_after=30,
            )
        return NodePrinter(row.printer_id, row.name, row.device_uri)

    # Devices ---------------------------------------------------------------------------------

    async def device_login(self, body: models.DeviceLogin) -> models.DeviceSession:
        if not self._same_company(body.company_code):
            raise MfpError(
                403,
                "WRONG_TENANT",
                "this node serves another company; check the Company Identification Code",
            )
        session = await super().device_login(body)
        token = DeviceToken.decode(session.device_token)
        await self.sessions.confirmed(session.device_token, token)
        return session

    async def device_config(self, device: DeviceContext) -> models.DeviceConfig:
        self._own(device)
        return await super().device_config(device)

    # Users -----------------------------------------------------------------------------------

    async def authenticate(
        self, device: DeviceContext, body: models.UserLogin
    ) -> models.UserSession:
        token = await self._verified(device)
        credential(body)  # the method's fields are there (400 otherwise)
        cred = _node_credential(body)
        counters: list[Counter] = []
        if body.method != "card":
            counters = self.limiter.counters(
                token.device_id, body.login if body.method == "password" else None
            )
        self.limiter.check(counters)
        try:
            user = await self.replica.authenticate(cred)
        except AuthRefused as exc:
            if exc.reason == "USER_DISABLED":
                raise _disabled(exc.message) from None
            raise self._failure(body, counters, exc.message) from None
        if user is None:
            user = await self._remote(token, body, cred, counters)
        if user.disabled:
            raise _disabled(f"the account {user.login} is disabled")
        self.limiter.succeeded(counters)
        return self.session(token.company, token.device_id, _user_info(user))

    async def _remote(
        self,
        token: DeviceToken,
        body: models.UserLogin,
        cred: Credential,
        counters: list[Counter],
    ) -> ReplicaUser:
        """Asks the cloud over the link about what the replica does not know."""
        online = self.link is not None and self.link.connected.is_set()
        reason = ""
        if online:
            assert self.link is not None
            result = await self.link.remote_authenticate(cred, token.device_id)
            if result.accepted and result.user is not None:
                return result.user
            reason = result.reason
            if "disabled" in reason:
                raise _disabled(reason)
            online = self.link.connected.is_set()
        # The link went down, the cloud was busy or did not answer in time: nobody decided, and
        # the attempt still counts (a PIN the replica does not know is a wrong one as often).
        note = _OFFLINE_NOTE if not online else ""
        if online and any(w in reason.lower() for w in ("in time", "busy", "lost")):
            note = f" (the cloud could not check it now: {reason})"
        if body.method == "card":
            message = "this card is not registered"
            message += note or "; log in with your login and password to register it"
            raise MfpError(404, "UNKNOWN_CARD", message, self_registration=online)
        words = "wrong login or password" if body.method == "password" else "unknown PIN"
        raise self._failure(body, counters, words + note)

    def _failure(self, body: models.UserLogin, counters: list[Counter], message: str) -> MfpError:
        """Counts a failed PIN/password attempt: the lock it caused, or 401 saying why (a
        malformed card number is refused without counting)."""
        if body.method == "card":
            return MfpError(401, "BAD_CREDENTIALS", message)
        lock, left = self.limiter.failed(counters)
        if lock is not None:
            return lock
        return MfpError(401, "BAD_CREDENTIALS", message, attempts_left=left)

    async def register_card(
        self, device: DeviceContext, body: models.CardRegistration
    ) -> models.UserSession:
        self._own(device)
        return await super().register_card(device, body)

    async def user(self, device: DeviceContext, user_token: str) -> UserContext:
        token = self._own(device)
        found = await super().user(device, user_token)
        if not self._same_company(found.tenant) or found.device_id != token.device_id:
            raise MfpError(
                401, "USER_SESSION_INVALID", "the user session is not valid; log in again"
            )
        return found

    # Forwarded as they are, for this tenant's devices only -------------------------------------

    # Jobs: the cloud's, and the LPD jobs this node holds (also while the cloud is away) --------

    async def _device(self, device: DeviceContext) -> DeviceToken:
        """The device token: checked by the cloud's own answer to the call when online, by the
        node's memory of confirmed sessions when not."""
        return self._own(device) if self._online() else await self._verified(device)

    async def list_jobs(self, device: DeviceContext, user: UserContext) -> list[models.JobInfo]:
        await self._device(device)
        cloud: list[models.JobInfo] | None = None
        if self._online():
            try:
                cloud = await super().list_jobs(device, user)
            except MfpError as exc:
                if exc.status != 503:
                    raise
        rows = await self._local_jobs(user.login)
        if cloud is None:
            return [_local_info(r) for r in rows]
        # The cloud speaks for the jobs it has (one released at another site is not held
        # any more); the node adds those still on their way up.
        known = {job.job_id for job in cloud}
        return cloud + [_local_info(r) for r in rows if not r.uploaded and r.job_id not in known]

    async def release(
        self, device: DeviceContext, user: UserContext, body: models.ReleaseRequest
    ) -> list[models.JobInfo]:
        token = await self._device(device)
        local = {r.job_id: r for r in await self._local_jobs(user.login)}
        online = self._online()
        chosen = list(local) if body.all else [i for i in body.job_ids if i in local]
        # An uploaded job goes through the cloud when it can be asked (it may be released at
        # another site too); the others are printed from here.
        here = [local[i] for i in chosen if not (online and local[i].uploaded)]
        here_ids = {r.job_id for r in here}
        others = [i for i in body.job_ids if i not in here_ids]
        if others and not online:
            raise MfpError(
                503,
                "CLOUD_UNREACHABLE",
                "the cloud is unreachable: only jobs held at this node can be printed now",
                retry_after=30,
            )
        released: list[models.JobInfo] = []
        if here:
            assert self.jobs is not None
            printer = await self._device_printer(token.device_id)
            for row in here:
                self.jobs.print_local(row.job_id, printer)
                released.append(
                    _local_info(row).model_copy(
                        update={"state": "released", "state_message": f"Sent to {printer.name}"}
                    )
                )
        if online and (others or body.all):
            request = models.ReleaseRequest(job_ids=others, all=body.all)
            released.extend(await super().release(device, user, request))
        return released

    async def delete_job(
        self, device: DeviceContext, user: UserContext, job_id: str
    ) -> models.JobInfo:
        await self._device(device)
        local = {r.job_id: r for r in await self._local_jobs(user.login)}
        if job_id not in local:
            return await super().delete_job(device, user, job_id)
        assert self.db is not None and self.jobs is not None
        async with self.db.session() as session, session.begin():
            row = await session.get(LpdJob, job_id)
            if row is None or row.state not in lpd.WAITING:
                raise MfpError(
                    409, "JOB_NOT_HELD", f"job {row.number if row else job_id} is no longer held"
                )
            await lpd.drop(
                row,
                lpd.DELETED,
                f"Deleted at the printer by {user.login}",
                self.jobs.outbox,
                session,
            )
        return _local_info(row).model_copy(update={"state": "canceled"})

    async def download(self, device: DeviceContext, user: UserContext, job_id: str) -> Download:
        await self._device(device)
        local = {r.job_id: r for r in await self._local_jobs(user.login)}
        row = local.get(job_id)
        if row is None:
            return await super().download(device, user, job_id)
        try:
            fh = await asyncio.to_thread(Path(row.path).open, "rb")
        except FileNotFoundError:
            raise MfpError(404, "UNKNOWN_JOB", f"job {job_id} not found") from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(fh.read, 1 << 20):
                    yield chunk
            finally:
                await asyncio.to_thread(fh.close)

        return Download(_local_info(row), mime_type(row.document_format), chunks())

    async def _local_jobs(self, login: str) -> list[LpdJob]:
        """The user's LPD jobs held at this node, oldest first."""
        if self.db is None:
            return []
        async with self.db.session() as session, session.begin():
            return list(
                (
                    await session.scalars(
                        select(LpdJob)
                        .where(LpdJob.owner_key == login.casefold(), LpdJob.state == lpd.HELD)
                        .order_by(LpdJob.received_at)
                    )
                ).all()
            )

    async def scan_profiles(
        self, device: DeviceContext, user: UserContext
    ) -> list[models.ScanDestination]:
        self._own(device)
        return await super().scan_profiles(device, user)

    async def upload_scan(
        self,
        device: DeviceContext,
        description: models.ScanDescription,
        chunks: AsyncIterator[bytes],
    ) -> models.ScanReceipt:
        self._own(device)
        return await super().upload_scan(device, description, chunks)

    async def record_usage(
        self, device: DeviceContext, body: models.AccountingRecord
    ) -> models.AccountingReceipt:
        self._own(device)
        return await super().record_usage(device, body)


def _local_info(row: LpdJob) -> models.JobInfo:
    return models.JobInfo(
        job_id=row.job_id,
        number=row.number,
        title=row.title,
        state="held",
        state_message=row.state_message,
        owner=row.owner_login,
        queue=row.queue,
        format=mime_type(row.document_format),
        pages=0,
        size=row.size,
        created_at=row.received_at,
    )


def _node_credential(body: models.UserLogin) -> Credential:
    if body.method == "password":
        return LoginPassword(body.login or "", body.password or "")
    if body.method == "pin":
        return Pin(body.pin or "")
    return Card(body.card or "")


def _disabled(message: str) -> MfpError:
    return MfpError(403, "USER_DISABLED", f"{message}; ask your administrator")


def _user_info(user: ReplicaUser) -> models.UserInfo:
    rights = []
    for right in user.rights:
        try:
            name = common_pb2.AccessRight.Name(right)
        except ValueError:
            continue
        if right:
            rights.append(name.removeprefix("ACCESS_RIGHT_").lower())
    return models.UserInfo(
        login=user.login,
        email=user.email,
        full_name=user.full_name,
        department=user.department,
        rights=rights,
    )


# The HTTPS listener ----------------------------------------------------------------------------


@dataclass
class RunningMfpApi:
    host: str
    port: int
    # What an MFP must trust: the node's own CA, or the configured certificate.
    ca_cert: Path
    backend: NodeMfpBackend

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/mfp/v1"


def tls_files(config: NodeConfig) -> TlsFiles:
    """The configured certificate, else the node's own (CA and SHA-256 server certificate in
    <home>/tls, made on first start) for mfp_hostnames and the listen address (blocking)."""
    if config.mfp_tls_cert and config.mfp_tls_key:
        return TlsFiles(
            ca_cert=config.mfp_tls_cert, cert=config.mfp_tls_cert, key=config.mfp_tls_key
        )
    names = list(config.mfp_hostnames)
    host = config.mfp_host
    with contextlib.suppress(ValueError):
        if not ipaddress.ip_address(host).is_unspecified and host not in names:
            names.append(host)
    return ensure_dev_pki(config.tls_dir, names)


def _listen_socket(config: NodeConfig) -> socket.socket:
    try:
        return listen_socket(config.mfp_host, config.mfp_port, backlog=128)
    except OSError as exc:
        raise ConfigError(
            f"the MFP API cannot listen on {config.mfp_listen}: {exc.strerror} "
            "(set PF_NODE_MFP_LISTEN)"
        ) from exc


@contextlib.asynccontextmanager
async def running_mfp_api(
    config: NodeConfig,
    replica: Replica,
    link: NodeLink | None,
    db: NodeDatabase | None = None,
    jobs: JobDesk | None = None,
) -> AsyncIterator[RunningMfpApi]:
    """Serves the MFP API on config.mfp_listen (port 0: any free port) until the block ends."""
    try:
        ca_pem = await asyncio.to_thread(config.cloud_ca.read_bytes)
    except OSError as exc:
        raise ConfigError(
            f"the MFP API needs the cloud's CA certificate {config.cloud_ca} (PF_CLOUD_CA): "
            f"{exc.strerror}"
        ) from exc
    tls = await asyncio.to_thread(tls_files, config)
    key = await asyncio.to_thread(load_or_create_key, config.mfp_key_path)
    sessions = DeviceSessions(config.home / "mfp-devices.json", config.mfp_offline_grace)
    await asyncio.to_thread(sessions.load)
    channel = open_channel(config, ca_pem)
    try:
        backend = NodeMfpBackend(
            channel,
            UserTokenSigner(key, config.mfp_session_seconds),
            company_code=config.company_code,
            replica=replica,
            link=link,
            limiter=AttemptLimiter(
                config.mfp_login_failures,
                config.mfp_device_failures,
                config.mfp_failure_window,
                config.mfp_lockout_seconds,
            ),
            sessions=sessions,
            check_timeout=config.remote_auth_timeout,
            db=db,
            jobs=jobs,
        )
        app = build_mfp_app(backend, title="PrintFabric node MFP API")
        sock = _listen_socket(config)
        try:
            async with serving(app, sock, tls.cert, tls.key, name="node-mfp-api"):
                running = RunningMfpApi(
                    config.mfp_host, sock.getsockname()[1], tls.ca_cert, backend
                )
                log.info("MFP API listening on %s", running.url)
                yield running
        finally:
            sock.close()
    finally:
        await channel.close()
