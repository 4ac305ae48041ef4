"""The Local AD Sync tool (issue 8): `printfabric-sync --once` reading 20 000 users from a real
slapd over LDAPS and pushing them into a real cloud process, first in full, then incrementally.

slapd serves the users with their Active Directory attributes (tests/support/ldap_peers.py);
the cloud process is seeded with two tenants, each with a sync agent. The tool runs as an
operator runs it, a child process with a TOML file, the AD mapping plus PIN (employeeNumber)
and card (pager), and `--once --json`: each run is timed from its start to its exit (the tool
reports its own `seconds` too, without interpreter start-up), and its peak RSS is the kernel's
(`wait4`'s ru_maxrss, through client_upload's spawner). The runs, in order: the full sync into
the empty first tenant; a run with nothing changed; then CHANGED users get a new department,
DISABLED are disabled and REMOVED deleted in slapd, and the incremental run pushes those.

Two baselines, measured in the same run:
- reading the directory: `ldapsearch` (ldap-utils, C) reads the same entries with the same
  attributes over LDAPS in pages of 1000 as the same reader account; after one unmeasured
  warm-up read, the fastest of ROUNDS;
- pushing to the cloud: the tool's full-sync records, built beforehand the way the tool maps
  the entries, sent in one DirectoryService.SyncUsers stream (gRPC aio, as nodelink_snapshot
  does) into the second, empty tenant; timed from opening the channel (TLS, sign-in included).

It fails only when a run fails or the counts are wrong (the tool's summaries, and the cloud's
rows of both tenants); no speed is required beyond finishing within SYNC_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from printfabric.credentials import normalize_card, normalize_pin
from printfabric.v1 import auth_pb2, common_pb2, directory_pb2, directory_pb2_grpc

from cloud.domain.runtime import Runtime
from sync.config import load as load_sync_config
from tests.bench import nodelink_fabric as fab
from tests.bench.client_upload import Exited, run_client
from tests.bench.spool_1gib import BenchError
from tests.support.ldap_peers import LdapUser, Slapd, make_users, running_slapd
from tests.support.processes import clean_env, command_argv, read_only_sqlite

NAME = "directory_sync"
USERS = 20_000
CHANGED, DISABLED, REMOVED = 100, 10, 10
# ldapsearch's figure is the fastest of this many reads: whatever else runs on the machine can
# only slow a read down.
ROUNDS = 3
# The only speed the bench asks for: every run, and the direct push, ends within this.
SYNC_SECONDS = 600.0
READ_SECONDS = 120.0
# The tool's tenant and the direct push's, each with a sync agent and nothing synced yet.
TOOL_COMPANY, PUSH_COMPANY = "BENCHSYNC", "BENCHPUSH"
FILTER = "(objectClass=inetOrgPerson)"
PAGE_SIZE = 1000
MIB = 1 << 20


@dataclass(frozen=True)
class SyncRun:
    """One `printfabric-sync --once --json`: its summary, wall time and peak RSS in bytes."""

    summary: dict[str, Any]
    wall: float
    peak_rss: int

    @property
    def seconds(self) -> float:
        """The tool's own figure: from reading the directory to the state saved."""
        return float(self.summary["seconds"])

    def describe(self, users: int = 0) -> str:
        rate = f", {users / self.wall:.0f} users/s" if users else ""
        return f"{self.wall:6.2f} s wall{rate} (the tool's own {self.seconds:.2f} s)"


@dataclass(frozen=True)
class Outcome:
    """The figures as (metric, value) rows and whether they pass; the measurements themselves
    for a test to check."""

    name: str
    rows: tuple[tuple[str, str], ...]
    passed: bool
    users: int
    reads: tuple[Exited, ...]
    push_seconds: float
    startup: Exited
    full: SyncRun
    unchanged: SyncRun
    incremental: SyncRun

    @property
    def read(self) -> Exited:
        return min(self.reads, key=lambda r: r.seconds)


def say(message: str) -> None:
    print(f"[{NAME}] {message}", flush=True)


def _need(program: str) -> None:
    if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").is_file():
        raise BenchError(f"{program} is not installed (Debian: `make peers` installs it)")


# The cloud ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenants:
    tool: fab.SeededTenant
    tool_agent: fab.Agent
    push: fab.SeededTenant
    push_agent: fab.Agent


