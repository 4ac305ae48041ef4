"""printfabric-sync without a directory: configuration, mapping, per-entry problems, the diff."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sync.config import PRESETS, ConfigError, SyncConfig, load
from sync.plan import Kind, describe, make_plan
from sync.records import Directory, DirectoryUser, Entry, collect
from sync.state import State, StateError, locked

AD = PRESETS["ad"]


def write_config(tmp_path: Path, source: str = "", cloud: str = "") -> Path:
    (tmp_path / "ca.pem").write_text("not read here")
    path = tmp_path / "sync.toml"
    path.write_text(
        f"""
[cloud]
target = "127.0.0.1:50051"
ca_file = "ca.pem"
company_code = "ACME"
serial_number = "ad-sync-1"
token_env = "PF_SYNC_TOKEN"
{cloud}

[sync]
state_file = "state/sync.json"
interval = "15m"

[[source]]
name = "corp"
url = "ldaps://dc1.corp.example:636"
base = "DC=corp,DC=example"
bind_dn = "CN=svc-print,OU=Service,DC=corp,DC=example"
password_env = "PF_LDAP_PASSWORD"
{source}
"""
    )
    return path


ENV = {"PF_SYNC_TOKEN": "tok", "PF_LDAP_PASSWORD": "secret"}


def test_a_config_with_ad_defaults(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), ENV)
    assert isinstance(config, SyncConfig)
    (source,) = config.sources
    assert source.mapping == AD
    assert source.filter == "(&(objectCategory=person)(objectClass=user))"
    assert source.password == "secret" and config.cloud.token == "tok"
    assert config.state_file == tmp_path / "state" / "sync.json"
    assert config.interval == 900
    assert "secret" not in repr(config)


def test_openldap_preset_and_a_mapping_override(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        source='preset = "openldap"\n[source.mapping]\npin = "employeeNumber"\n'
        'card = ["pager", "carLicense"]',
    )
    mapping = load(path, ENV).sources[0].mapping
    assert mapping.login == ("uid",) and mapping.full_name == ("cn",)
    assert mapping.department == ("departmentNumber",) and mapping.disabled == ""
    assert mapping.pin == ("employeeNumber",) and mapping.card == ("pager", "carLicense")


@pytest.mark.parametrize(
    ("source", "env", "message"),
    [
        ('password = "hunter2"', ENV, "secrets are not kept in the file"),
        ("", {"PF_SYNC_TOKEN": "tok"}, "PF_LDAP_PASSWORD is not set"),
        ("color = 1", ENV, "unknown key source #1.color"),
        ("start_tls = true", ENV, "start_tls is for ldap:// URLs"),
        ('bind = "ntlm"', ENV, "DOMAIN\\user"),
        ('preset = "novell"', ENV, "preset must be one of ad, openldap"),
        ("page_size = 0", ENV, "page_size"),
        ('[source.mapping]\nlogin = ""', ENV, "mapping.login must name the login attribute"),
    ],
)
def test_bad_configs_say_what_is_wrong(
    tmp_path: Path, source: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("\\", "\\\\").replace(".", r"\.")):
        load(write_config(tmp_path, source=source), env)


def test_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml", ENV)
    (tmp_path / "bad.toml").write_text("[cloud\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path / "bad.toml", ENV)


def test_the_token_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('token_env = "PF_SYNC_TOKEN"', 'token_file = "token"'))
    assert load(path, ENV).cloud.token == "from-file"


def entry(dn: str, **attrs: str | list[str]) -> Entry:
    return Entry("corp", dn, {k: v if isinstance(v, list) else [v] for k, v in attrs.items()})


def ad_mapping_with_pin_and_card() -> object:
    from dataclasses import replace

    return replace(AD, pin=("employeeNumber",), card=("pager",))


def test_entries_map_and_each_problem_is_reported_alone() -> None:
    mapping = ad_mapping_with_pin_and_card()
    d = Directory()
    collect(
        d,
        [
            entry(
                "CN=Ann,DC=x",
                sAMAccountName="ann",
                mail="ann@x",
                displayName="Ann A",
                department="Sales",
                employeeNumber="123456",
                pager=["0x44E1D9", "4512345"],
                userAccountControl="512",
            ),
            entry("CN=NoLogin,DC=x", mail="nologin@x"),
            entry("CN=Bob,DC=x", samaccountname="bob", cn="Bob B", employeeNumber="12ab"),
            entry("CN=Bob2,DC=x", sAMAccountName="BOB", mail="bob2@x"),
            entry("CN=Cy,DC=x", sAMAccountName="cy", userAccountControl="514", pager="zz"),
        ],
        mapping,  # type: ignore[arg-type]
    )
    assert d.entries == 5
    assert sorted(d.users) == ["ann", "bob", "cy"]
    ann = d.users["ann"]
    assert (ann.email, ann.full_name, ann.department, ann.pin) == (
        "ann@x",
        "Ann A",
        "Sales",
        "123456",
    )
    assert ann.cards == ("4512345", "4514265") and not ann.disabled
    assert d.users["bob"].full_name == "Bob B"  # displayName empty: cn
    assert d.users["bob"].pin is None and d.users["bob"].dn == "CN=Bob,DC=x"
    assert d.users["cy"].disabled and d.users["cy"].cards == ()
    text = "\n".join(map(str, d.problems))
    assert "CN=NoLogin,DC=x: no sAMAccountName" in text
    assert "bob: employeeNumber is not a PIN (a PIN is 4 to 12 digits)" in text
    assert "CN=Bob2,DC=x: the login BOB is already used by CN=Bob,DC=x" in text
    assert "cy: pager 'zz' is not a card number" in text
    assert len(d.problems) == 4


def test_group_members_limit_who_is_taken_dns_compared_the_ldap_way() -> None:
    d = Directory()
    members = {"cn=ann,ou=staff,dc=x", "bob"}
    collect(
        d,
        [
            entry("CN=Ann, OU=Staff,DC=x", sAMAccountName="ann"),
            entry("CN=Bob,OU=Staff,DC=x", sAMAccountName="Bob"),
            entry("CN=Cy,OU=Staff,DC=x", sAMAccountName="cy"),
        ],
        AD,
        members,
    )
    assert sorted(d.users) == ["ann", "bob"]


def directory(*users: DirectoryUser) -> Directory:
    return Directory(users={u.key: u for u in users}, entries=len(users))


def apply(state: State, d: Directory) -> None:
    for change in make_plan(state, d, full=False).changes:
        state.users[change.key] = change.after


def test_the_plan_sends_only_what_changed_and_disables_the_gone(tmp_path: Path) -> None:
    state = State.load(tmp_path / "s.json")
    ann = DirectoryUser("ann", "ann@x", "Ann", "Sales", pin="1234", cards=("1",))
    bob = DirectoryUser("bob", "bob@x", "Bob", "IT", pin="")
    cy = DirectoryUser("cy", "cy@x", "Cy", "IT")
    ghost = DirectoryUser("ghost", disabled=True)
    first = make_plan(state, directory(ann, bob, cy, ghost), full=True)
    assert [(c.kind, c.key) for c in first.changes] == [
        (Kind.CREATE, "ann"),
        (Kind.CREATE, "bob"),
        (Kind.CREATE, "cy"),
    ]
    records = {c.key: c.record() for c in first.changes}
    assert records["ann"].pin == "1234" and list(records["ann"].cards) == ["1"]
    assert records["ann"].replace_cards and not records["bob"].clear_pin
    assert not records["cy"].replace_cards and records["cy"].pin == ""
    apply(state, directory(ann, bob, cy))
    assert make_plan(state, directory(ann, bob, cy), full=False).changes == []

    moved = DirectoryUser("ann", "ann@x", "Ann", "Marketing", pin="", cards=("1",))
    off = DirectoryUser("bob", "bob@x", "Bob", "IT", pin="", disabled=True)
    plan = make_plan(state, directory(moved, off), full=False)
    kinds = {c.key: c.kind for c in plan.changes}
    assert kinds == {"ann": Kind.UPDATE, "bob": Kind.DISABLE, "cy": Kind.REMOVE}
    by_key = {c.key: c for c in plan.changes}
    assert by_key["ann"].record().clear_pin  # the PIN attribute was emptied
    removed = by_key["cy"].record()
    # A user gone from the directory keeps its profile in the cloud; only disabled changes.
    assert (removed.email, removed.full_name, removed.disabled) == ("cy@x", "Cy", True)
    lines = list(describe(plan))
    assert lines == [
        '~ ann department: "Sales" -> "Marketing"; pin: set -> none',
        "- bob disabled: false -> true",
        "- cy gone from the directory: disable",
    ]
    assert plan.request_id(state) == plan.request_id(state)
    other = make_plan(state, directory(moved, off, DirectoryUser("dan")), full=False)
    assert other.request_id(state) != plan.request_id(state)


def test_a_bad_pin_keeps_the_pin_the_cloud_has(tmp_path: Path) -> None:
    state = State.load(tmp_path / "s.json")
    apply(state, directory(DirectoryUser("ann", pin="1234")))
    # The PIN attribute now holds something that is not a PIN: mapped as None.
    plan = make_plan(state, directory(DirectoryUser("ann", pin=None)), full=False)
    assert plan.changes == []


def test_state_round_trip_private_and_locked(tmp_path: Path) -> None:
    path = tmp_path / "st" / "state.json"
    state = State.load(path)
    apply(state, directory(DirectoryUser("ann", "a@x", pin="1234", cards=("5",))))
    state.last_request_id = "r1"
    state.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "1234" not in path.read_text()
    again = State.load(path)
    assert again.users == state.users and again.key == state.key and again.last_request_id == "r1"
    with (
        locked(path),
        pytest.raises(StateError, match="another printfabric-sync run"),
        locked(path),
    ):
        pass
    path.write_text("{")
    with pytest.raises(StateError, match="unreadable"):
        State.load(path)
