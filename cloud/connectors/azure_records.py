"""Graph users to sync records: the attribute mapping, and what one round changes in the cloud.

A round is planned from what earlier rounds read (object id -> login and last-known properties)
and what this round read, before anything is applied, so the plan is all-or-nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cloud.domain.credentials import normalize_card
from cloud.domain.directory import normalize_login
from cloud.domain.directory_sync import SyncRecord
from cloud.errors import CloudError, InvalidArgument

# The properties every round reads; the mapped ones are added.
BASE_PROPERTIES = (
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "department",
    "accountEnabled",
)
# A Graph property, or one level into a complex one (onPremisesExtensionAttributes.x).
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}(\.[A-Za-z][A-Za-z0-9_]{0,99})?$")
# Cloud column sizes (longer values are cut rather than failing the whole run).
_EMAIL_MAX, _TEXT_MAX, _OBJECT_ID_MAX = 320, 256, 64

Problem = tuple[str, str]


@dataclass(frozen=True)
class AttributeMapping:
    """Which Graph property is the login, the PIN and the card; email, full name and department
    are always mail, displayName and department."""

    login: str = "userPrincipalName"
    pin: str = ""
    card: str = ""

    def __post_init__(self) -> None:
        for what, path in (("login", self.login), ("PIN", self.pin), ("card", self.card)):
            if (path or what == "login") and not _PATH.match(path):
                raise InvalidArgument(
                    f"the {what} attribute {path!r} is not a Graph property name (e.g. employeeId"
                    " or onPremisesExtensionAttributes.extensionAttribute1)",
                    reason="INVALID_ATTRIBUTE",
                )

    def select(self) -> list[str]:
        names = list(BASE_PROPERTIES)
        for path in (self.login, self.pin, self.card):
            top = path.split(".")[0]
            if path and top not in names:
                names.append(top)
        return names


@dataclass(frozen=True)
class KnownUser:
    """An Azure AD user as earlier rounds left it."""

    login: str
    properties: Mapping[str, Any]


@dataclass
class RoundPlan:
    records: list[SyncRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Rows to write (object id -> what to remember) and object ids to forget.
    keep: dict[str, KnownUser] = field(default_factory=dict)
    forget: set[str] = field(default_factory=set)
    removed: int = 0


def lookup(properties: Mapping[str, Any], path: str) -> str:
    """The property at path as text ("" when absent or null; a list gives its first item)."""
    value: Any = properties
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, dict | bool):
        return ""
    return str(value).strip()


def describe(object_id: str, properties: Mapping[str, Any]) -> str:
    name = lookup(properties, "displayName") or lookup(properties, "userPrincipalName")
    return f"{name} (object {object_id})" if name else f"object {object_id}"


def to_record(
    object_id: str, properties: Mapping[str, Any], mapping: AttributeMapping
) -> tuple[SyncRecord | None, Problem | None]:
    """The cloud user for one Graph user, or why it cannot be one (no record); a record with a
    problem is synced and the problem reported."""
    login = lookup(properties, mapping.login)
    if not login:
        return None, (describe(object_id, properties), f"has no {mapping.login}; not synced")
    try:
        normalize_login(login)
    except CloudError as exc:
        return None, (login, f"{mapping.login} is not a usable login ({exc.message}); not synced")
    record = SyncRecord(
        login=login,
        email=lookup(properties, "mail")[:_EMAIL_MAX],
        full_name=lookup(properties, "displayName")[:_TEXT_MAX],
        department=lookup(properties, "department")[:_TEXT_MAX],
        disabled=properties.get("accountEnabled") is False,
    )
    if mapping.pin:
        # The directory owns the PIN: an empty attribute clears it. A value that is not a PIN
        # is reported by the sync and leaves the PIN as it was.
        pin = lookup(properties, mapping.pin)
        record = replace(record, pin=pin, clear_pin=not pin)
    if mapping.card:
        card = lookup(properties, mapping.card)
        if card:
            try:
                normalize_card(card)
            except CloudError as exc:
                # Synced all the same, with the cards it has.
                return record, (
                    login,
                    f"card not applied: {mapping.card} {card[:40]!r} is not a card number"
                    f" ({exc.message}); the cards stay as they were",
                )
        record = replace(record, cards=(card,) if card else (), replace_cards=True)
    return record, None


def plan_round(
    known: Mapping[str, KnownUser],
    items: Sequence[Mapping[str, Any]],
    mapping: AttributeMapping,
    full: bool,
) -> RoundPlan:
    """What a round read, as records for sync_users and the rows to remember.

    A full round reads every user (sync_users disables the cloud users it does not name). A
    delta round reads changes: changed properties are merged into the known ones; a login held
    by another Azure AD user is not taken over; a login an object left behind (removed, renamed,
    without a login now) passes to a user that waited for it, else it is disabled.
    """
    plan = RoundPlan()
    changed = _merged(known, items, full, plan)
    # Untouched users keep their logins; touched ones that keep theirs come next, then the
    # others in Graph's order.
    owner: dict[str, str] = {}
    if not full:
        for object_id, user in known.items():
            if user.login and object_id not in changed:
                owner[_key(user.login)] = object_id
    mapped: list[tuple[str, dict[str, Any], SyncRecord | None, Problem | None]] = []
    for object_id, properties in changed.items():
        if properties is None:
            plan.forget.add(object_id)
            plan.removed += 1
        else:
            mapped.append((object_id, properties, *to_record(object_id, properties, mapping)))

    def keeps_its_login(entry: tuple[str, dict[str, Any], SyncRecord | None, Any]) -> bool:
        prior = known.get(entry[0])
        record = entry[2]
        return bool(prior and prior.login and record and _key(record.login) == _key(prior.login))

    mapped.sort(key=lambda entry: not keeps_its_login(entry))
    for object_id, properties, record, problem in mapped:
        if record is not None and _key(record.login) in owner:
            problem = (
                record.login,
                f"{describe(object_id, properties)} has the same {mapping.login} as object"
                f" {owner[_key(record.login)]}, which keeps it; not synced",
            )
            record = None
        if problem is not None:
            plan.problems.append(problem)
        if record is None:
            plan.keep[object_id] = KnownUser("", properties)
            continue
        owner[_key(record.login)] = object_id
        plan.keep[object_id] = KnownUser(record.login, properties)
        plan.records.append(record)
    if not full:
        _left_behind(known, changed, mapping, owner, plan)
    return plan


def _merged(
    known: Mapping[str, KnownUser],
    items: Sequence[Mapping[str, Any]],
    full: bool,
    plan: RoundPlan,
) -> dict[str, dict[str, Any] | None]:
    """Object id -> its properties after the round (None: removed), in Graph's order."""
    changed: dict[str, dict[str, Any] | None] = {}
    for item in items:
        object_id = str(item["id"])
        if len(object_id) > _OBJECT_ID_MAX:
            plan.problems.append((object_id[:80], "Graph sent an object id this long; skipped"))
            continue
        if "@removed" in item:
            changed[object_id] = None
            continue
        base = changed.get(object_id)
        if base is None:
            prior = known.get(object_id)
            base = dict(prior.properties) if prior is not None and not full else {}
        base.update((k, v) for k, v in item.items() if not k.startswith("@"))
        changed[object_id] = base
    return changed


