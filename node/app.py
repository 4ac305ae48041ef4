"""Assembles the node from its config: database, replica, outbox, job desk, link and MFP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from node.bearer import BearerToken
from node.config import NodeConfig
from node.db import NodeDatabase
from node.jobs import JobDesk
from node.link import NodeLink
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
    # The MFP API while the node runs (running_node) with one configured.
    mfp: RunningMfpApi | None = None

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
        jobs = JobDesk(config, db, outbox, BearerToken(config))
        link = NodeLink(config, replica, outbox, jobs)
        yield Node(config, db, replica, outbox, jobs, link)
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def running_node(config: NodeConfig) -> AsyncIterator[Node]:
    """A node whose link (and MFP API, unless config.mfp_listen is empty) runs in the
    background until the block ends (then stops cleanly)."""
    async with open_node(config) as node, contextlib.AsyncExitStack() as stack:
        if config.mfp_listen:
            node.mfp = await stack.enter_async_context(
                running_mfp_api(config, node.replica, node.link)
            )
        task = asyncio.create_task(node.link.run(), name="nodelink")
        try:
            yield node
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await node.jobs.close()


async def serve(config: NodeConfig, stop: asyncio.Event) -> None:
    """Runs the node until stop is set (SIGINT/SIGTERM in the entrypoint)."""
    async with running_node(config) as node:
        log.info("printfabric-node %s up (home %s)", config.serial_number, config.home)
        if node.mfp is not None:
            log.info("MFP API at %s (devices trust %s)", node.mfp.url, node.mfp.ca_cert)
        await stop.wait()
        log.info("stopping")
