"""lpr://host[:port]: where workstations reach an LPD server (a node announces its own)."""

from __future__ import annotations

import ipaddress
import re

from printfabric.lpd.client import DEFAULT_PORT

# Longer is refused rather than cut: a shortened address names another host.
MAX_LPR_URI = 300

# A DNS name or an IPv4 address, or an IPv6 address in brackets; nothing else (no user, path,
# query or fragment) since workstations append /{queue} to it.
_LPR_URI = re.compile(
    r"(?i:lpr)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[(?P<v6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def check_lpr_uri(value: str) -> str:
    """value (trimmed, scheme in lower case) if it is lpr://host[:port]; ValueError saying what
    is expected otherwise."""
    text = value.strip()
    if len(text) > MAX_LPR_URI:
        raise ValueError(f"an lpr:// address is at most {MAX_LPR_URI} characters")
    found = _LPR_URI.fullmatch(text)
    if (
        found is None
        or (found["v6"] is not None and not _is_v6(found["v6"]))
        or (found["port"] is not None and not 0 < int(found["port"]) <= 65535)
    ):
        raise ValueError(
            f"{value[:100]!r} is not lpr://host[:port] (e.g. lpr://print.example.com or "
            "lpr://10.0.0.7:5515; no user, path or query)"
        )
    return "lpr" + text[3:]


def lpr_uri(host: str, port: int) -> str:
    """lpr://host[:port] of a listener, the port left out when it is LPD's own (515)."""
    host = f"[{host}]" if ":" in host else host
    return f"lpr://{host}" if port == DEFAULT_PORT else f"lpr://{host}:{port}"


def _is_v6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