def _left_behind(
    known: Mapping[str, KnownUser],
    changed: Mapping[str, dict[str, Any] | None],
    mapping: AttributeMapping,
    owner: dict[str, str],
    plan: RoundPlan,
) -> None:
    # Untouched users that could not take their login (a duplicate) wait for it.
    waiting: dict[str, list[tuple[str, SyncRecord]]] = {}
    for object_id, user in known.items():
        if not user.login and object_id not in changed:
            record, _ = to_record(object_id, user.properties, mapping)
            if record is not None:
                waiting.setdefault(_key(record.login), []).append((object_id, record))
    for object_id in changed:
        prior = known.get(object_id)
        if prior is None or not prior.login or _key(prior.login) in owner:
            continue
        heirs = waiting.get(_key(prior.login))
        if heirs:
            heir_id, record = heirs.pop(0)
            owner[_key(record.login)] = heir_id
            plan.keep[heir_id] = KnownUser(record.login, known[heir_id].properties)
            plan.records.append(record)
            continue
        # Disabled, never deleted, with its last-known profile (a disabled record without it
        # would blank the user's email and name).
        record, _ = to_record(object_id, prior.properties, mapping)
        if record is None or _key(record.login) != _key(prior.login):
            record = SyncRecord(login=prior.login)
        plan.records.append(
            replace(record, disabled=True, pin="", clear_pin=False, cards=(), replace_cards=False)
        )


def _key(login: str) -> str:
    return login.strip().casefold()