def _seed(home: Path) -> Tenants:
    async def work(rt: Runtime) -> Tenants:
        tool = await fab.create_tenant(rt, TOOL_COMPANY)
        push = await fab.create_tenant(rt, PUSH_COMPANY)
        return Tenants(
            tool, await fab.create_sync_agent(rt, tool), push, await fab.create_sync_agent(rt, push)
        )

    return fab.seed(home, work)


def _records(users: Sequence[LdapUser]) -> list[directory_pb2.SyncUsersRequest]:
    """The stream a first (full) run of the tool sends for these users: same fields, same
    normalized PINs and cards, header included."""
    header = directory_pb2.SyncUsersHeader(
        source=common_pb2.USER_SOURCE_LDAP, request_id=secrets.token_hex(8), full=True
    )
    stream = [directory_pb2.SyncUsersRequest(header=header)]
    for u in users:
        record = directory_pb2.SyncUserRecord(
            login=u.login,
            email=u.mail,
            full_name=u.display_name,
            department=u.department,
            pin=normalize_pin(u.pin),
            cards=[normalize_card(u.card)],
            replace_cards=True,
        )
        stream.append(directory_pb2.SyncUsersRequest(record=record))
    return stream


async def _push(
    cloud: fab.CloudProcess,
    tenant: fab.SeededTenant,
    agent: fab.Agent,
    stream: list[directory_pb2.SyncUsersRequest],
) -> tuple[float, directory_pb2.SyncUsersResponse]:
    started = time.perf_counter()
    async with fab.aio_channel(cloud.target, cloud.ca) as channel:
        md = await fab.login_agent(channel, tenant, agent, auth_pb2.DEVICE_KIND_SYNC_AGENT)

        async def requests() -> AsyncIterator[directory_pb2.SyncUsersRequest]:
            for message in stream:
                yield message

        reply: directory_pb2.SyncUsersResponse = await directory_pb2_grpc.DirectoryServiceStub(
            channel
        ).SyncUsers(requests(), metadata=md, timeout=SYNC_SECONDS)
    return time.perf_counter() - started, reply


def _cloud_users(cloud: fab.CloudProcess, tenant: fab.SeededTenant) -> dict[str, tuple[Any, ...]]:
    """The tenant's synced users as the cloud holds them (the seeded admin left out)."""
    db = fab.cloud_config(cloud.home).state_dir / "cloud.db"
    with read_only_sqlite(db) as conn:
        rows = conn.execute(
            "SELECT u.login, u.email, u.full_name, u.department, u.disabled,"
            " u.pin_hash IS NOT NULL, (SELECT count(*) FROM cards c WHERE c.user_id = u.id)"
            " FROM users u WHERE u.tenant_id = ? AND u.login != ?",
            (tenant.tenant_id, tenant.admin_login),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6]) for r in rows}


# The directory and the tool -------------------------------------------------------------------


