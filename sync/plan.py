"""The difference between the directory now and what the cloud was last told."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from printfabric.v1 import directory_pb2

from sync.records import Directory, DirectoryUser
from sync.state import State, Synced


class Kind(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    # Disabled in the directory (userAccountControl).
    DISABLE = "disable"
    # Gone from the directory, or no longer in the synced groups: disabled, never deleted.
    REMOVE = "remove"
    # Sent again by a full run although nothing changed.
    SAME = "same"


@dataclass(frozen=True)
class Change:
    kind: Kind
    key: str
    after: Synced
    before: Synced | None
    user: DirectoryUser | None

    def fields(self) -> list[tuple[str, object, object]]:
        """(field, before, after) of what changed; PINs and cards as set/changed/cleared."""
        if self.before is None:
            return []
        out: list[tuple[str, object, object]] = []
        for name in ("login", "email", "full_name", "department", "disabled"):
            old, new = getattr(self.before, name), getattr(self.after, name)
            if old != new:
                out.append((name, old, new))
        for name in ("pin", "cards"):
            old, new = getattr(self.before, name), getattr(self.after, name)
            if old != new:
                word = "changed" if old and new else _secret_word(new)
                out.append((name, _secret_word(old), word))
        return out

    def record(self) -> directory_pb2.SyncUserRecord:
        a = self.after
        r = directory_pb2.SyncUserRecord(
            login=a.login,
            email=a.email,
            full_name=a.full_name,
            department=a.department,
            disabled=a.disabled,
        )
        u = self.user
        if u is not None and u.pin is not None:
            if u.pin:
                r.pin = u.pin
            elif self.before is not None and self.before.pin:
                r.clear_pin = True
        if u is not None and u.cards is not None:
            r.cards.extend(u.cards)
            r.replace_cards = True
        return r


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    full: bool = False

    def count(self, kind: Kind) -> int:
        return sum(1 for c in self.changes if c.kind is kind)

    @property
    def disables(self) -> int:
        return self.count(Kind.DISABLE) + self.count(Kind.REMOVE)

    @cached_property
    def records(self) -> list[directory_pb2.SyncUserRecord]:
        """What the run sends, one record per change (built once, when the plan is complete)."""
        return [change.record() for change in self.changes]

    def request_id(self, state: State) -> str:
        """The same run against the same state gets the same id, so a resend after a lost
        answer is answered by the cloud from its record instead of applied twice."""
        h = hashlib.sha256(f"{state.last_request_id}\0{int(self.full)}".encode())
        for record in self.records:
            h.update(record.SerializeToString(deterministic=True))
        return f"printfabric-sync:{h.hexdigest()[:40]}"


def make_plan(state: State, directory: Directory, full: bool) -> Plan:
    plan = Plan(full=full)
    for key, user in sorted(directory.users.items()):
        before = state.users.get(key)
        after = state.synced(user, before)
        if before is None:
            if user.disabled:
                # Never synced and disabled: not created. A full run needs not send it either:
                # the cloud disables the directory's users a full run leaves out.
                continue
            plan.changes.append(Change(Kind.CREATE, key, after, None, user))
        elif after != before:
            kind = Kind.DISABLE if after.disabled and not before.disabled else Kind.UPDATE
            plan.changes.append(Change(kind, key, after, before, user))
        elif full:
            plan.changes.append(Change(Kind.SAME, key, after, before, user))
    for key, before in sorted(state.users.items()):
        if key in directory.users:
            continue
        if before.disabled:
            if full:
                plan.changes.append(Change(Kind.SAME, key, before, before, None))
            continue
        plan.changes.append(Change(Kind.REMOVE, key, before.disabled_copy(), before, None))
    return plan


def describe(plan: Plan) -> Iterator[str]:
    """The diff, one line per user, for --dry-run."""
    marks = {Kind.CREATE: "+", Kind.UPDATE: "~", Kind.DISABLE: "-", Kind.REMOVE: "-"}
    for change in plan.changes:
        if change.kind is Kind.SAME:
            continue
        login = change.after.login
        mark = marks[change.kind]
        if change.kind is Kind.CREATE:
            a = change.after
            detail = json.dumps(
                {"email": a.email, "full_name": a.full_name, "department": a.department},
                ensure_ascii=False,
            )
            extras = []
            if a.pin:
                extras.append("PIN set")
            if change.user is not None and change.user.cards:
                extras.append(f"{len(change.user.cards)} card(s)")
            yield f"{mark} {login} new {detail}{' ' + ', '.join(extras) if extras else ''}"
        elif change.kind is Kind.REMOVE:
            yield f"{mark} {login} gone from the directory: disable"
        else:
            parts = [
                f"{name}: {old} -> {new}"
                if name in ("pin", "cards")
                else f"{name}: {json.dumps(old, ensure_ascii=False)} -> "
                f"{json.dumps(new, ensure_ascii=False)}"
                for name, old, new in change.fields()
            ]
            yield f"{mark} {login} {'; '.join(parts)}"


def _secret_word(digest: str | None) -> str:
    if digest is None:
        return "not synced"
    return "set" if digest else "none"
