"""serve-printer running: the queue opened, the IPPS listener up, the forwarder going, until a signal.

One process per state folder (a lock file says so): two would hand out the same job-ids and
send the same jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from printfabric.https import listen_socket, serving
from printfabric.tls import ensure_dev_pki

from client.api import Account, choose_printer
from client.errors import ClientError, LoginRequired, NotFound, Unreachable
from client.paths import private_dir
from client.serve_printer.app import PATH, build_app
from client.serve_printer.description import DescriptionCache, Destination, QueueDescription
from client.serve_printer.forwarder import Forwarder, housekeeping
from client.serve_printer.printer import LocalPrinter
from client.serve_printer.queue import JobQueue
from client.serve_printer.settings import CREATE_JOB_TIMEOUT_SECONDS, ServeSettings
from client.serve_printer.status import Link, LinkState
from client.session import SessionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """What the CLI tells the user once the printer listens."""

    uri: str
    port: int
    printer: str
    company: str
    login: str
    link: str
    waiting_jobs: int
    ca_cert: Path

    @property
    def lpadmin(self) -> str:
        return f"lpadmin -p PrintFabric -E -v {self.uri} -m everywhere"


@contextlib.contextmanager
def exclusive(home: Path) -> Iterator[None]:
    """Holds serve-printer's lock in home; ClientError if another serve-printer holds it."""
    fd = os.open(home / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClientError(
                f"another serve-printer is running with the state folder {home}: stop it first",
                "ALREADY_RUNNING",
            ) from None
        yield
    finally:
        os.close(fd)


async def first_destination(
    store: SessionStore, wanted: str, cache: DescriptionCache, link: Link
) -> Destination:
    """The cloud queue to forward to: asked of the cloud, else the cached one (offline start)."""
    session = store.load()  # LoginRequired when nobody ever logged in: nothing to forward as
    try:
        async with Account(store) as account:
            chosen = choose_printer(await account.printers(), wanted)
            session = account.session
        description = QueueDescription.from_api(chosen)
        await asyncio.to_thread(cache.save, description)
        link.set(LinkState.ONLINE)
    except (Unreachable, LoginRequired) as exc:
        offline = isinstance(exc, Unreachable)
        name = wanted or (cache.names()[0] if len(cache.names()) == 1 else "")
        if not name:
            raise type(exc)(
                f"{exc.message}; and which printer to forward to is not known yet: "
                "say --printer (or PRINTFABRIC_PRINTER)",
                exc.reason,
            ) from None
        description = cache.load(name) or QueueDescription.default(name)
        link.set(LinkState.OFFLINE if offline else LinkState.LOGIN, exc.message)
        known = "its last known description" if description.known else "a default description"
        log.warning("%s; starting with %s of %s", exc.message, known, name)
    return Destination(description, session.company, session.login)


async def refresh_description(
    store: SessionStore,
    destination: Destination,
    cache: DescriptionCache,
    link: Link,
    every: float,
) -> None:
    """Fetches the queue's description again every so often; runs until cancelled."""
    while True:
        await asyncio.sleep(every)
        name = destination.description.name
        try:
            async with Account(store) as account:
                description = QueueDescription.from_api(await account.printer(name))
                destination.company = account.session.company
                destination.login = account.session.login
            await asyncio.to_thread(cache.save, description)
            destination.description = description
            link.set(LinkState.ONLINE)
        except Unreachable as exc:
            link.set(LinkState.OFFLINE, exc.message)
        except LoginRequired as exc:
            link.set(LinkState.LOGIN, exc.message)
        except NotFound as exc:
            log.warning("%s: jobs for it will be refused", exc.message)
        except ClientError as exc:
            log.warning("cannot fetch the description of %s: %s", name, exc.message)


async def serve(settings: ServeSettings, announce: Callable[[Started], None]) -> None:
    """Runs serve-printer until SIGINT or SIGTERM."""
    home = private_dir(settings.home)
    with exclusive(home):
        await _serve(settings, announce)


async def _serve(settings: ServeSettings, announce: Callable[[Started], None]) -> None:
    store = SessionStore(settings.paths)
    cache = DescriptionCache(settings.printers_dir)
    link = Link()
    destination = await first_destination(store, settings.printer, cache, link)
    queue = JobQueue(settings.queue_dir, settings.retention_seconds, settings.retention_jobs)
    waiting = await asyncio.to_thread(queue.open)
    tls = await asyncio.to_thread(ensure_dev_pki, settings.tls_dir, settings.tls_hostnames)
    app = build_app(LocalPrinter(queue, destination, link))
    listen = settings.listen
    try:
        sock = listen_socket(listen.host, listen.port)
    except OSError as exc:
        raise ClientError(
            f"cannot listen on {listen.host}:{listen.port}: {exc.strerror}", "LISTEN"
        ) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    forwarder = Forwarder(queue, store, destination, cache, link, settings.retry_max)
    try:
        async with serving(app, sock, tls.cert, tls.key, name="serve-printer"):
            port = int(sock.getsockname()[1])
            announce(
                Started(
                    uri=f"ipps://{listen.uri_host}:{port}{PATH}",
                    port=port,
                    printer=destination.description.name,
                    company=destination.company,
                    login=destination.login,
                    link=str(link.state),
                    waiting_jobs=len(waiting),
                    ca_cert=tls.ca_cert,
                )
            )
            tasks = [
                asyncio.create_task(forwarder.run(), name="forwarder"),
                asyncio.create_task(housekeeping(queue, CREATE_JOB_TIMEOUT_SECONDS)),
                asyncio.create_task(
                    refresh_description(store, destination, cache, link, settings.describe_every)
                ),
            ]
            try:
                await _until(stop, tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                log.info("stopping; %d job(s) stay queued here", len(queue.waiting()))
    finally:
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _until(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Waits for the stop signal; a background task that dies is a failure of the whole."""
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    for task in done:
        if task is not stopper:
            task.result()
            raise RuntimeError(f"{task.get_name()} stopped")
