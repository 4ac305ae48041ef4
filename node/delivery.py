"""Job data on the node's disk: receiving it into the spool folder. Sending it to the printer is
printfabric.delivery's `deliver` (lpd, socket, ipp/ipps, file; see node.jobs); the folder
helpers below are printfabric.folder in the node's error terms."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from printfabric import folder

from node.errors import DeliveryFailed

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class NodePrinter:
    printer_id: str
    name: str
    device_uri: str


@dataclass(frozen=True)
class JobOrder:
    """A released job the node is to deliver, as the cloud describes it."""

    job_id: str
    number: int
    title: str
    owner_login: str
    printer_id: str
    size: int
    # Lowercase hex SHA-256 of the document.
    sha256: str


class SpoolFile:
    """A job's data arriving in the spool folder: written and hashed chunk by chunk (blocking).

    The file lives under a temporary name until `finish` checks size and SHA-256 and gives it
    its final name, so a crash or a cut stream never leaves something that looks complete.
    """

    def __init__(self, spool_dir: Path, job_id: str) -> None:
        spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=f".{job_id}.", suffix=".part", dir=spool_dir)
        self._fh = os.fdopen(fd, "wb")
        self.part = Path(name)
        self.final = spool_dir / job_id
        self.size = 0
        self._digest = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def finish(self, size: int, sha256: str) -> Path:
        """Checks the data against the job and moves it in place; DeliveryFailed if it differs."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        actual = self._digest.hexdigest()
        if self.size != size:
            self.discard()
            raise DeliveryFailed(
                f"received {self.size} bytes but the job has {size}", reason="SIZE_MISMATCH"
            )
        if actual != sha256.lower():
            self.discard()
            raise DeliveryFailed(
                f"checksum mismatch: the job's SHA-256 is {sha256}, the data's {actual}",
                reason="CHECKSUM_MISMATCH",
            )
        os.replace(self.part, self.final)
        return self.final

    def discard(self) -> None:
        self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.part.unlink()


def folder_target(device_uri: str) -> Path | None:
    """The folder of a file:///some/folder printer; None for schemes delivered elsewhere."""
    try:
        return folder.folder_target(device_uri)
    except folder.FolderError as exc:
        raise DeliveryFailed(exc.message, reason=exc.reason) from exc


def deliver_to_folder(data: Path, target: Path, number: int, title: str) -> Path:
    """Copies a spooled job into a folder as '<number>-<safe title>' (blocking); see
    printfabric.folder."""
    try:
        return folder.deliver_to_folder(data, target, number, title)
    except folder.FolderError as exc:
        raise DeliveryFailed(exc.message, reason=exc.reason) from exc
