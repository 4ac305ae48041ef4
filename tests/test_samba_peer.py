"""A real Active Directory (Samba AD DC) read the way the Local AD Sync tool reads it."""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core import exceptions as lx
from printfabric.tls import ensure_dev_pki

from tests.support.samba import (
    UAC_ACCOUNTDISABLE,
    UAC_NORMAL_ACCOUNT,
    AdUser,
    SambaDC,
    running_samba_dc,
)

PEOPLE = "(&(objectCategory=person)(objectClass=user))"
SYNCED = [
    "sAMAccountName",
    "mail",
    "displayName",
    "department",
    "userAccountControl",
    "employeeNumber",
    "pager",
]
PAGED_RESULTS = "1.2.840.113556.1.4.319"
DEPARTMENTS = ("Sales", "Finance", "Engineering", "Legal")
RELEASE_GROUP = "Print Release"


def staff_member(i: int) -> AdUser:
    return AdUser(
        login=f"user{i:03d}",
        mail=f"user{i:03d}@test.lan",
        # One name beyond ASCII, as in any real company directory.
        display_name="Zoë Ångström" if i == 7 else f"User {i:03d}",
        department=DEPARTMENTS[i % len(DEPARTMENTS)],
        pin=f"{4000 + i}",
        card=f"{0x04A10000 + i:08X}",
        # Every 25th account has left the company.
        enabled=i % 25 != 24,
    )


STAFF = [staff_member(i) for i in range(200)]


@pytest.fixture(scope="module")
def dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    with running_samba_dc(tmp_path_factory.mktemp("samba")) as dc:
        dc.add_users(STAFF)
        dc.add_group(RELEASE_GROUP, [user.login for user in STAFF[:10]])
        yield dc


@contextmanager
def bound(dc: SambaDC, url: str, user: str = "", password: str = "") -> Iterator[ldap3.Connection]:
    conn = dc.connect(user or dc.reader_dn, password or dc.reader_password, url)
    try:
        yield conn
    finally:
        conn.unbind()


def one(value: Any) -> str:
    """A single-valued attribute as text, however ldap3 hands it over."""
    if isinstance(value, list):
        assert len(value) == 1, value
        value = value[0]
    return str(value)


def paged_search(
    conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str], size: int
) -> tuple[list[dict[str, Any]], int]:
    """Every entry, following the paged-results cookie by hand; returns (entries, pages)."""
    entries: list[dict[str, Any]] = []
    pages = 0
    cookie: bytes | None = None
    while True:
        conn.search(
            base, search_filter, attributes=attributes, paged_size=size, paged_cookie=cookie
        )
        pages += 1
        page = [e for e in conn.response if e["type"] == "searchResEntry"]
        assert len(page) <= size
        entries += page
        cookie = conn.result["controls"][PAGED_RESULTS]["value"]["cookie"]
        if not cookie:
            return entries, pages


def read_user(conn: ldap3.Connection, base: str, login: str) -> dict[str, Any] | None:
    conn.search(base, f"(sAMAccountName={login})", attributes=[*SYNCED, "memberOf"])
    found = [e for e in conn.response if e["type"] == "searchResEntry"]
    return found[0]["attributes"] if found else None


@pytest.mark.parametrize("transport", ["ldaps", "starttls"])
def test_the_reader_pages_through_every_person_with_the_attributes_the_sync_maps(
    dc: SambaDC, transport: str
) -> None:
    url = dc.ldaps_url if transport == "ldaps" else dc.ldap_url
    with bound(dc, url) as conn:
        assert conn.server.ssl if transport == "ldaps" else conn.tls_started
        entries, pages = paged_search(conn, dc.base, PEOPLE, SYNCED, size=50)

    assert pages == math.ceil(len(entries) / 50) >= 5
    found = {one(e["attributes"]["sAMAccountName"]): e["attributes"] for e in entries}
    # The built-in accounts are people too; the DC's computer account is not.
    assert {"Administrator", "svc-print"} <= found.keys()
    assert "PFDC$" not in found
    for user in STAFF:
        attrs = found[user.login]
        assert one(attrs["mail"]) == user.mail
        assert one(attrs["displayName"]) == user.display_name
        assert one(attrs["department"]) == user.department
        assert one(attrs["employeeNumber"]) == user.pin
        assert one(attrs["pager"]) == user.card
        disabled = UAC_ACCOUNTDISABLE if not user.enabled else 0
        assert int(one(attrs["userAccountControl"])) == UAC_NORMAL_ACCOUNT | disabled


def test_accounts_of_people_who_left_carry_the_accountdisable_bit(dc: SambaDC) -> None:
    with bound(dc, dc.ldaps_url) as conn:
        conn.search(
            dc.users_base,
            # The bitwise-AND matching rule, as the sync's filter for disabled accounts uses it.
            "(userAccountControl:1.2.840.113556.1.4.803:=2)",
            attributes=["sAMAccountName"],
        )
        disabled = {one(e["attributes"]["sAMAccountName"]) for e in conn.response}
    assert disabled == {user.login for user in STAFF if not user.enabled}
    assert len(disabled) == 8


