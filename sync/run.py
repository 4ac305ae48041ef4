"""One sync run: read every source, compare with the state, push the changes, keep the state."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from sync import cloud, ldap_source
from sync.config import SyncConfig
from sync.plan import Kind, Plan, describe, make_plan
from sync.records import Directory, Problem, collect
from sync.state import State, locked

# Below this many, disabling users is never held back by max_disable_percent.
FEW_DISABLES = 10


class RunError(Exception):
    """The run stopped before anything was pushed; the message says why."""


@dataclass
class Summary:
    entries: int = 0
    users: int = 0
    created: int = 0
    updated: int = 0
    disabled: int = 0
    removed: int = 0
    unchanged: int = 0
    pushed: int = 0
    full: bool = False
    dry_run: bool = False
    directory_revision: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        what = "would push" if self.dry_run else "pushed"
        text = (
            f"{self.entries} entries read, {self.users} users; {what} {self.pushed}: "
            f"{self.created} new, {self.updated} changed, {self.disabled} disabled in the "
            f"directory, {self.removed} gone (disabled); {len(self.problems)} problem(s); "
            f"{self.seconds:.1f} s"
        )
        return f"{'full sync' if self.full else 'sync'}: {text}"


def run_once(
    config: SyncConfig,
    *,
    dry_run: bool = False,
    full: bool = False,
    force: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> Summary:
    started = time.monotonic()
    with locked(config.state_file):
        state = State.load(config.state_file)
        directory = Directory()
        with _bar(err, "Reading the directory", total=len(state.users) or None) as seen:
            for source in config.sources:
                members = ldap_source.members(source) if source.groups else None
                collect(directory, ldap_source.read(source, seen), source.mapping, members)
        plan = make_plan(state, directory, full=full or state.empty)
        summary = Summary(
            entries=directory.entries,
            users=len(directory.users),
            created=plan.count(Kind.CREATE),
            updated=plan.count(Kind.UPDATE),
            disabled=plan.count(Kind.DISABLE),
            removed=plan.count(Kind.REMOVE),
            unchanged=plan.count(Kind.SAME),
            pushed=len(plan.changes),
            full=plan.full,
            dry_run=dry_run,
            problems=[str(p) for p in directory.problems],
        )
        if dry_run:
            for line in describe(plan):
                print(line, file=out)
        else:
            if not directory.users and not force:
                # A full run of nobody would have the cloud disable every directory user.
                raise RunError(
                    f"the directory gave no users to sync ({directory.entries} entries read); "
                    "nothing was pushed. Check the sources' base, filter and groups"
                )
            _check_disables(plan, state, config.max_disable_percent, force)
            if plan.changes:
                _push(config, state, plan, summary, err)
        summary.seconds = time.monotonic() - started
        return summary


def _check_disables(plan: Plan, state: State, percent: float, force: bool) -> None:
    enabled = sum(1 for u in state.users.values() if not u.disabled)
    limit = max(FEW_DISABLES, enabled * percent / 100)
    if plan.disables > limit and not force:
        raise RunError(
            f"this run would disable {plan.disables} of {enabled} synced users (more than "
            f"{percent:g}%); nothing was pushed. Check the sources' base, filter and groups, "
            "or run with --force if this is right"
        )


def _push(config: SyncConfig, state: State, plan: Plan, summary: Summary, err: TextIO) -> None:
    request_id = plan.request_id(state)
    with _bar(err, "Pushing to the cloud", total=len(plan.records)) as sent:
        reply = cloud.push(config.cloud, request_id, plan.full, plan.records, sent)
    refused = {p.login.casefold() for p in reply.problems}
    summary.problems.extend(str(Problem(p.login, f"the cloud: {p.reason}")) for p in reply.problems)
    summary.directory_revision = reply.directory_revision
    for change in plan.changes:
        # A user the cloud refused (in part) stays as it was in the state: sent again next run.
        if change.key not in refused:
            state.users[change.key] = change.after
    state.last_request_id = request_id
    state.save()


@contextmanager
def _bar(err: TextIO, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """advance(n) of a progress bar on a terminal; nothing when stderr is not one."""
    if not err.isatty():
        yield lambda n: None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=err),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
