"""A progress bar on a terminal for transfers over a few MB; nothing when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

# Smaller files are sent before a bar would be worth drawing.
MIN_BYTES = 4 << 20


@contextmanager
def transfer(
    description: str, total: int, stream: TextIO | None = None, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yields advance(n); draws a bar on stream (stderr) only when it is a terminal."""
    out = stream or sys.stderr
    if not enabled or total < MIN_BYTES or not out.isatty():
        yield lambda n: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(file=out),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class Attempt:
    """advance for one attempt of a transfer, counting what it sent so that a failed attempt
    winds the bar back before the transfer starts over."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self._advance = advance
        self.sent = 0

    def __call__(self, n: int) -> None:
        self.sent += n
        self._advance(n)

    def rewind(self) -> None:
        self._advance(-self.sent)
        self.sent = 0
