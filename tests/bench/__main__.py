"""Runs every benchmark in order, prints a summary table, and exits 1 if any of them failed.

spool_1gib: a 1 GiB job through SubmitJob and DownloadJob. nodelink_snapshot, nodelink_delta,
nodelink_memory: NodeLink directory replication and the cloud's memory per connected node.
gateway_ipp: the IPPS gateway against cupsd with ipptool as the client (rate, MB/s, RSS).
lpd_receive: one job into the node's LPD server from a client process, against a plain loopback
copy to disk (MB/s, the server's RSS growth).
client_upload: the workstation client `printfabric print` sending one file by each route (IPPS,
upload to storage, LPR), against a plain loopback copy to disk (MB/s, the client's peak RSS).
directory_sync: the AD sync tool `printfabric-sync --once` with 20 000 users from slapd, full then
incremental, against an ldapsearch read and a direct SyncUsers push (seconds, users/s, peak RSS).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tests.bench import (
    client_upload,
    directory_sync,
    gateway_ipp,
    lpd_receive,
    nodelink,
    nodelink_delta,
    nodelink_memory,
    spool_1gib,
)


class Outcome(Protocol):
    """What a benchmark returns: its name, (metric, value) rows, and whether it passed."""

    @property
    def name(self) -> str: ...

    @property
    def rows(self) -> Sequence[tuple[str, str]]: ...

    @property
    def passed(self) -> bool: ...


@dataclass(frozen=True)
class Crashed:
    """A benchmark that raised instead of measuring: a failure, with the reason as its row."""

    name: str
    rows: tuple[tuple[str, str], ...]
    passed: bool = False


# In the order they run; each gets the parsed command line.
BENCHMARKS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    spool_1gib.NAME: lambda args: spool_1gib.run(args.size),
    nodelink.NAME: lambda args: nodelink.run(),
    nodelink_delta.NAME: lambda args: nodelink_delta.run(),
    nodelink_memory.NAME: lambda args: nodelink_memory.run(),
    gateway_ipp.NAME: lambda args: gateway_ipp.run(args.size),
    lpd_receive.NAME: lambda args: lpd_receive.run(args.size),
    client_upload.NAME: lambda args: client_upload.run(args.size),
    directory_sync.NAME: lambda args: directory_sync.run(),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    p.add_argument(
        "--size",
        type=spool_1gib.parse_size,
        default=spool_1gib.DEFAULT_SIZE,
        help="the payload size of spool_1gib, gateway_ipp, lpd_receive and client_upload, e.g. "
        "256M for a quick run (default 1G)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeatable)",
    )
    return p


def _table(outcomes: Sequence[Outcome]) -> str:
    rows = [("benchmark", "metric", "value")]
    for outcome in outcomes:
        rows += [(outcome.name, metric, value) for metric, value in outcome.rows]
        rows.append((outcome.name, "result", "PASS" if outcome.passed else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    # nodelink_snapshot leaves its cloud and node up for nodelink_delta, if that runs too.
    keep = {nodelink.NAME} if nodelink_delta.NAME in selected else set()
    try:
        for name in selected:
            try:
                outcomes.append(BENCHMARKS[name](args))
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                outcomes.append(Crashed(name, (("error", f"{type(exc).__name__}: {exc}"),)))
            if name not in keep:
                nodelink.shutdown()
    finally:
        nodelink.shutdown()
    print(f"\nsummary ({time.perf_counter() - started:.0f} s)\n{_table(outcomes)}")
    failed = [o.name for o in outcomes if not o.passed]
    print(f"\nFAILED: {', '.join(failed)}" if failed else "\nall benchmarks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
