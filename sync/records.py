"""Directory entries to users: the attribute mapping and the per-entry checks.

A problem with one entry (no login, a login seen twice, a PIN that is not a PIN, a card that is
not a card number) is reported with the entry's DN and never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn
from printfabric.credentials import InvalidCredential, normalize_card, normalize_pin

from sync.config import AD_ACCOUNTDISABLE, AttributeMap

Attributes = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Entry:
    """One directory entry as read: its DN and its attributes (names as the server sent them)."""

    source: str
    dn: str
    attributes: Attributes


@dataclass(frozen=True)
class DirectoryUser:
    """A user as the directory says it should be in the cloud."""

    login: str
    email: str = ""
    full_name: str = ""
    department: str = ""
    # None: the source maps no PIN attribute (the cloud's PIN is left alone); "": the attribute
    # is empty (the cloud's PIN is cleared).
    pin: str | None = None
    # None: no card attribute mapped; otherwise the user's whole set of cards.
    cards: tuple[str, ...] | None = None
    disabled: bool = False
    dn: str = field(default="", compare=False)
    source: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        # Logins are case-insensitive in the cloud, as in Active Directory.
        return self.login.casefold()


@dataclass(frozen=True)
class Problem:
    """Something wrong with one entry; where says which (the DN or the login)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Directory:
    """Everything read in one run: users by login key, and the problems met."""

    users: dict[str, DirectoryUser] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0


def to_user(entry: Entry, mapping: AttributeMap) -> tuple[DirectoryUser | None, list[Problem]]:
    """Maps one entry; None when it cannot be a user (no login)."""
    attrs = _folded(entry.attributes)
    problems: list[Problem] = []
    login = _first(attrs, mapping.login)
    if not login:
        names = " or ".join(mapping.login)
        return None, [Problem(entry.dn, f"no {names}: the entry is not synced")]
    pin: str | None = None
    if mapping.pin:
        pin = _first(attrs, mapping.pin)
        if pin:
            try:
                pin = normalize_pin(pin)
            except InvalidCredential as exc:
                problems.append(
                    Problem(
                        login,
                        f"{'/'.join(mapping.pin)} is not a PIN ({exc.message}); "
                        "the PIN is left as it was",
                    )
                )
                pin = None
    cards: tuple[str, ...] | None = None
    if mapping.card:
        found: list[str] = []
        for name in mapping.card:
            for value in attrs.get(name.casefold(), ()):
                try:
                    found.append(normalize_card(value))
                except InvalidCredential as exc:
                    problems.append(
                        Problem(login, f"{name} {value!r} is not a card number ({exc.message})")
                    )
        cards = tuple(sorted(set(found)))
    disabled = False
    if mapping.disabled:
        raw = _first(attrs, (mapping.disabled,))
        if raw:
            try:
                disabled = bool(int(raw) & AD_ACCOUNTDISABLE)
            except ValueError:
                problems.append(
                    Problem(login, f"{mapping.disabled} {raw!r} is not a number; taken as enabled")
                )
    user = DirectoryUser(
        login=login,
        email=_first(attrs, mapping.email),
        full_name=_first(attrs, mapping.full_name),
        department=_first(attrs, mapping.department),
        pin=pin,
        cards=cards,
        disabled=disabled,
        dn=entry.dn,
        source=entry.source,
    )
    return user, problems


def collect(
    directory: Directory,
    entries: Iterable[Entry],
    mapping: AttributeMap,
    members: set[str] | None = None,
) -> None:
    """Adds a source's entries; members (DN or login keys, casefolded) limits who is taken."""
    for entry in entries:
        directory.entries += 1
        user, problems = to_user(entry, mapping)
        directory.problems.extend(problems)
        if user is None:
            continue
        if members is not None and not (dn_key(entry.dn) in members or user.key in members):
            continue
        first = directory.users.get(user.key)
        if first is not None:
            directory.problems.append(
                Problem(
                    entry.dn,
                    f"the login {user.login} is already used by {first.dn}"
                    f"{' in source ' + first.source if first.source != user.source else ''}; "
                    "this entry is not synced",
                )
            )
            continue
        directory.users[user.key] = user


def dn_key(dn: str) -> str:
    """A DN compared the LDAP way: attribute names and values case-insensitive, no spaces."""
    try:
        return ",".join(
            f"{a.strip()}={v.strip()}".casefold() for a, v, _ in parse_dn(dn, strip=True)
        )
    except LDAPInvalidDnError:
        return dn.casefold()


def _folded(attributes: Attributes) -> dict[str, list[str]]:
    """Attribute names case-folded (LDAP names are case-insensitive); values as strings."""
    out: dict[str, list[str]] = {}
    for name, values in attributes.items():
        # A ranged attribute (AD's member;range=0-1499) is not a user field.
        if isinstance(values, str | bytes):
            values = [values]
        out[name.casefold()] = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values
        ]
    return out


def _first(attrs: Mapping[str, Sequence[str]], names: Sequence[str]) -> str:
    for name in names:
        for value in attrs.get(name.casefold(), ()):
            if value.strip():
                return value.strip()
    return ""
