"""One IPP request as the local printer's operations see it: the message, the body, the URIs it
was sent to."""

from __future__ import annotations

from dataclasses import dataclass

from printfabric.ipp.server import OperationRequest, PrinterAddress


@dataclass
class Request(OperationRequest):
    target: PrinterAddress
