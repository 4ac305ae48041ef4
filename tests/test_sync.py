"""printfabric-sync against a real slapd, a real cloud and a real node (issue 8).

Done when: 20 000 users from slapd into the cloud; then 100 changed, 10 disabled and 10 removed:
the cloud and a connected node's replica agree with the directory. Around it: the OpenLDAP
mapping over StartTLS with a group, --dry-run, and each kind of bad input.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from printfabric.v1 import auth_pb2, auth_pb2_grpc

from tests.support.ldap_peers import LdapUser, Slapd, make_users, running_slapd
from tests.support.processes import (
    ROOT,
    ChildProcess,
    CloudProcess,
    NodeProcess,
    TcpProxy,
    clean_env,
    cli,
    cli_json,
    command_argv,
    free_port,
    print_logs,
    read_only_sqlite,
    tail,
    wait_until,
)
from tests.support.samba import AdUser, SambaDC, running_samba_dc

USERS = 20_000
TENANTS = ("BIG", "SMALL", "BAD", "AD", "SAMBA")
NODE_SERIAL = "NODE-SYNC-1"
SYNC_SECONDS = 300.0


@dataclass(frozen=True)
class Agent:
    company: str
    token: str


@dataclass
class Site:
    home: Path
    cloud: CloudProcess
    node: NodeProcess
    agents: dict[str, Agent]

    def tenant_id(self, company: str) -> str:
        with read_only_sqlite(self.cloud_db) as db:
            return str(
                db.execute("SELECT id FROM tenants WHERE company_code = ?", (company,)).fetchone()[
                    0
                ]
            )

    @property
    def cloud_db(self) -> Path:
        return self.home / "cloud" / "cloud.db"

    def cloud_users(self, company: str) -> dict[str, tuple[Any, ...]]:
        with read_only_sqlite(self.cloud_db) as db:
            rows = db.execute(
                "SELECT login, email, full_name, department, disabled, pin_hash IS NOT NULL"
                " FROM users WHERE tenant_id = ?",
                (self.tenant_id(company),),
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3], bool(r[4]), bool(r[5])) for r in rows}

    def cloud_revision(self, company: str) -> int:
        with read_only_sqlite(self.cloud_db) as db:
            row = db.execute(
                "SELECT directory_revision FROM tenants WHERE company_code = ?", (company,)
            ).fetchone()
        return int(row[0])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("sync-cloud")
    env = clean_env(PF_HOME=str(home))
    agents = {}
    for company in TENANTS:
        cli("printfabric-cloud", "tenant", "create", company, "--name", company, env=env)
        made = cli_json(
            "printfabric-cloud", "--json", "device", "create", "--tenant", company,
            f"{company}-SYNC", "--sync-agent", env=env,
        )  # fmt: skip
        agents[company] = Agent(company, made["access_token"])
    node_made = cli_json(
        "printfabric-cloud", "--json", "node", "create", "--tenant", "BIG", NODE_SERIAL, env=env
    )
    cloud = CloudProcess("cloud", home, free_port(), home / "cloud.log")
    cloud.start_ready()
    node = NodeProcess(
        "node",
        home / "node",
        home / "node.log",
        PF_CLOUD_TARGET=cloud.target,
        PF_CLOUD_CA=str(cloud.ca),
        PF_COMPANY_CODE="BIG",
        PF_NODE_SERIAL=NODE_SERIAL,
        PF_NODE_TOKEN=node_made["access_token"],
        PF_NODE_HEARTBEAT="1s",
        PF_NODE_BACKOFF_INITIAL="100ms",
        PF_NODE_BACKOFF_MAX="1s",
    )
    node.start()
    try:
        yield Site(home, cloud, node, agents)
    except BaseException:
        print_logs(cloud, node)
        raise
    finally:
        node.stop()
        cloud.stop()


def write_config(
    path: Path,
    site: Site,
    agent: Agent,
    source: str,
    *,
    target: str = "",
    state: str = "state.json",
    interval: str = "1h",
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[cloud]
target = "{target or site.cloud.target}"
ca_file = "{site.cloud.ca}"
company_code = "{agent.company}"
serial_number = "{agent.company}-SYNC"
token_env = "PF_SYNC_TOKEN"

[sync]
state_file = "{state}"
interval = "{interval}"

[[source]]
{source}
"""
    )
    return path


