"""A folder as a printer (file:///some/folder): the embedded demo's and the tests' printer.

Whoever delivers (the cloud or a node) writes each job under a hidden name and renames it, so
whatever watches the folder never sees half a document, and never overwrites an earlier job.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FolderError(Exception):
    """The job cannot be written to the folder; `message` says why in a person's words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def safe_title(title: str, limit: int = 80) -> str:
    """A file-name-safe form of a job title (no path separators, no dots at the start)."""
    name = _UNSAFE.sub("_", title).strip("._")[:limit].rstrip("._")
    return name or "job"


def folder_target(device_uri: str) -> Path | None:
    """The folder of a file:///some/folder printer; None for other schemes."""
    parts = urlsplit(device_uri)
    if parts.scheme != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise FolderError(
            f"{device_uri} names another host; a file:// printer is a local folder",
            reason="BAD_DEVICE_URI",
        )
    return Path(unquote(parts.path))


class FolderJob:
    """One job being written into a folder (blocking): write(), then finish() or discard()."""

    def __init__(self, folder: Path, number: int, title: str) -> None:
        if not folder.is_dir():
            raise FolderError(f"the printer's folder {folder} does not exist", reason="NO_FOLDER")
        self.folder = folder
        self.base = f"{number}-{safe_title(title)}"
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.base}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise _write_error(folder, exc) from exc
        self.tmp = Path(tmp)
        self.fh: IO[bytes] = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        try:
            self.fh.write(chunk)
        except OSError as exc:
            self.discard()
            raise _write_error(self.folder, exc) from exc

    def writelines(self, chunks: list[bytes]) -> None:
        try:
            self.fh.writelines(chunks)
        except OSError as exc:
            self.discard()
            raise _write_error(self.folder, exc) from exc

    def finish(self) -> Path:
        """Gives the job its final name '<number>-<title>' (or '.1', '.2', ... if taken)."""
        try:
            self.fh.close()
            for attempt in range(1000):
                target = self.folder / (self.base if attempt == 0 else f"{self.base}.{attempt}")
                if _place(self.tmp, target):
                    return target
            raise FolderError(
                f"too many files named {self.base} in {self.folder}", reason="FOLDER_FULL"
            )
        except OSError as exc:
            raise _write_error(self.folder, exc) from exc
        finally:
            self.discard()

    def discard(self) -> None:
        self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def deliver_to_folder(data: Path, folder: Path, number: int, title: str) -> Path:
    """Copies a spooled file into a folder as '<number>-<safe title>' (blocking)."""
    job = FolderJob(folder, number, title)
    try:
        with data.open("rb") as src:
            while chunk := src.read(1 << 20):
                job.write(chunk)
    except BaseException:
        job.discard()
        raise
    return job.finish()


def _write_error(folder: Path, exc: OSError) -> FolderError:
    return FolderError(f"cannot write to {folder}: {exc.strerror}", reason="FOLDER_ERROR")


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
