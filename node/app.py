"""Assembles the node from its config: database, replica, outbox, job desk, link and MFP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from printfabric.lpd import LpdLimits, LpdServer

from node.bearer import BearerToken
from node.config import NodeConfig
from node.db import NodeDatabase
from node.errors import ConfigError
from node.jba import JbaCollector
from node.jobs import JobDesk
from node.link import NodeLink
from node.lpd import LpdUploads, NodeLpd, sweep_strays
from node.mfp import RunningMfpApi, running_mfp_api
from node.outbox import Outbox
from node.replica import Replica

log = logging.getLogger(__name__)


@dataclass
class Node:
    config: NodeConfig
    db: NodeDatabase
    replica: Replica
    outbox: Outbox
    jobs: JobDesk
    link: NodeLink
    lpd_handler: NodeLpd
    uploads: LpdUploads
    jba: JbaCollector
    # The MFP API while the node runs (running_node) with one configured.
    mfp: RunningMfpApi | None = None
    # The LPD server while the node runs with one configured.
    lpd: LpdServer | None = None

    @property
    def lpd_port(self) -> int | None:
        return self.lpd.port if self.lpd else None

    @property
    def mfp_port(self) -> int | None:
        return self.mfp.port if self.mfp else None

    @property
    def mfp_ca(self) -> Path | None:
        """The certificate an MFP must trust to reach the MFP API."""
        return self.mfp.ca_cert if self.mfp else None


@contextlib.asynccontextmanager
async def open_node(config: NodeConfig) -> AsyncIterator[Node]:
    """The node's parts over its database (created on first use); closed on exit."""
    config.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = await NodeDatabase.open(config.db_path)
    try:
        replica = Replica(db)
        outbox = Outbox(db)
        bearer = BearerToken(config)
        jobs = JobDesk(config, db, outbox, bearer)
        link = NodeLink(config, replica, outbox, jobs)
        handler = NodeLpd(config, db, outbox)
        uploads = LpdUploads(config, db, outbox, bearer, handler.stored)
        jba = JbaCollector(config, db, outbox, replica)
        yield Node(config, db, replica, outbox, jobs, link, handler, uploads, jba)
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def running_node(config: NodeConfig) -> AsyncIterator[Node]:
    """A node whose link, LPD uploads, JBA collector (with devices configured), MFP API and LPD
    server (unless their listen address is empty) run in the background until the block ends
    (then stop cleanly)."""
    async with open_node(config) as node, contextlib.AsyncExitStack() as stack:
        if config.mfp_listen:
            node.mfp = await stack.enter_async_context(
                running_mfp_api(config, node.replica, node.link, node.db, node.jobs)
            )
        if config.lpd_listen:
            node.lpd = await stack.enter_async_context(_serving_lpd(node))
        tasks = [
            asyncio.create_task(node.link.run(), name="nodelink"),
            asyncio.create_task(
                node.uploads.run(
                    node.link.connected,
                    lambda: node.link.channel,
                    lambda printer_id: printer_id in node.jobs.printers,
                ),
                name="lpd-uploads",
            ),
        ]
        if config.jba_devices:
            tasks.append(asyncio.create_task(node.jba.run(), name="jba"))
        try:
            yield node
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await node.jobs.close()


@contextlib.asynccontextmanager
async def _serving_lpd(node: Node) -> AsyncIterator[LpdServer]:
    """The LPD server on config.lpd_listen; files still arriving live in <spool>/incoming, which
    a start empties, with any data file no job refers to (what a crash left never became a
    job)."""
    config = node.config
    incoming = config.lpd_spool_dir / "incoming"
    await asyncio.to_thread(shutil.rmtree, incoming, True)
    await sweep_strays(node.db, config.lpd_spool_dir)
    limits = LpdLimits(
        max_control_bytes=config.lpd_max_control_bytes,
        max_job_bytes=config.lpd_max_job_bytes,
        idle_timeout=config.lpd_idle_timeout,
        max_connections_per_peer=config.lpd_max_connections_per_peer,
    )
    server = LpdServer(node.lpd_handler, incoming, limits)
    try:
        await server.start(config.lpd_host, config.lpd_port)
    except OSError as exc:
        raise ConfigError(
            f"the LPD server cannot listen on {config.lpd_listen}: {exc.strerror} "
            "(set PF_NODE_LPD_LISTEN; port 515 needs root or CAP_NET_BIND_SERVICE)"
        ) from exc
    try:
        yield server
    finally:
        await server.close()


async def serve(config: NodeConfig, stop: asyncio.Event) -> None:
    """Runs the node until stop is set (SIGINT/SIGTERM in the entrypoint)."""
    async with running_node(config) as node:
        log.info("printfabric-node %s up (home %s)", config.serial_number, config.home)
        if node.mfp is not None:
            log.info("MFP API at %s (devices trust %s)", node.mfp.url, node.mfp.ca_cert)
        if node.lpd is not None:
            log.info("LPD server on %s:%d", config.lpd_host, node.lpd.port)
        if config.jba_devices:
            log.info(
                "collecting JBA logs of %s every %g s",
                ", ".join(d.name for d in config.jba_devices),
                config.jba_interval,
            )
        await stop.wait()
        log.info("stopping")
