"""The cloud queue serve-printer forwards to: its description, cached so the printer starts offline.

The description is the printer JSON of the gateway's `/api/v1/printers` (docs/client-api.md).
The IPP attributes are made from it by `printfabric.ipp.everywhere`, the module that describes
the same queue at the gateway, so the local printer offers what the cloud queue takes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printfabric.formats import FORMAT_MIME, FORMATS
from printfabric.v1 import common_pb2, device_pb2

from client.paths import private_dir

log = logging.getLogger(__name__)

# What a queue never described yet takes (PDF, PostScript, PCL, PWG raster, Apple raster).
DEFAULT_FORMATS = [
    FORMAT_MIME[common_pb2.DOCUMENT_FORMAT_PDF],
    FORMAT_MIME[common_pb2.DOCUMENT_FORMAT_POSTSCRIPT],
    FORMAT_MIME[common_pb2.DOCUMENT_FORMAT_PCL],
    FORMAT_MIME[common_pb2.DOCUMENT_FORMAT_PWG_RASTER],
    FORMAT_MIME[common_pb2.DOCUMENT_FORMAT_URF],
]
_OCTET_STREAM = common_pb2.DOCUMENT_FORMAT_OCTET_STREAM
_SAFE_NAME = re.compile(r"[^a-z0-9_-]")


@dataclass(frozen=True)
class QueueDescription:
    """One cloud queue as the gateway lists it, and when that was learnt (0: never)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    fetched: float = 0.0

    @classmethod
    def default(cls, name: str) -> QueueDescription:
        """A sane guess for a queue never seen: common formats, color, duplex."""
        return cls(
            name=name.lower(),
            data={
                "name": name.lower(),
                "display_name": name,
                "location": "",
                "color": True,
                "duplex": True,
                "formats": DEFAULT_FORMATS,
                "submit_uris": [],
            },
        )

    @classmethod
    def from_api(cls, printer: dict[str, Any]) -> QueueDescription:
        return cls(name=str(printer["name"]), data=dict(printer), fetched=time.time())

    @property
    def known(self) -> bool:
        return self.fetched > 0

    @property
    def ipps_uri(self) -> str:
        """Where jobs for this queue go: the first IPPS route the cloud lists ("" if none)."""
        uris = self.data.get("submit_uris") or []
        return next((str(u) for u in uris if str(u).startswith("ipps://")), "")

    def printer(self) -> device_pb2.Printer:
        """The description as the device_pb2.Printer that printfabric.ipp.everywhere reads."""
        formats = [
            common_pb2.DocumentFormat.Name(FORMATS[m.lower()])
            for m in self._formats()
            if FORMATS.get(m.lower(), _OCTET_STREAM) != _OCTET_STREAM
        ]
        return device_pb2.Printer(
            printer_id=str(self.data.get("id") or ""),
            name=self.name,
            display_name=str(self.data.get("display_name") or self.name),
            location=str(self.data.get("location") or ""),
            formats=formats,
            color=bool(self.data.get("color", True)),
            duplex=bool(self.data.get("duplex", True)),
        )

    def _formats(self) -> list[str]:
        formats = self.data.get("formats")
        if not isinstance(formats, list):
            return DEFAULT_FORMATS
        return [str(f) for f in formats]


@dataclass
class Destination:
    """Where jobs go now: the cloud queue (its description may be refreshed), as whom."""

    description: QueueDescription
    company: str
    login: str


class DescriptionCache:
    """printers/{queue}.json in serve-printer's folder: the last description the cloud gave."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        return self.folder / f"{_SAFE_NAME.sub('_', name.lower())}.json"

    def load(self, name: str) -> QueueDescription | None:
        try:
            saved = json.loads(self._path(name).read_text())
            return QueueDescription(
                name=str(saved["printer"]["name"]),
                data=dict(saved["printer"]),
                fetched=float(saved["fetched"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the cached description of %s: %s", name, exc)
            return None

    def names(self) -> list[str]:
        """The queues with a cached description."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def save(self, description: QueueDescription) -> None:
        folder = private_dir(self.folder)
        body = {"printer": description.data, "fetched": description.fetched}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".printer-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(description.name))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