def ad_source(slapd: Slapd, *, url: str = "", password_env: str = "PF_LDAP_PASSWORD") -> str:
    return f"""
name = "corp"
url = "{url or slapd.ldaps_url}"
ca_file = "{slapd.ca_file}"
base = "{slapd.people_dn}"
filter = "(objectClass=inetOrgPerson)"
bind_dn = "{slapd.reader_dn}"
password_env = "{password_env}"
[source.mapping]
pin = "employeeNumber"
card = "pager"
"""


def run_sync(
    config: Path, slapd: Slapd | SambaDC, agent: Agent, *args: str, token: str = ""
) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        PF_SYNC_TOKEN=token or agent.token,
        PF_LDAP_PASSWORD=slapd.reader_password,
        PF_WRONG_PASSWORD="not-the-password",
    )
    return subprocess.run(
        [*command_argv("printfabric-sync"), "-c", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=SYNC_SECONDS,
        check=False,
    )


def summary(done: subprocess.CompletedProcess[str], code: int = 0) -> dict[str, Any]:
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def expected(users: list[LdapUser]) -> dict[str, tuple[Any, ...]]:
    return {u.login: (u.mail, u.display_name, u.department, u.disabled, True) for u in users}


def node_users(node: NodeProcess) -> dict[str, tuple[Any, ...]]:
    rows = node.query(
        "SELECT login, email, full_name, department, disabled, pin_hash != '' FROM replica_users"
    )
    return {r[0]: (r[1], r[2], r[3], bool(r[4]), bool(r[5])) for r in rows}


def node_revision(node: NodeProcess) -> int:
    rows = node.query("SELECT revision FROM replica_meta")
    return int(rows[0][0]) if rows else -1


def wait_for_node(site: Site, company: str) -> None:
    want = site.cloud_revision(company)
    wait_until(
        lambda: node_revision(site.node) >= want,
        120.0,
        f"the node's replica at revision {want}",
        [site.cloud, site.node],
    )


def pin_login(site: Site, company: str, pin: str) -> str:
    with grpc.secure_channel(
        site.cloud.target, grpc.ssl_channel_credentials(site.cloud.ca.read_bytes())
    ) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        reply = stub.AuthenticateUser(
            auth_pb2.AuthenticateUserRequest(
                company_code=company, credential=auth_pb2.UserCredential(pin=pin)
            ),
            timeout=30,
        )
    return str(reply.user.login)


def test_20000_users_then_100_changed_10_disabled_10_removed_cloud_and_node_agree(
    site: Site, tmp_path: Path
) -> None:
    users = make_users(USERS)
    with running_slapd(tmp_path / "slapd", users) as slapd:
        config = write_config(tmp_path / "sync.toml", site, site.agents["BIG"], ad_source(slapd))
        first = summary(run_sync(config, slapd, site.agents["BIG"], "--once", "--json"))
        assert (first["entries"], first["users"], first["created"]) == (USERS, USERS, USERS)
        assert first["full"] and first["problems"] == []
        assert site.cloud_users("BIG") == expected(users)
        wait_for_node(site, "BIG")
        assert node_users(site.node) == expected(users)
        assert pin_login(site, "BIG", users[123].pin) == users[123].login

        nothing = summary(run_sync(config, slapd, site.agents["BIG"], "--once", "--json"))
        assert nothing["pushed"] == 0 and not nothing["full"]
        revision = site.cloud_revision("BIG")

        now = {u.login: u for u in users}
        for u in users[:100]:
            moved = replace(u, department="Moved", mail=f"new.{u.mail}")
            slapd.modify(u.login, department="Moved", departmentNumber="Moved", mail=moved.mail)
            now[u.login] = moved
        for u in users[100:110]:
            slapd.set_disabled(u.login, True)
            now[u.login] = replace(u, disabled=True)
        for u in users[110:120]:
            slapd.delete(u.login)
            # Removed from the directory: disabled in the cloud with its profile kept.
            now[u.login] = replace(u, disabled=True)

        dry = run_sync(config, slapd, site.agents["BIG"], "--dry-run")
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        assert sum(1 for line in lines if line.startswith("~ ")) == 100
        assert sum(1 for line in lines if line.startswith("- ")) == 20
        assert f"- {users[115].login} gone from the directory: disable" in lines
        assert site.cloud_revision("BIG") == revision  # a dry run pushes nothing

        second = summary(run_sync(config, slapd, site.agents["BIG"], "--once", "--json"))
        assert (second["updated"], second["disabled"], second["removed"]) == (100, 10, 10)
        assert second["pushed"] == 120 and second["created"] == 0
        want = expected(list(now.values()))
        assert site.cloud_users("BIG") == want
        wait_for_node(site, "BIG")
        assert node_users(site.node) == want
        # Only the 120 users moved forward.
        assert site.cloud_revision("BIG") > revision
        with read_only_sqlite(site.cloud_db) as db:
            moved_on = db.execute(
                "SELECT count(*) FROM users WHERE tenant_id = ? AND revision > ?",
                (site.tenant_id("BIG"), revision),
            ).fetchone()[0]
        assert moved_on == 120


def test_openldap_mapping_over_starttls_limited_to_a_group(site: Site, tmp_path: Path) -> None:
    users = make_users(100, seed=7)
    printing = [u.login for u in users[:50]]
    with running_slapd(tmp_path / "slapd", users, groups={"printing": printing}) as slapd:
        source = f"""
name = "ldap"
preset = "openldap"
url = "{slapd.ldap_url}"
start_tls = true
ca_file = "{slapd.ca_file}"
base = "{slapd.people_dn}"
bind_dn = "{slapd.reader_dn}"
password_env = "PF_LDAP_PASSWORD"
groups = ["{slapd.group_dn("printing")}"]
"""
        agent = site.agents["SMALL"]
        config = write_config(tmp_path / "sync.toml", site, agent, source)
        dry = run_sync(config, slapd, agent, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert sum(1 for line in dry.stdout.splitlines() if line.startswith("+ ")) == 50
        assert not (tmp_path / "state.json").exists()
        assert site.cloud_users("SMALL") == {}

        first = summary(run_sync(config, slapd, agent, "--once", "--json"))
        assert first["created"] == 50 and first["entries"] == 100
        got = site.cloud_users("SMALL")
        # uid, mail, cn, departmentNumber; no PIN mapped.
        assert got == {
            u.login: (u.mail, u.display_name, u.department, False, False) for u in users[:50]
        }

        slapd.set_members("printing", printing[5:])
        second = summary(run_sync(config, slapd, agent, "--once", "--json"))
        assert (second["removed"], second["pushed"]) == (5, 5)
        got = site.cloud_users("SMALL")
        assert [login for login, row in sorted(got.items()) if row[3]] == sorted(printing[:5])

        # On a schedule: every run pushes what changed since the one before; SIGTERM ends it.
        scheduled = write_config(tmp_path / "sync.toml", site, agent, source, interval="500ms")
        env = clean_env(PF_SYNC_TOKEN=agent.token, PF_LDAP_PASSWORD=slapd.reader_password)
        log = tmp_path / "scheduled.log"
        tool = ChildProcess(
            "sync", [*command_argv("printfabric-sync"), "-c", str(scheduled)], env, log
        )
        tool.start()
        try:
            wait_until(lambda: "pushed 0:" in tail(log), 60.0, "a scheduled run", [tool])
            slapd.modify(printing[10], departmentNumber="Scheduled")
            wait_until(lambda: "pushed 1:" in tail(log), 60.0, "the change pushed", [tool])
        finally:
            assert tool.stop() == 0
        assert site.cloud_users("SMALL")[printing[10]][2] == "Scheduled"


def test_a_progress_bar_on_a_terminal_only(site: Site, tmp_path: Path) -> None:
    users = make_users(2000, seed=9)
    with running_slapd(tmp_path / "slapd", users) as slapd:
        agent = site.agents["SMALL"]
        config = write_config(tmp_path / "sync.toml", site, agent, ad_source(slapd))
        argv = [*command_argv("printfabric-sync"), "-c", str(config), "--dry-run"]
        env = clean_env(PF_SYNC_TOKEN=agent.token, PF_LDAP_PASSWORD=slapd.reader_password)
        # script(1) gives the tool a terminal, as a person running it by hand has.
        on_tty = subprocess.run(
            ["script", "-qec", shlex.join(argv), "/dev/null"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert on_tty.returncode == 0, on_tty.stdout
        assert "Reading the directory" in on_tty.stdout
        piped = run_sync(config, slapd, agent, "--dry-run")
        assert "Reading the directory" not in piped.stdout + piped.stderr


def test_bad_input_each_gets_a_clear_message_and_nothing_half_applied(
    site: Site, tmp_path: Path
) -> None:
    agent = site.agents["BAD"]
    users = make_users(30, seed=11)
    with running_slapd(tmp_path / "slapd", users) as slapd:
        config = write_config(tmp_path / "sync.toml", site, agent, ad_source(slapd))

        wrong = write_config(
            tmp_path / "wrong.toml", site, agent, ad_source(slapd, password_env="PF_WRONG_PASSWORD")
        )
        done = run_sync(wrong, slapd, agent, "--once")
        assert done.returncode == 1
        assert f"wrong bind DN or password for {slapd.reader_dn}" in done.stderr

        untrusted = write_config(
            tmp_path / "untrusted.toml",
            site,
            agent,
            ad_source(slapd).replace(f'ca_file = "{slapd.ca_file}"\n', ""),
        )
        done = run_sync(untrusted, slapd, agent, "--once")
        assert done.returncode == 1 and "TLS certificate is not trusted" in done.stderr

        plain = write_config(
            tmp_path / "plain.toml", site, agent, ad_source(slapd, url=slapd.ldap_url)
        )
        done = run_sync(plain, slapd, agent, "--once")
        assert done.returncode == 1 and "password in clear" in done.stderr

        done = run_sync(config, slapd, agent, "--once", token="not-the-token")
        assert done.returncode == 1 and "refused the sync agent BAD-SYNC" in done.stderr

        with running_slapd(tmp_path / "expired", users[:1], cert="expired") as expired:
            stale = write_config(
                tmp_path / "expired.toml",
                site,
                agent,
                ad_source(slapd, url=expired.ldaps_url).replace(
                    str(slapd.ca_file), str(expired.ca_file)
                ),
            )
            done = run_sync(stale, slapd, agent, "--once")
        assert done.returncode == 1 and "certificate has expired" in done.stderr

        slapd.stop()
        done = run_sync(config, slapd, agent, "--once")
        assert done.returncode == 1 and "cannot connect" in done.stderr
        slapd.start()
        assert site.cloud_users("BAD") == {}
        assert not (tmp_path / "state.json").exists()

        # One entry without a login, a login twice, a PIN that is not a PIN: the rest sync.
        slapd.modify(users[0].login, sAMAccountName=None)
        slapd.modify(users[1].login, sAMAccountName=users[2].login)
        slapd.modify(users[3].login, employeeNumber="12ab")
        done = run_sync(config, slapd, agent, "--once", "--json")
        result = summary(done, code=3)
        problems = "\n".join(result["problems"])
        assert f"{slapd.dn_of(users[0].login)}: no sAMAccountName" in problems
        assert f"the login {users[2].login} is already used by" in problems
        assert f"{users[3].login}: employeeNumber is not a PIN" in problems
        assert result["created"] == 28
        got = site.cloud_users("BAD")
        assert users[0].login not in got and users[1].login not in got
        assert got[users[3].login][4] is False  # created without a PIN
        assert got[users[4].login] == expected([users[4]])[users[4].login]

        # A filter that suddenly matches nobody would disable everyone: held back.
        empty = write_config(
            tmp_path / "sync.toml",
            site,
            agent,
            ad_source(slapd).replace("(objectClass=inetOrgPerson)", "(uid=nobody)"),
        )
        done = run_sync(empty, slapd, agent, "--once")
        assert done.returncode == 1 and "the directory gave no users to sync" in done.stderr
        few = write_config(
            tmp_path / "sync.toml",
            site,
            agent,
            ad_source(slapd).replace("(objectClass=inetOrgPerson)", f"(uid={users[4].login})"),
        )
        done = run_sync(few, slapd, agent, "--once")
        assert done.returncode == 1 and "would disable 27 of 28 synced users" in done.stderr
        assert not any(row[3] for row in site.cloud_users("BAD").values())


def test_a_push_cut_in_the_middle_is_resent_and_applied_once(site: Site, tmp_path: Path) -> None:
    agent = site.agents["AD"]
    users = make_users(3000, seed=5)
    with (
        running_slapd(tmp_path / "slapd", users) as slapd,
        TcpProxy(site.cloud.port) as proxy,
    ):
        proxy.cut_request_after(200_000)
        config = write_config(
            tmp_path / "sync.toml",
            site,
            agent,
            ad_source(slapd),
            target=f"127.0.0.1:{proxy.port}",
        )
        result = summary(run_sync(config, slapd, agent, "--once", "--json"))
        assert proxy.faults_fired >= 1
        assert result["created"] == 3000
        assert site.cloud_users("AD") == expected(users)


def test_active_directory_on_a_samba_dc(site: Site, tmp_path: Path) -> None:
    """The AD preset against a real Active Directory: LDAPS, userAccountControl, a group."""
    staff = [
        AdUser(
            f"ad{i:03d}",
            mail=f"ad{i:03d}@test.lan",
            display_name=f"Ad User {i}",
            department="Sales" if i % 2 else "IT",
            pin=f"{500000 + i}",
            card=f"0x{0xA1000 + i:X}",
            enabled=i < 190,
        )
        for i in range(200)
    ]
    with running_samba_dc(tmp_path / "samba") as dc:
        dc.add_users(staff, with_passwords=False)
        group = dc.add_group("Printing", [u.login for u in staff[:150]] + ["ad195"])
        agent = site.agents["SAMBA"]
        source = f"""
name = "test.lan"
url = "{dc.ldaps_url}"
ca_file = "{dc.ca_file}"
base = "{dc.users_base}"
bind_dn = "{dc.reader_dn}"
password_env = "PF_LDAP_PASSWORD"
groups = ["{group}"]
[source.mapping]
pin = "employeeNumber"
card = "pager"
"""
        config = write_config(tmp_path / "sync.toml", site, agent, source)
        first = summary(run_sync(config, dc, agent, "--once", "--json"))
        # 150 group members; ad195 is in the group but disabled and never synced: not created.
        assert (first["entries"], first["created"], first["problems"]) == (200, 150, [])
        got = site.cloud_users("SAMBA")
        assert got["ad007"] == ("ad007@test.lan", "Ad User 7", "Sales", False, True)
        assert pin_login(site, "SAMBA", "500042") == "ad042"

        dc.set_disabled("ad000", True)
        dc.delete("ad001")
        dc.modify("ad002", department="Finance")
        dc.set_disabled("ad195", False)
        second = summary(run_sync(config, dc, agent, "--once", "--json"))
        counts = (second["created"], second["updated"], second["disabled"], second["removed"])
        assert counts == (1, 1, 1, 1)
        got = site.cloud_users("SAMBA")
        assert got["ad000"][3] and got["ad001"][3] and not got["ad195"][3]
        assert got["ad002"][2] == "Finance" and sum(row[3] for row in got.values()) == 2
