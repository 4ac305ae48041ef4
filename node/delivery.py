"""Job data on the node's disk: receiving it into the spool folder and delivering it to a printer."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

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


def safe_title(title: str, limit: int = 80) -> str:
    """A file-name-safe form of a job title (no path separators, no dots at the start)."""
    name = _UNSAFE.sub("_", title).strip("._")[:limit].rstrip("._")
    return name or "job"


def folder_target(device_uri: str) -> Path | None:
    """The folder of a file:///some/folder printer; None for schemes delivered elsewhere."""
    parts = urlsplit(device_uri)
    if parts.scheme != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise DeliveryFailed(
            f"{device_uri} names another host; a file:// printer is a local folder",
            reason="BAD_DEVICE_URI",
        )
    return Path(unquote(parts.path))


def deliver_to_folder(data: Path, folder: Path, number: int, title: str) -> Path:
    """Copies a spooled job into a folder as '<number>-<safe title>' (blocking).

    The copy is written under a hidden name and renamed, so whatever watches the folder never
    sees half a document; an existing file of the same name is not overwritten.
    """
    if not folder.is_dir():
        raise DeliveryFailed(f"the printer's folder {folder} does not exist", reason="NO_FOLDER")
    base = f"{number}-{safe_title(title)}"
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        shutil.copyfile(data, tmp)
        for attempt in range(1000):
            target = folder / (base if attempt == 0 else f"{base}.{attempt}")
            if _place(Path(tmp), target):
                return target
        raise DeliveryFailed(f"too many files named {base} in {folder}", reason="FOLDER_FULL")
    except OSError as exc:
        raise DeliveryFailed(
            f"cannot write to {folder}: {exc.strerror}", reason="FOLDER_ERROR"
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _place(tmp: Path, target: Path) -> bool:
    """Gives tmp the name target unless that name is taken; False if it is."""
    try:
        # link() fails if the name exists, unlike rename(): no silent overwrite.
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError:
        # Some shares (SMB, FUSE) have no hard links: check, then rename.
        if target.exists():
            return False
        os.replace(tmp, target)
        return True
