"""The three ways a workstation delivers a print job: IPPS, LPR and upload to storage."""

from client.routes.base import Delivered, PrintJob, Route, parse_route

__all__ = ["Delivered", "PrintJob", "Route", "parse_route"]
