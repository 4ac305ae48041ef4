"""Durations in configuration: '250ms', '90s', '15m', '12h', '7d' or plain seconds."""

from __future__ import annotations

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_seconds(value: str) -> float:
    """The duration in seconds; ValueError saying what is expected when it is not one."""
    text = value.strip().lower()
    try:
        if text.endswith("ms"):
            return float(text[:-2]) / 1000
        if text and text[-1] in _UNITS:
            return float(text[:-1]) * _UNITS[text[-1]]
        return float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration (e.g. 15s, 250ms, 2m, 12h)") from None
