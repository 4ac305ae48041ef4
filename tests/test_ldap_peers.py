"""The slapd test peer: 20 000 users page out over LDAP, LDAPS and StartTLS, and changes show."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError
from printfabric.credentials import normalize_card

from tests.support.ldap_peers import (
    DEPARTMENTS,
    PAGE_LIMIT,
    LdapUser,
    Slapd,
    make_users,
    running_slapd,
)

MANY = 20_000
AD_ATTRIBUTES = ["sAMAccountName", "mail", "displayName", "department", "userAccountControl"]
OPENLDAP_ATTRIBUTES = ["uid", "mail", "cn", "departmentNumber", "employeeNumber", "pager"]
GROUPS = {"color-printing": ["user00001", "user00002", "user00003"], "finance-mfp": ["user19999"]}
ENABLED_ONLY = "(&(objectClass=adUser)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"


@pytest.fixture(scope="module")
def many_users() -> list[LdapUser]:
    return make_users(MANY)


@pytest.fixture(scope="module")
def big_directory(
    tmp_path_factory: pytest.TempPathFactory, many_users: list[LdapUser]
) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd-20k"), many_users, groups=GROUPS) as slapd:
        print(f"slapadd {slapd.load_seconds:.2f} s, slapd up in {slapd.start_seconds:.2f} s")
        yield slapd


@pytest.fixture
def small_directory(tmp_path: Path) -> Iterator[Slapd]:
    with running_slapd(tmp_path / "slapd", make_users(5), groups={"staff": ["user00001"]}) as s:
        yield s


def tls(slapd: Slapd) -> ldap3.Tls:
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(slapd.ca_file))


def reader(slapd: Slapd, url: str | None = None, **server: Any) -> ldap3.Connection:
    """A connection as the read-only service account, not bound yet."""
    target = ldap3.Server(url or slapd.ldap_url, get_info=ldap3.NONE, connect_timeout=5, **server)
    return ldap3.Connection(target, slapd.reader_dn, slapd.reader_password, receive_timeout=30)


def search(
    conn: ldap3.Connection, slapd: Slapd, query: str = "(objectClass=adUser)"
) -> dict[str, dict[str, list[str]]]:
    """Every matching entry in pages of 1000, by login, attributes as lists of strings."""
    entries = conn.extend.standard.paged_search(
        slapd.people_dn,
        query,
        attributes=[*AD_ATTRIBUTES, *OPENLDAP_ATTRIBUTES],
        paged_size=PAGE_LIMIT,
        generator=False,
    )
    return {e["attributes"]["sAMAccountName"][0]: e["attributes"] for e in entries}


def ad_view(user: LdapUser) -> dict[str, list[str]]:
    return {
        "sAMAccountName": [user.login],
        "mail": [user.mail],
        "displayName": [user.display_name],
        "department": [user.department],
        "userAccountControl": ["514" if user.disabled else "512"],
        "uid": [user.login],
        "cn": [user.display_name],
        "departmentNumber": [user.department],
        "employeeNumber": [user.pin],
        "pager": [user.card],
    }


def test_users_are_deterministic_with_unique_pins_and_cards() -> None:
    users = make_users(MANY, seed=7)
    assert users == make_users(MANY, seed=7) != make_users(MANY, seed=8)
    assert (
        users[0].login == "user00001"
        and users[0].dn == "uid=user00001,ou=people,dc=example,dc=test"
    )
    assert len({u.pin for u in users}) == MANY and all(len(u.pin) == 6 for u in users)
    assert any(u.pin.startswith("0") for u in users)
    assert len({normalize_card(u.card) for u in users}) == MANY
    assert {u.department for u in users} == set(DEPARTMENTS)
    assert any(not u.display_name.isascii() for u in users)


def test_twenty_thousand_users_page_out_with_both_attribute_mappings(
    big_directory: Slapd, many_users: list[LdapUser]
) -> None:
    conn = reader(big_directory)
    assert conn.bind()
    began = time.monotonic()
    found = search(conn, big_directory)
    print(f"paged search of {len(found)} entries: {time.monotonic() - began:.2f} s")
    conn.unbind()
    assert len(found) == MANY
    assert found == {u.login: ad_view(u) for u in many_users}


def test_a_search_without_paging_stops_at_the_page_limit_like_ad(big_directory: Slapd) -> None:
    conn = reader(big_directory)
    assert conn.bind()
    conn.search(big_directory.people_dn, "(objectClass=adUser)", attributes=["uid"])
    assert conn.result["description"] == "sizeLimitExceeded"
    assert len(conn.entries) == PAGE_LIMIT
    conn.unbind()


def test_ldaps_and_starttls_validate_the_server_against_the_test_ca(big_directory: Slapd) -> None:
    query = "(sAMAccountName=user12345)"
    over_ldaps = reader(big_directory, big_directory.ldaps_url, tls=tls(big_directory))
    assert over_ldaps.bind() and over_ldaps.server.ssl
    assert set(search(over_ldaps, big_directory, query)) == {"user12345"}
    over_ldaps.unbind()

    starttls = reader(big_directory, tls=tls(big_directory))
    starttls.open()
    assert starttls.start_tls() and starttls.tls_started
    assert starttls.bind()
    assert set(search(starttls, big_directory, query)) == {"user12345"}
    starttls.unbind()


def test_a_wrong_reader_password_is_refused_and_anonymous_sees_nothing(
    big_directory: Slapd,
) -> None:
    server = ldap3.Server(big_directory.ldap_url, get_info=ldap3.NONE)
    wrong = ldap3.Connection(server, big_directory.reader_dn, "not-the-password")
    assert not wrong.bind()
    assert wrong.result["description"] == "invalidCredentials"

    anonymous = ldap3.Connection(server)
    assert anonymous.bind()
    anonymous.search(big_directory.people_dn, "(objectClass=*)", attributes=["uid"])
    assert anonymous.entries == []

    conn = reader(big_directory)
    assert conn.bind()
    conn.search(big_directory.reader_dn, "(objectClass=*)", ldap3.BASE, attributes=["*"])
    assert "userPassword" not in conn.response[0]["attributes"]
    conn.unbind()


def test_groups_list_their_members(big_directory: Slapd) -> None:
    conn = reader(big_directory)
    assert conn.bind()
    conn.search(big_directory.groups_dn, "(objectClass=groupOfNames)", attributes=["cn", "member"])
    groups = {e["attributes"]["cn"][0]: sorted(e["attributes"]["member"]) for e in conn.response}
    assert groups == {
        name: sorted(big_directory.dn_of(login) for login in logins)
        for name, logins in GROUPS.items()
    }
    conn.unbind()


def test_changes_by_the_admin_show_in_the_readers_search(small_directory: Slapd) -> None:
    d = small_directory
    newcomer = LdapUser("jdoe", "jdoe@example.test", "Jane Doe", "Legal", "013579", "04ABCDEF01")
    d.modify("user00001", mail="new@example.test", department="Finance", departmentNumber=None)
    d.set_disabled("user00002", True)
    d.delete("user00003")
    d.add(newcomer)
    d.set_members("staff", ["user00001", "jdoe"])

    conn = reader(d)
    assert conn.bind()
    found = search(conn, d)
    assert set(found) == {"user00001", "user00002", "user00004", "user00005", "jdoe"}
    assert found["user00001"]["mail"] == ["new@example.test"]
    assert found["user00001"]["department"] == ["Finance"]
    assert found["user00001"]["departmentNumber"] == []
    assert found["user00002"]["userAccountControl"] == ["514"]
    assert found["jdoe"] == ad_view(newcomer)
    assert set(search(conn, d, ENABLED_ONLY)) == {"user00001", "user00004", "user00005", "jdoe"}
    conn.search(d.group_dn("staff"), "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert sorted(conn.response[0]["attributes"]["member"]) == [
        d.dn_of("jdoe"),
        d.dn_of("user00001"),
    ]
    conn.unbind()

    d.set_disabled("user00002", False)
    with d.admin() as admin:
        admin.search(d.dn_of("user00002"), "(objectClass=*)", ldap3.BASE, attributes=["*"])
        assert admin.response[0]["attributes"]["userAccountControl"] == ["512"]


def test_a_stopped_directory_is_unreachable_and_comes_back_on_the_same_url(
    small_directory: Slapd,
) -> None:
    url = small_directory.ldap_url
    small_directory.stop()
    with pytest.raises(LDAPSocketOpenError):
        reader(small_directory).bind()
    small_directory.start()
    assert small_directory.ldap_url == url
    conn = reader(small_directory)
    assert conn.bind()
    assert len(search(conn, small_directory)) == 5
    conn.unbind()


def test_ldaps_refuses_an_expired_server_certificate(tmp_path: Path) -> None:
    with running_slapd(tmp_path / "slapd", make_users(2), cert="expired") as expired:
        conn = reader(expired, expired.ldaps_url, tls=tls(expired))
        with pytest.raises(LDAPSocketOpenError, match="certificate has expired"):
            conn.bind()
        # The server itself is fine: plain LDAP answers.
        plain = reader(expired)
        assert plain.bind()
        assert set(search(plain, expired)) == {"user00001", "user00002"}
        plain.unbind()