def test_disabling_an_account_sets_only_bit_0x2_and_enabling_clears_it(dc: SambaDC) -> None:
    dc.add_users([AdUser("leaver", mail="leaver@test.lan", department="Sales")])
    with bound(dc, dc.ldaps_url) as conn:
        dc.set_disabled("leaver")
        user = read_user(conn, dc.users_base, "leaver")
        assert user is not None
        assert int(one(user["userAccountControl"])) == UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE

        dc.set_disabled("leaver", False)
        user = read_user(conn, dc.users_base, "leaver")
        assert user is not None
        assert int(one(user["userAccountControl"])) == UAC_NORMAL_ACCOUNT
    dc.delete("leaver")


def test_a_group_lists_its_members_and_each_member_names_the_group(dc: SambaDC) -> None:
    group_dn = f"CN={RELEASE_GROUP},{dc.groups_base}"
    with bound(dc, dc.ldaps_url) as conn:
        conn.search(group_dn, "(objectClass=group)", ldap3.BASE, attributes=["member"])
        members = {dn.casefold() for dn in conn.response[0]["attributes"]["member"]}
        member = read_user(conn, dc.users_base, STAFF[3].login)
        outsider = read_user(conn, dc.users_base, STAFF[150].login)
    assert members == {dc.dn_of(user.login).casefold() for user in STAFF[:10]}
    assert member is not None and outsider is not None
    assert [dn.casefold() for dn in member["memberOf"]] == [group_dn.casefold()]
    assert not outsider.get("memberOf")


def test_changes_and_deletions_show_up_for_the_reader(dc: SambaDC) -> None:
    dc.add_users([AdUser("mover", mail="mover@test.lan", department="Sales", pin="1111")])
    dc.modify("mover", department="Legal", pin="2222", card="04B2C3D4", mail=None)
    with bound(dc, dc.ldaps_url) as conn:
        user = read_user(conn, dc.users_base, "mover")
        assert user is not None
        assert one(user["department"]) == "Legal"
        assert one(user["employeeNumber"]) == "2222"
        assert one(user["pager"]) == "04B2C3D4"
        assert not user.get("mail")

        dc.delete("mover")
        assert read_user(conn, dc.users_base, "mover") is None


def test_the_reader_binds_by_dn_by_upn_and_by_down_level_name(dc: SambaDC) -> None:
    for name in (dc.reader_dn, "svc-print@test.lan", "TEST\\svc-print"):
        with bound(dc, dc.ldaps_url, name, dc.reader_password) as conn:
            assert conn.bound, name


def test_the_reader_cannot_change_the_directory(dc: SambaDC) -> None:
    with (
        bound(dc, dc.ldaps_url) as conn,
        pytest.raises(lx.LDAPInsufficientAccessRightsResult),
    ):
        conn.modify(dc.dn_of(STAFF[0].login), {"department": [(ldap3.MODIFY_REPLACE, ["IT"])]})


def test_a_simple_bind_in_clear_text_is_refused(dc: SambaDC) -> None:
    conn = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=389, get_info=ldap3.NONE),
        user=dc.reader_dn,
        password=dc.reader_password,
    )
    try:
        assert not conn.bind()
        assert conn.result["description"] == "strongerAuthRequired"
    finally:
        conn.unbind()


@pytest.mark.parametrize("port", [636, 389])
def test_a_certificate_the_ca_file_does_not_vouch_for_is_refused(
    dc: SambaDC, tmp_path: Path, port: int
) -> None:
    stranger = ensure_dev_pki(tmp_path / "other-ca")
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(stranger.ca_cert))
    server = ldap3.Server("127.0.0.1", port=port, use_ssl=port == 636, tls=tls, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, dc.reader_dn, dc.reader_password, raise_exceptions=True)
    with pytest.raises((lx.LDAPSocketOpenError, lx.LDAPStartTLSError)) as refused:
        conn.open()
        conn.start_tls()
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


@pytest.mark.parametrize("gc", ["gc_url", "gc_ldaps_url"])
def test_the_global_catalog_answers_with_the_partial_attribute_set(dc: SambaDC, gc: str) -> None:
    with bound(dc, getattr(dc, gc)) as conn:
        conn.search(
            dc.base,
            f"(sAMAccountName={STAFF[7].login})",
            attributes=["sAMAccountName", "mail", "displayName"],
        )
        found = [e for e in conn.response if e["type"] == "searchResEntry"]
    assert len(found) == 1
    assert one(found[0]["attributes"]["mail"]) == STAFF[7].mail
    assert one(found[0]["attributes"]["displayName"]) == "Zoë Ångström"
