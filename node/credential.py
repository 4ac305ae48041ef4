"""What a user presents at a device: a PIN, a card, or a login with its password."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pin:
    pin: str = field(repr=False)


@dataclass(frozen=True)
class Card:
    # As the reader delivers it: decimal or hex, with or without separators.
    card: str = field(repr=False)


@dataclass(frozen=True)
class LoginPassword:
    login: str
    password: str = field(repr=False)


Credential = Pin | Card | LoginPassword