class Tool:
    """printfabric-sync with its config, state and output in folder, as the tenant's agent."""

    def __init__(self, folder: Path, slapd: Slapd, cloud: fab.CloudProcess, agent: fab.Agent):
        folder.mkdir(parents=True)
        self.folder = folder
        self.config = folder / "sync.toml"
        self.config.write_text(f"""
[cloud]
target = "{cloud.target}"
ca_file = "{cloud.ca_file}"
company_code = "{TOOL_COMPANY}"
serial_number = "{agent.serial}"
token_env = "PF_SYNC_TOKEN"

[sync]
state_file = "{folder / "state.json"}"

[[source]]
name = "corp"
url = "{slapd.ldaps_url}"
ca_file = "{slapd.ca_file}"
base = "{slapd.people_dn}"
filter = "{FILTER}"
bind_dn = "{slapd.reader_dn}"
password_env = "PF_LDAP_PASSWORD"
page_size = {PAGE_SIZE}
[source.mapping]
pin = "employeeNumber"
card = "pager"
""")
        self.env = clean_env(PF_SYNC_TOKEN=agent.token, PF_LDAP_PASSWORD=slapd.reader_password)

    def attributes(self) -> list[str]:
        """The attributes the tool asks the directory for, from its own reading of the file."""
        (source,) = load_sync_config(self.config, self.env).sources
        return source.mapping.attributes()

    def startup(self) -> Exited:
        """`--help`: the interpreter and the tool's imports, nothing read or pushed."""
        return run_client([*command_argv("printfabric-sync"), "--help"], self.env, self.folder, 60)

    def once(self) -> SyncRun:
        argv = [*command_argv("printfabric-sync"), "-c", str(self.config), "--once", "--json"]
        exited = run_client(argv, self.env, self.folder, SYNC_SECONDS)
        try:
            summary: dict[str, Any] = json.loads(exited.stdout)
            float(summary["seconds"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"printfabric-sync printed {exited.stdout[:300]!r}") from exc
        return SyncRun(summary, exited.seconds, exited.peak_rss)


def _ldapsearch(slapd: Slapd, attributes: list[str], folder: Path) -> tuple[Exited, int]:
    """ldapsearch's paged read of the tool's search; the run and how many entries it printed."""
    folder.mkdir(exist_ok=True)
    password = folder / "password"
    password.write_text(slapd.reader_password)  # -y takes the whole file: no newline
    argv = [
        shutil.which("ldapsearch") or "/usr/bin/ldapsearch",
        *("-LLL", "-x", "-o", "ldif-wrap=no", "-H", slapd.ldaps_url),
        *("-D", slapd.reader_dn, "-y", str(password), "-b", slapd.people_dn),
        *("-E", f"pr={PAGE_SIZE}/noprompt", FILTER, *attributes),
    ]
    env = clean_env(LDAPTLS_CACERT=str(slapd.ca_file), LDAPTLS_REQCERT="demand")
    exited = run_client(argv, env, folder, READ_SECONDS)
    entries = sum(1 for line in exited.stdout.splitlines() if line.startswith(("dn:", "dn::")))
    return exited, entries


def _change(slapd: Slapd, users: Sequence[LdapUser]) -> None:
    """CHANGED users move department, the next DISABLED are disabled, the next REMOVED deleted."""
    for u in users[:CHANGED]:
        slapd.modify(u.login, department="Moved", departmentNumber="Moved")
    for u in users[CHANGED : CHANGED + DISABLED]:
        slapd.set_disabled(u.login, True)
    for u in users[CHANGED + DISABLED : CHANGED + DISABLED + REMOVED]:
        slapd.delete(u.login)


# The benchmark --------------------------------------------------------------------------------


def _counts(run: SyncRun, want: dict[str, int], what: str) -> list[str]:
    got = {k: run.summary.get(k) for k in want}
    problems = [f"{what}: {got} where {want} was expected"] if got != want else []
    if run.summary.get("problems"):
        problems.append(f"{what}: the tool reported {run.summary['problems'][:3]}")
    return problems


def _cloud_problems(
    cloud: fab.CloudProcess, tenants: Tenants, users: Sequence[LdapUser], pushed_alike: bool
) -> list[str]:
    """What the cloud's rows of the tool's tenant get wrong after the incremental run, and
    whether the full sync and the direct push left the same users (pushed_alike, checked
    before the changes: False when they differed)."""
    problems = [] if pushed_alike else ["the full sync and the direct push left different users"]
    held = _cloud_users(cloud, tenants.tool)
    gone = {u.login for u in users[CHANGED : CHANGED + DISABLED + REMOVED]}
    moved = {u.login for u in users[:CHANGED]}
    if len(held) != len(users):
        problems.append(f"the cloud holds {len(held)} synced users, not {len(users)}")
    wrong = [
        login
        for login, row in held.items()
        if row[3] != (login in gone)
        or (row[2] == "Moved") != (login in moved)
        or not row[4]
        or row[5] != 1
    ]
    if wrong:
        problems.append(f"{len(wrong)} users are wrong in the cloud, e.g. {wrong[:3]}")
    return problems


def _measure(work: Path, users: list[LdapUser], rounds: int) -> Outcome:
    problems: list[str] = []
    n = len(users)
    say(f"loading {n} users into slapd")
    with running_slapd(work / "slapd", users) as slapd:
        say(f"slapd ready (slapadd {slapd.load_seconds:.1f} s); seeding the cloud in {work}")
        tenants = _seed(work / "cloud")
        cloud = fab.CloudProcess(work / "cloud")
        try:
            cloud.wait_ready()
            tool = Tool(work / "tool", slapd, cloud, tenants.tool_agent)
            attributes = tool.attributes()
            say(f"baseline: ldapsearch paged read of {', '.join(attributes)}, warm-up + {rounds}")
            reads: list[Exited] = []
            for i in range(rounds + 1):
                read, entries = _ldapsearch(slapd, attributes, work / "ldapsearch")
                if entries != n:
                    problems.append(f"ldapsearch read {entries} entries, not {n}")
                if i:
                    reads.append(read)
            say(f"baseline: SyncUsers push of {n} prebuilt records into {PUSH_COMPANY}")
            push_seconds, reply = asyncio.run(
                _push(cloud, tenants.push, tenants.push_agent, _records(users))
            )
            if reply.created != n or reply.problems:
                problems.append(f"the direct push created {reply.created}, {reply.problems[:3]}")
            startup = tool.startup()

            say(f"full sync of {n} users into {TOOL_COMPANY}")
            full = tool.once()
            problems += _counts(full, {"entries": n, "users": n, "created": n, "pushed": n}, "full")
            pushed_alike = _cloud_users(cloud, tenants.tool) == _cloud_users(cloud, tenants.push)
            say("a run with nothing changed")
            unchanged = tool.once()
            problems += _counts(unchanged, {"pushed": 0}, "no change")
            say(f"changing {CHANGED}, disabling {DISABLED}, deleting {REMOVED} users in slapd")
            _change(slapd, users)
            say("incremental sync")
            incremental = tool.once()
            want = {"updated": CHANGED, "disabled": DISABLED, "removed": REMOVED, "created": 0}
            want["pushed"] = CHANGED + DISABLED + REMOVED
            problems += _counts(incremental, want, "incremental")
            problems += _cloud_problems(cloud, tenants, users, pushed_alike)
        finally:
            stopped = cloud.stop()
    say(f"cloud stopped: {stopped}")

    read = min(reads, key=lambda r: r.seconds)
    spread = sorted(r.seconds for r in reads)
    rows = (
        (
            "directory",
            f"{n} users in slapd (AD attributes, PIN and card each), LDAPS, pages of {PAGE_SIZE}",
        ),
        (
            "ldapsearch paged read (baseline)",
            f"{read.seconds:6.2f} s ({n / read.seconds:.0f} entries/s)"
            f"  [{spread[0]:.2f} to {spread[-1]:.2f} s over {len(reads)}]",
        ),
        (
            "SyncUsers push of the same records (baseline)",
            f"{push_seconds:6.2f} s ({n / push_seconds:.0f} users/s), gRPC aio, one stream",
        ),
        (
            "printfabric-sync start-up (--help)",
            f"{startup.seconds:6.2f} s, peak RSS {startup.peak_rss / MIB:.1f} MiB",
        ),
        ("full sync (--once into an empty tenant)", full.describe(n)),
        ("full sync: the tool's peak RSS", f"{full.peak_rss / MIB:6.1f} MiB"),
        (
            "full sync / (ldapsearch read + direct push)",
            f"{full.wall / (read.seconds + push_seconds):6.2f}x",
        ),
        ("no-change run (pushed 0)", unchanged.describe()),
        (
            f"incremental ({CHANGED} changed, {DISABLED} disabled, {REMOVED} deleted)",
            incremental.describe(),
        ),
        ("incremental / ldapsearch read", f"{incremental.wall / read.seconds:6.2f}x"),
        (
            "counts",
            "; ".join(problems)
            or "ok: the tool's summaries, and the cloud's users (alike for the push)",
        ),
    )
    return Outcome(
        NAME,
        rows,
        not problems,
        n,
        tuple(reads),
        push_seconds,
        startup,
        full,
        unchanged,
        incremental,
    )


def run(users: int = USERS, rounds: int = ROUNDS) -> Outcome:
    # Fewer would disable more than the tool's 10% limit, and the incremental run would stop.
    least = max(10 * (DISABLED + REMOVED), 2 * (CHANGED + DISABLED + REMOVED))
    if users < least:
        raise ValueError(f"the bench disables {DISABLED + REMOVED} users: give it {least} or more")
    for program in ("slapd", "slapadd", "slappasswd", "ldapsearch"):
        _need(program)
    work = Path(tempfile.mkdtemp(prefix="pf-bench-sync-"))
    try:
        return _measure(work, make_users(users), rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
