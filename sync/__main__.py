"""`printfabric-sync`: the Local Active Directory Sync tool.

Reads users from Active Directory or OpenLDAP and pushes what changed to the cloud, once
(`--once`) or on the configured schedule. Exit codes: 0 synced, 1 the run failed (nothing was
pushed), 2 bad configuration or usage, 3 synced but some users had problems (listed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sync.cloud import CloudError
from sync.config import DEFAULT_CONFIG, ConfigError, SyncConfig, load
from sync.ldap_source import SourceError
from sync.run import RunError, Summary, run_once
from sync.state import StateError

OK, FAILED, USAGE, PROBLEMS = 0, 1, 2, 3
# Problems listed in full on the terminal; the rest are counted (all are in --json).
SHOWN_PROBLEMS = 50
log = logging.getLogger("printfabric.sync")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"printfabric-sync: {args.config}: {exc}", file=sys.stderr)
        return USAGE
    if args.once or args.dry_run:
        return _one(config, args)
    return _scheduled(config, args)


def _one(config: SyncConfig, args: argparse.Namespace) -> int:
    try:
        summary = run_once(config, dry_run=args.dry_run, full=args.full, force=args.force)
    except (SourceError, CloudError, RunError, StateError) as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}))
        print(f"printfabric-sync: {exc}", file=sys.stderr)
        return FAILED
    _report(summary, args.json)
    return PROBLEMS if summary.problems else OK


def _scheduled(config: SyncConfig, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("syncing every %.0f s; stop with SIGTERM or Ctrl-C", config.interval)
    while not stop.is_set():
        try:
            code = _one(config, args)
        except Exception:
            # A scheduled tool keeps going; the next run may well work.
            log.exception("the run failed unexpectedly")
            code = FAILED
        if code == FAILED:
            log.warning("the run failed; the next one is in %.0f s", config.interval)
        # A full run is only asked for once; the following ones push changes.
        args.full = False
        stop.wait(config.interval)
    return OK


def _report(summary: Summary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.to_json()))
        return
    for problem in summary.problems[:SHOWN_PROBLEMS]:
        print(f"problem: {problem}", file=sys.stderr)
    if len(summary.problems) > SHOWN_PROBLEMS:
        print(
            f"... and {len(summary.problems) - SHOWN_PROBLEMS} more problems (--json lists all)",
            file=sys.stderr,
        )
    print(summary.line())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfabric-sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("PRINTFABRIC_SYNC_CONFIG", DEFAULT_CONFIG)),
        help="the TOML configuration (default $PRINTFABRIC_SYNC_CONFIG or %(default)s)",
    )
    p.add_argument("--once", action="store_true", help="run once and exit (default: schedule)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would change, push nothing, keep the state as it is (implies --once)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="send every user, and let the cloud disable directory users it was not sent",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="push even when the run disables more than sync.max_disable_percent of the users",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


if __name__ == "__main__":
    sys.exit(main())
