"""The Azure AD sync against a loopback Azure AD + Graph over HTTPS: full and delta rounds,
throttling, bad credentials, broken pages, bad users, tenants kept apart, the schedule."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from cloud.connectors import AzureAdChange, AzureAdSync, GraphLimits, SecretBox
from cloud.connectors import azure_ad_settings as settings
from cloud.db.models import AuditEvent, AzureAdConnection, AzureAdUser, Card, User
from cloud.domain.enums import UserSource
from cloud.errors import Aborted
from cloud.server import load_secret
from tests.support.fabric import CloudHarness, TenantHandle, cloud_harness
from tests.support.graph_fake import GraphFake, graph_fake

# Quick retries: the tests wait for Retry-After, not for back-off meant for a real Graph.
FAST = GraphLimits(timeout=10, attempts=3, backoff=0.05, max_backoff=0.2, max_retry_after=5)
PIN_AND_CARD = {
    "pin_attribute": "employeeId",
    "card_attribute": "onPremisesExtensionAttributes.extensionAttribute1",
}


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[GraphFake]:
    async with graph_fake(tmp_path / "azure") as served:
        yield served


def connector(cloud: CloudHarness, owner: str = "") -> AzureAdSync:
    box = SecretBox(load_secret(cloud.running.config.connector_key_file))
    return AzureAdSync(cloud.rt, box, limits=FAST, owner=owner)


async def connect(
    cloud: CloudHarness, t: TenantHandle, fake: GraphFake, **change: Any
) -> AzureAdSync:
    sync = connector(cloud)
    await settings.configure(
        cloud.rt,
        sync.box,
        t.tenant_id,
        AzureAdChange(
            **{
                "azure_tenant_id": fake.azure_tenant_id,
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "authority_host": fake.authority_host,
                "graph_url": fake.graph_url,
                "ca_file": str(fake.ca_file),
                **change,
            }
        ),
    )
    return sync


async def users_of(cloud: CloudHarness, tenant_id: str) -> dict[str, User]:
    async with cloud.rt.db.reader() as session:
        rows = (await session.execute(select(User).where(User.tenant_id == tenant_id))).scalars()
        return {u.login: u for u in rows}


async def status_of(cloud: CloudHarness, t: TenantHandle) -> dict[str, Any]:
    (status,) = await settings.statuses(cloud.rt, t.tenant_id)
    return status.as_dict()


async def test_5000_users_in_three_pages_then_a_delta_round_changes_exactly_those(
    cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await cloud.make_tenant("ACME")
    ids = fake.add_users(5000)
    sync = await connect(cloud, t, fake, **PIN_AND_CARD)

    first = await sync.run_now(t.tenant_id)
    assert first.ok, first.error
    assert (first.full, first.users_read, first.pages) == (True, 5000, 3)
    assert (first.created, first.updated, first.disabled, first.problem_count) == (5000, 0, 0, 0)
    (token,) = fake.token_requests()
    assert token.form["grant_type"] == "client_credentials"
    assert token.form["client_id"] == fake.client_id
    assert token.form["scope"] == f"{fake.authority_host}/.default"
    pages = fake.graph_requests()
    assert [r.status for r in pages] == [200, 200, 200]
    selected = unquote(pages[0].query["$select"]).split(",")
    assert {
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "department",
        "accountEnabled",
    } <= set(selected)
    assert {"employeeId", "onPremisesExtensionAttributes"} <= set(selected)
    assert "jobTitle" not in selected
    assert "$skiptoken" in pages[1].query and "$skiptoken" in pages[2].query

    users = await users_of(cloud, t.tenant_id)
    assert len(users) == 5001  # and the tenant's local admin
    for i in (0, 42, 2500, 4999):
        u = users[f"user{i:05d}@contoso.test"]
        assert (u.email, u.full_name, u.department) == (
            f"user{i:05d}@mail.contoso.test",
            f"User {i:05d}",
            f"Dept {i % 10}",
        )
        assert u.source == UserSource.AZURE_AD and not u.disabled and u.pin_hash
    async with cloud.rt.db.reader() as session:
        cards = (
            await session.execute(
                select(func.count()).select_from(Card).where(Card.tenant_id == t.tenant_id)
            )
        ).scalar_one()
        stored = (
            await session.execute(
                select(AzureAdUser.properties).where(
                    AzureAdUser.tenant_id == t.tenant_id, AzureAdUser.object_id == ids[7]
                )
            )
        ).scalar_one()
    assert cards == 5000
    assert "jobTitle" not in json.loads(stored)  # $select honoured
    assert (await status_of(cloud, t))["next_round"] == "delta"

    # 100 changed, 10 disabled in Azure AD, 10 removed; the other 4880 untouched.
    changed, disabled, removed = ids[:100], ids[100:110], ids[110:120]
    for oid in changed:
        fake.update(oid, department="Moved")
    for oid in disabled:
        fake.disable(oid)
    for oid in removed:
        fake.remove(oid)
    before = {login: u.revision for login, u in users.items()}

    second = await sync.run_now(t.tenant_id)
    assert second.ok, second.error
    assert (second.full, second.users_read, second.pages, second.removed) == (False, 120, 1, 10)
    assert (second.created, second.updated, second.disabled) == (0, 120, 20)
    delta_page = fake.graph_requests()[-1]
    assert "$deltatoken" in delta_page.query

    after = await users_of(cloud, t.tenant_id)
    assert len(after) == 5001  # none deleted
    for i in range(0, 100):
        u = after[f"user{i:05d}@contoso.test"]
        # Only department came in the delta; the rest is kept from the first round.
        assert (u.department, u.email, u.disabled) == (
            "Moved",
            f"user{i:05d}@mail.contoso.test",
            False,
        )
    for i in range(100, 120):
        u = after[f"user{i:05d}@contoso.test"]
        assert u.disabled and u.email == f"user{i:05d}@mail.contoso.test"
        assert u.full_name == f"User {i:05d}"
    untouched = [f"user{i:05d}@contoso.test" for i in range(120, 5000)]
    assert all(after[login].revision == before[login] for login in untouched)
    assert all(not after[login].disabled for login in untouched)

    # Nothing changed since: an empty delta round changes nothing.
    third = await sync.run_now(t.tenant_id)
    assert (third.ok, third.users_read, third.updated, third.disabled) == (True, 0, 0, 0)


async def test_throttled_page_is_retried_no_sooner_than_retry_after(
    sqlite_cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    fake.add_users(20)
    sync = await connect(sqlite_cloud, t, fake)
    fake.throttle(1, retry_after=1)
    result = await sync.run_now(t.tenant_id)
    assert result.ok, result.error
    assert (result.created, result.retries) == (20, 1)
    throttled, retried = fake.graph_requests()
    assert (throttled.status, retried.status) == (429, 200)
    assert retried.query == throttled.query  # the same URL again
    assert retried.at - throttled.at >= 1.0


async def test_wrong_client_secret_is_reported_and_nothing_is_applied(
    sqlite_cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    fake.add_users(5)
    sync = await connect(sqlite_cloud, t, fake, client_secret="not-the-secret")
    result = await sync.run_now(t.tenant_id)
    assert not result.ok
    assert "invalid_client" in result.error and "AADSTS7000215" in result.error
    assert "Trace ID" not in result.error
    assert fake.graph_requests() == []
    assert set(await users_of(sqlite_cloud, t.tenant_id)) == {"admin"}
    status = await status_of(sqlite_cloud, t)
    assert "AADSTS7000215" in status["last_result"]["error"]
    assert status["last_success_at"] is None and status["next_round"] == "full"
    assert status["running_until"] is None  # the lease was released

    await settings.configure(
        sqlite_cloud.rt, sync.box, t.tenant_id, AzureAdChange(client_secret=fake.client_secret)
    )
    fixed = await sync.run_now(t.tenant_id)
    assert fixed.ok and fixed.created == 5


async def test_unreachable_azure_ad_is_a_clear_error(
    sqlite_cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    sync = await connect(sqlite_cloud, t, fake, authority_host=f"https://127.0.0.1:{closed}")
    result = await sync.run_now(t.tenant_id)
    assert not result.ok
    assert f"cannot reach Azure AD at https://127.0.0.1:{closed}" in result.error
    assert "refused" in result.error.lower()
    assert set(await users_of(sqlite_cloud, t.tenant_id)) == {"admin"}


async def test_a_broken_page_applies_nothing_and_keeps_the_delta_link(
    sqlite_cloud: CloudHarness, tmp_path: Path
) -> None:
    async with graph_fake(tmp_path / "azure", page_size=10) as fake:
        t = await sqlite_cloud.make_tenant("ACME")
        ids = fake.add_users(30)
        sync = await connect(sqlite_cloud, t, fake)

        fake.fail_page(2, status=500)
        broken = await sync.run_now(t.tenant_id)
        assert not broken.ok and "HTTP 500" in broken.error and "page 2" in broken.error
        assert [r.status for r in fake.graph_requests()] == [200, 500, 500, 500]
        assert set(await users_of(sqlite_cloud, t.tenant_id)) == {"admin"}
        assert (await status_of(sqlite_cloud, t))["next_round"] == "full"

        fake.fail_page(2, times=0)
        whole = await sync.run_now(t.tenant_id)
        assert whole.ok and (whole.created, whole.pages) == (30, 3)

        # A delta round whose page is not JSON: nothing of it is applied, the next one is.
        fake.update(ids[0], department="Moved")
        fake.fail_page(1, status=200, times=1, body=b"<html>proxy error</html>")
        bad = await sync.run_now(t.tenant_id)
        assert not bad.ok and "not a JSON object" in bad.error
        assert (await users_of(sqlite_cloud, t.tenant_id))[
            "user00000@contoso.test"
        ].department == "Dept 0"
        good = await sync.run_now(t.tenant_id)
        assert good.ok and (good.full, good.updated) == (False, 1)
        assert (await users_of(sqlite_cloud, t.tenant_id))[
            "user00000@contoso.test"
        ].department == "Moved"


async def test_bad_users_are_listed_as_problems_and_the_others_sync(
    sqlite_cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    fake.add_users(10)
    nameless = fake.add_user(displayName="No Login", mail="nologin@contoso.test")
    first = fake.add_user(userPrincipalName="dup@contoso.test", displayName="First Dup")
    second = fake.add_user(userPrincipalName="DUP@contoso.test", displayName="Second Dup")
    fake.add_user(userPrincipalName="badpin@contoso.test", employeeId="12ab")
    badcard = fake.add_user(userPrincipalName="badcard@contoso.test", employeeId="24680")
    fake.users[badcard]["onPremisesExtensionAttributes"] = {"extensionAttribute1": "12"}
    sync = await connect(sqlite_cloud, t, fake, **PIN_AND_CARD)
    result = await sync.run_now(t.tenant_id)
    assert result.ok, result.error
    assert result.created == 13  # the 10, the first "dup", "badpin" and "badcard"
    problems = dict(result.problems)
    assert problems[f"No Login (object {nameless})"] == "has no userPrincipalName; not synced"
    assert f"Second Dup (object {second})" in problems["DUP@contoso.test"]
    assert first in problems["DUP@contoso.test"]
    assert problems["badpin@contoso.test"] == (
        "PIN not applied: a PIN is 4 to 12 digits (Azure AD property employeeId)"
    )
    assert result.problem_count == 3
    stored = await status_of(sqlite_cloud, t)
    assert len(stored["last_result"]["problems"]) == 3
    # A card first, then one that is not a card number: the first card stays.
    fake.update(badcard, onPremisesExtensionAttributes={"extensionAttribute1": "not-a-card"})
    carded = await sync.run_now(t.tenant_id)
    assert carded.ok and carded.updated == 0
    assert "is not a card number" in dict(carded.problems)["badcard@contoso.test"]
    async with sqlite_cloud.rt.db.reader() as session:
        holder = (
            await session.execute(
                select(User.id).where(
                    User.tenant_id == t.tenant_id, User.login == "badcard@contoso.test"
                )
            )
        ).scalar_one()
        held = (
            await session.execute(
                select(func.count()).select_from(Card).where(Card.user_id == holder)
            )
        ).scalar_one()
    assert held == 1
    users = await users_of(sqlite_cloud, t.tenant_id)
    assert users["dup@contoso.test"].full_name == "First Dup"
    assert users["badpin@contoso.test"].pin_hash is None
    assert users["user00003@contoso.test"].pin_hash is not None

    # A later change to the duplicate is reported again; it never takes over the user that the
    # first one holds.
    fake.update(second, displayName="Second Dup (renamed)")
    again = await sync.run_now(t.tenant_id)
    assert again.ok and again.updated == 0
    assert any("same userPrincipalName" in reason for _, reason in again.problems)
    assert (await users_of(sqlite_cloud, t.tenant_id))["dup@contoso.test"].full_name == "First Dup"
    # Once the first one is gone, the login passes to the one that waited for it.
    fake.remove(first)
    heir = await sync.run_now(t.tenant_id)
    assert heir.ok and (heir.removed, heir.updated, heir.disabled, heir.problem_count) == (
        1,
        1,
        0,
        0,
    )
    dup = (await users_of(sqlite_cloud, t.tenant_id))["dup@contoso.test"]
    assert (dup.full_name, dup.disabled) == ("Second Dup (renamed)", False)


async def test_a_renamed_user_moves_to_the_new_login_and_the_old_one_is_disabled(
    sqlite_cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    ids = fake.add_users(5)
    sync = await connect(sqlite_cloud, t, fake)
    assert (await sync.run_now(t.tenant_id)).created == 5
    fake.update(ids[0], userPrincipalName="renamed@contoso.test")
    result = await sync.run_now(t.tenant_id)
    assert result.ok and (result.created, result.updated, result.disabled) == (1, 1, 1)
    users = await users_of(sqlite_cloud, t.tenant_id)
    old, new = users["user00000@contoso.test"], users["renamed@contoso.test"]
    assert old.disabled and old.email == "user00000@mail.contoso.test"
    assert not new.disabled and new.email == "user00000@mail.contoso.test"
    # The removal of the renamed user later disables the new login, not the old one again.
    fake.remove(ids[0])
    gone = await sync.run_now(t.tenant_id)
    assert (gone.updated, gone.disabled) == (1, 1)
    assert (await users_of(sqlite_cloud, t.tenant_id))["renamed@contoso.test"].disabled


async def test_two_tenants_stay_apart(sqlite_cloud: CloudHarness, tmp_path: Path) -> None:
    async with (
        graph_fake(tmp_path / "a", azure_tenant_id="tenant-a") as fake_a,
        graph_fake(tmp_path / "b", azure_tenant_id="tenant-b", client_secret="b~secret") as fake_b,
    ):
        a, b = await sqlite_cloud.make_tenant("ALPHA"), await sqlite_cloud.make_tenant("BETA")
        ids_a = fake_a.add_users(50)
        fake_b.add_users(30)
        for oid in fake_b.users:
            fake_b.users[oid]["department"] = "Beta dept"
        sync_a = await connect(sqlite_cloud, a, fake_a)
        sync_b = await connect(sqlite_cloud, b, fake_b)
        assert (await sync_a.run_now(a.tenant_id)).created == 50
        assert (await sync_b.run_now(b.tenant_id)).created == 30
        fake_a.remove(ids_a[0])
        result = await sync_a.run_now(a.tenant_id)
        assert (result.disabled, result.removed) == (1, 1)
        users_a = await users_of(sqlite_cloud, a.tenant_id)
        users_b = await users_of(sqlite_cloud, b.tenant_id)
        assert len(users_a) == 51 and len(users_b) == 31
        assert users_a["user00000@contoso.test"].disabled
        assert not users_b["user00000@contoso.test"].disabled
        assert users_b["user00001@contoso.test"].department == "Beta dept"
        assert users_a["user00001@contoso.test"].department == "Dept 1"
        statuses = await settings.statuses(sqlite_cloud.rt)
        by_code = {s.company_code: s for s in statuses}
        assert by_code[a.company_code].azure_tenant_id == "tenant-a"
        assert by_code[b.company_code].azure_tenant_id == "tenant-b"
        async with sqlite_cloud.rt.db.reader() as session:
            secrets_at_rest = (
                await session.execute(select(AzureAdConnection.client_secret))
            ).scalars()
            assert all(b"secret" not in sealed for sealed in secrets_at_rest)
            actors = (
                await session.execute(
                    select(AuditEvent.actor_id).where(
                        AuditEvent.tenant_id == a.tenant_id, AuditEvent.action == "directory.sync"
                    )
                )
            ).scalars()
            assert set(actors) == {"azure-ad"}


async def test_an_expired_delta_link_starts_a_full_round(
    sqlite_cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    ids = fake.add_users(20)
    sync = await connect(sqlite_cloud, t, fake)
    assert (await sync.run_now(t.tenant_id)).created == 20
    fake.remove(ids[0])
    fake.expire_delta_links()
    result = await sync.run_now(t.tenant_id)
    assert result.ok and result.full and result.users_read == 19
    assert [r.status for r in fake.graph_requests()[-2:]] == [410, 200]
    assert result.disabled == 1  # a full round disables whoever it does not name


async def test_two_replicas_never_run_the_same_tenant_at_once(
    cloud: CloudHarness, fake: GraphFake
) -> None:
    t = await cloud.make_tenant("ACME")
    fake.add_users(10)
    await connect(cloud, t, fake)
    one, two = connector(cloud, owner="replica-1"), connector(cloud, owner="replica-2")
    ran = await asyncio.gather(one.run_due(), two.run_due())
    results = [r for rs in ran for r in rs]
    assert len(results) == 1 and results[0].created == 10
    assert len(fake.token_requests()) == 1
    # Not due again until its interval has passed.
    assert await one.run_due() == [] and await two.run_due() == []
    # A round asked for by hand waits its turn too.
    held = await settings.claim(cloud.rt, t.tenant_id, "replica-1", timedelta(minutes=5), False)
    assert held is not None
    with pytest.raises(Aborted, match="running on a cloud replica"):
        await two.run_now(t.tenant_id)


async def test_the_cloud_server_runs_a_due_tenant_on_its_schedule(
    tmp_path: Path, fake: GraphFake
) -> None:
    async with cloud_harness(tmp_path / "home", connector_poll=timedelta(seconds=0.1)) as cloud:
        t = await cloud.make_tenant("ACME")
        fake.add_users(25)
        await connect(cloud, t, fake, interval=timedelta(minutes=5))
        for _ in range(200):
            status = await status_of(cloud, t)
            if status["last_run_at"]:
                break
            await asyncio.sleep(0.05)
        assert status["last_result"]["ok"], status["last_result"]
        assert status["last_result"]["created"] == 25
        assert status["next_round"] == "delta"
        (row,) = await settings.statuses(cloud.rt, t.tenant_id)
        assert row.next_run_at is not None and row.last_run_at is not None
        assert row.next_run_at - row.last_run_at == timedelta(minutes=5)
        assert len(await users_of(cloud, t.tenant_id)) == 26


async def test_admin_cli_sets_runs_shows_and_disables_the_sync(
    tmp_path: Path, fake: GraphFake
) -> None:
    home = tmp_path / "home"
    fake.add_users(12)
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(fake.client_secret + "\n")

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "printfabric-cloud"),
            *args,
            env={**os.environ, "PF_HOME": str(home)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    assert (await cli("tenant", "create", "globex"))[0] == 0
    code, out, err = await cli(
        "--json", "azure-ad", "set", "--tenant", "GLOBEX",
        "--azure-tenant", fake.azure_tenant_id, "--client-id", fake.client_id,
        "--client-secret-file", str(secret_file), "--authority", fake.authority_host,
        "--graph-url", fake.graph_url, "--ca-file", str(fake.ca_file), "--interval", "2h",
        "--pin-attribute", "employeeId",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["interval_seconds"] == 7200
    code, out, err = await cli("--json", "azure-ad", "sync", "--tenant", "GLOBEX")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["ok"], summary["full"], summary["created"]) == (True, True, 12)
    code, out, _ = await cli("azure-ad", "status", "--tenant", "GLOBEX")
    assert code == 0 and "12 created" in out and "next round delta" in out
    assert fake.client_secret not in out
    assert (await cli("azure-ad", "disable", "--tenant", "GLOBEX"))[0] == 0
    code, _, err = await cli("azure-ad", "sync", "--tenant", "GLOBEX")
    assert code == 1 and "disabled" in err
    code, out, _ = await cli("--json", "azure-ad", "status")
    assert json.loads(out)["azure_ad"][0]["enabled"] is False
    code, _, err = await cli("azure-ad", "set", "--tenant", "GLOBEX", "--login-attribute", "a b")
    assert code == 1 and "not a Graph property" in err
