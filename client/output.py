"""What the commands print: the JSON they return, or the same as lines for a person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from client.routes import Delivered
from client.session import Session


def session_summary(session: Session) -> dict[str, Any]:
    return {
        "gateway": session.gateway_url,
        "company": session.company,
        "login": session.login,
        "full_name": session.full_name,
        "access_token_expire_time": _time(session.access_expires),
        "refresh_token_expire_time": _time(session.refresh_expires),
    }


def delivered(file_name: str, result: Delivered) -> dict[str, Any]:
    return {
        "file": file_name,
        "route": result.route,
        "job": result.job,
        "lpd_job_number": result.lpd_job_number,
        "notes": result.notes,
    }


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def _job_line(job: dict[str, Any]) -> list[str]:
    pages = str(job.get("page_count") or "?")
    return [
        str(job.get("number", "")),
        str(job.get("state", "")),
        str(job.get("printer", "")),
        pages,
        size(int(job.get("size_bytes") or 0)),
        str(job.get("title", "")),
    ]


def human(command: str, result: dict[str, Any]) -> str:
    if command in ("login", "status"):
        who = (
            f"{result['login']} ({result['full_name']})" if result["full_name"] else result["login"]
        )
        return (
            f"Logged in to {result['company']} at {result['gateway']} as {who}; "
            f"the login lasts until {result['refresh_token_expire_time']}."
        )
    if command == "logout":
        return str(result["message"])
    if command == "printers":
        rows = [
            [
                p["name"],
                p.get("model", ""),
                p.get("location", "") or "-",
                " ".join(p["submit_uris"]),
            ]
            for p in result["printers"]
        ]
        if not rows:
            return "No printers: ask your administrator for access."
        return _table(rows, ["PRINTER", "MODEL", "LOCATION", "REACHED AT"])
    if command in ("jobs", "cancel"):
        rows = [_job_line(j) for j in result["jobs"]]
        if not rows:
            return "No jobs waiting."
        return _table(rows, ["JOB", "STATE", "PRINTER", "PAGES", "SIZE", "TITLE"])
    if command == "print":
        return "\n".join(_printed(p) for p in result["printed"])
    return str(result)


def _printed(entry: dict[str, Any]) -> str:
    job = entry["job"]
    if job is None:
        line = f"{entry['file']}: sent to {entry['route']} as LPD job {entry['lpd_job_number']}"
    else:
        pages = f", {job['page_count']} pages" if job.get("page_count") else ""
        state = str(job.get("state", ""))
        hint = " - release it at any printer" if state == "held" else ""
        line = (
            f"{entry['file']}: job {job['number']} on {job['printer']}, {state}{hint} "
            f"({size(int(job.get('size_bytes') or 0))}{pages}, via {entry['route']})"
        )
    return "\n".join([line, *(f"  note: {n}" for n in entry["notes"])])
