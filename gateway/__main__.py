"""printfabric-gateway: the stateless HTTPS edge (IPPS printers) in front of the cloud."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from gateway.config import ConfigError, GatewayConfig
from gateway.server import running_gateway


async def _serve(config: GatewayConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_gateway(config) as gw:
        company = config.default_company
        print(
            f"printfabric-gateway: IPPS on https://{config.host}:{gw.port} "
            f"(ipps://{config.host}:{gw.port}/"
            + (f"ipp/print/QUEUE for {company}, " if company else "")
            + "t/COMPANY/ipp/print/QUEUE for any tenant)",
            flush=True,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="printfabric-gateway",
        description="Serves every queue of every tenant as an IPP Everywhere printer over IPPS; "
        "configured by PF_GATEWAY_* environment variables (see the README).",
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run"])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = GatewayConfig.from_env()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(config))
    except ConfigError as exc:
        print(f"printfabric-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
