"""A real Active Directory for the tests: a Samba AD DC provisioned into a folder, on 127.0.0.1.

Samba's LDAP ports are fixed (389, 636, 3268, 3269), so one DC runs at a time on a machine: a
lock file makes a second test run wait for the first, and ports held by anything else fail the
test with the name of what holds them. Simple binds need TLS (LDAPS or StartTLS), as on Windows;
ldap3's NTLM bind (the Sicily variant) is not spoken by Samba, so NTLM is for a real Windows AD.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import psutil
import pytest
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from printfabric.tls import TlsFiles, ensure_dev_pki

from tests.support.processes import (
    ChildProcess,
    accepts,
    clean_env,
    peer_missing,
    require_peer,
    tail,
    wait_until,
)

__all__ = [
    "PACKAGES",
    "UAC_ACCOUNTDISABLE",
    "UAC_NORMAL_ACCOUNT",
    "AdUser",
    "SambaDC",
    "running_samba_dc",
]

# samba-ad-dc pulls in samba (the `samba` daemon, samba-tool), samba-dsdb-modules (the DC's
# database modules), samba-vfs-modules (provisioning sets sysvol ACLs through acl_xattr) and
# winbind (unused here); samba-ad-provision holds the schema `samba-tool domain provision` loads.
PACKAGES = "samba-ad-dc samba-ad-provision"
HOST = "127.0.0.1"
REALM = "TEST.LAN"
DOMAIN = "TEST"
BASE = "DC=test,DC=lan"
LDAP_PORT, LDAPS_PORT, GC_PORT, GC_SSL_PORT = 389, 636, 3268, 3269
PORTS = (LDAP_PORT, LDAPS_PORT, GC_PORT, GC_SSL_PORT)

UAC_ACCOUNTDISABLE = 0x2
UAC_NORMAL_ACCOUNT = 0x200
# A global security group, the kind `New-ADGroup` makes by default.
_GLOBAL_SECURITY_GROUP = -2147483646

_PROVISION_SECONDS = 120.0
_START_SECONDS = 60.0
_STOP_SECONDS = 10.0
# Another test run's DC may hold the ports for as long as its test module takes.
_LOCK_WAIT_SECONDS = 300.0
_LOCK_FILE = Path(tempfile.gettempdir()) / "printfabric-samba-dc.lock"

# AdUser field -> the Active Directory attribute it is stored in.
_ATTRIBUTES = {
    "login": "sAMAccountName",
    "mail": "mail",
    "display_name": "displayName",
    "department": "department",
    "pin": "employeeNumber",
    "card": "pager",
}
_USER_CLASSES = ["top", "person", "organizationalPerson", "user"]


@dataclass(frozen=True)
class AdUser:
    """A person in the directory; empty fields are left out of the entry."""

    login: str
    mail: str = ""
    display_name: str = ""
    department: str = ""
    pin: str = ""
    card: str = ""
    enabled: bool = True


def _strong_password() -> str:
    # AD's default policy wants three of: upper, lower, digit, symbol.
    return f"Pf{secrets.token_urlsafe(12)}-7x"


def _unicode_pwd(password: str) -> bytes:
    """AD's unicodePwd: the password in double quotes, UTF-16-LE; written over TLS only."""
    return f'"{password}"'.encode("utf-16-le")


class SambaDC:
    """A running Samba AD DC for the realm TEST.LAN (NetBIOS domain TEST).

    Directory changes go through one admin connection over LDAPS; users live in OU=Staff and
    groups in OU=Groups. Every user added gets user_password unless added without passwords.
    """

    ldap_url = f"ldap://{HOST}:{LDAP_PORT}"
    ldaps_url = f"ldaps://{HOST}:{LDAPS_PORT}"
    gc_url = f"ldap://{HOST}:{GC_PORT}"
    gc_ldaps_url = f"ldaps://{HOST}:{GC_SSL_PORT}"
    realm = REALM
    domain = DOMAIN
    base = BASE
    users_base = f"OU=Staff,{BASE}"
    groups_base = f"OU=Groups,{BASE}"
    # A simple bind takes a DN, a UPN (user@test.lan) or a down-level name (TEST\user).
    admin_bind = f"Administrator@{REALM.lower()}"
    admin_dn = f"CN=Administrator,CN=Users,{BASE}"
    reader_login = "svc-print"
    reader_dn = f"CN=svc-print,CN=Users,{BASE}"

    def __init__(self, data_dir: Path, tls: TlsFiles, process: ChildProcess) -> None:
        # The provisioned DC: etc/smb.conf, private/sam.ldb, its logs (log.*).
        self.data_dir = data_dir
        self.tls_files = tls
        self.process = process
        self.admin_password = _strong_password()
        self.reader_password = _strong_password()
        self.user_password = _strong_password()
        self._admin: ldap3.Connection | None = None

    @property
    def ca_file(self) -> Path:
        return self.tls_files.ca_cert

    @property
    def smb_conf(self) -> Path:
        return self.data_dir / "etc" / "smb.conf"

    def tls(self) -> ldap3.Tls:
        """Client TLS that verifies the DC's certificate against the test CA."""
        return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file))

    def connect(self, user: str, password: str, url: str | None = None) -> ldap3.Connection:
        """A connection bound with a simple bind: ldaps:// URLs use TLS from the start, ldap://
        ones StartTLS first. Failures raise ldap3 exceptions."""
        url = url or self.ldaps_url
        scheme, _, address = url.partition("://")
        port = int(address.rsplit(":", 1)[1])
        # get_info=NONE: the sync tool reads no schema, and it keeps StartTLS to one round trip.
        server = ldap3.Server(
            HOST,
            port=port,
            use_ssl=scheme == "ldaps",
            tls=self.tls(),
            get_info=ldap3.NONE,
            connect_timeout=5,
        )
        conn = ldap3.Connection(
            server, user=user, password=password, raise_exceptions=True, receive_timeout=30
        )
        conn.open()
        if scheme == "ldap":
            conn.start_tls()
        conn.bind()
        return conn

    @property
    def admin(self) -> ldap3.Connection:
        """The admin's connection (LDAPS), opened on first use."""
        if self._admin is None or self._admin.closed:
            self._admin = self.connect(self.admin_bind, self.admin_password)
        return self._admin

    def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(lx.LDAPException):
                self._admin.unbind()
            self._admin = None

    # -- users and groups ------------------------------------------------------------------

    def add_users(self, users: Iterable[AdUser], *, with_passwords: bool = True) -> None:
        """Adds users to OU=Staff as CN=<login>, enabled ones with userAccountControl 512.

        Each gets user_password (set in the same add, which AD allows over TLS); that costs
        Samba ~17 ms a user for the password hashes. with_passwords=False makes them ~4x faster
        to add, with no password at all (Samba, unlike Windows, lets such an account be enabled).
        """
        for user in users:
            attributes: dict[str, Any] = {
                _ATTRIBUTES[name]: value
                for name, value in vars(user).items()
                if name in _ATTRIBUTES and value
            }
            attributes["userPrincipalName"] = f"{user.login}@{REALM.lower()}"
            attributes["userAccountControl"] = UAC_NORMAL_ACCOUNT | (
                0 if user.enabled else UAC_ACCOUNTDISABLE
            )
            if with_passwords:
                attributes["unicodePwd"] = _unicode_pwd(self.user_password)
            self.admin.add(self._user_dn(user.login), _USER_CLASSES, attributes)

    def dn_of(self, login: str) -> str:
        """The DN of the account whose sAMAccountName is login (any container)."""
        self.admin.search(
            self.base,
            f"(sAMAccountName={escape_filter_chars(login)})",
            attributes=[],
        )
        found = [e["dn"] for e in self.admin.response or () if e.get("type") == "searchResEntry"]
        if len(found) != 1:
            raise KeyError(f"{len(found)} accounts have the login {login!r} in {self.base}")
        dn: str = found[0]
        return dn

    def modify(self, login: str, **attributes: str | Sequence[str] | None) -> None:
        """Replaces attributes of a user: AdUser field names (display_name, pin, card, ...) or
        any AD attribute name (telephoneNumber=...). None or "" removes the attribute."""
        changes: dict[str, Any] = {}
        for name, value in attributes.items():
            if name == "enabled":
                raise ValueError("use set_disabled() to enable or disable an account")
            values: list[str]
            if value is None or value == "":
                values = []
            elif isinstance(value, str):
                values = [value]
            else:
                values = list(value)
            changes[_ATTRIBUTES.get(name, name)] = [(ldap3.MODIFY_REPLACE, values)]
        self.admin.modify(self.dn_of(login), changes)

    def set_disabled(self, login: str, disabled: bool = True) -> None:
        """Sets or clears the ACCOUNTDISABLE bit (0x2) of userAccountControl."""
        dn = self.dn_of(login)
        self.admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userAccountControl"])
        value = self.admin.response[0]["attributes"]["userAccountControl"]
        uac = int(value[0] if isinstance(value, list) else value)
        uac = uac | UAC_ACCOUNTDISABLE if disabled else uac & ~UAC_ACCOUNTDISABLE
        self.admin.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(uac)])]})

    def delete(self, login: str) -> None:
        self.admin.delete(self.dn_of(login))

    def add_group(self, cn: str, logins: Iterable[str] = ()) -> str:
        """Adds a global security group to OU=Groups with these members; returns its DN."""
        dn = f"CN={escape_rdn(cn)},{self.groups_base}"
        attributes: dict[str, Any] = {"sAMAccountName": cn, "groupType": _GLOBAL_SECURITY_GROUP}
        members = [self.dn_of(login) for login in logins]
        if members:
            attributes["member"] = members
        self.admin.add(dn, ["top", "group"], attributes)
        return dn

    def _user_dn(self, login: str) -> str:
        return f"CN={escape_rdn(login)},{self.users_base}"

    # -- the daemon ------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        def answers() -> bool:
            if not accepts(LDAPS_PORT):
                return False
            try:
                self.connect(self.admin_bind, self.admin_password).unbind()
            except lx.LDAPException:
                return False
            return True

        wait_until(answers, _START_SECONDS, "Samba answering a bind on LDAPS", [self.process])

    def _leads_own_group(self) -> bool:
        # setsid makes the group after the fork, so for a moment samba is still in ours.
        try:
            return os.getpgid(self.process.pid) == self.process.pid
        except ProcessLookupError:
            return False

    def _populate(self) -> None:
        """The containers and the read-only service account the sync tool binds as."""
        for ou in (self.users_base, self.groups_base):
            self.admin.add(ou, ["top", "organizationalUnit"])
        self.admin.add(
            self.reader_dn,
            _USER_CLASSES,
            {
                "sAMAccountName": self.reader_login,
                "userPrincipalName": f"{self.reader_login}@{REALM.lower()}",
                "displayName": "PrintFabric directory sync",
                "userAccountControl": UAC_NORMAL_ACCOUNT,
                "unicodePwd": _unicode_pwd(self.reader_password),
            },
        )

    def _stop(self) -> None:
        self.close()
        if self.process.returncode is not None or self.process.running:
            # The group's id is samba's pid (setsid); it exists only once setsid has run.
            group = self.process.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            self.process.stop(_STOP_SECONDS)
            # Workers that outlive the root process (or a root process that died) keep the ports.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        wait_until(
            lambda: not any(accepts(port) for port in PORTS),
            _STOP_SECONDS,
            "Samba's LDAP ports closing",
        )


def _provision(
    samba_tool: str, target: Path, tls: TlsFiles, admin_password: str, log: Path
) -> None:
    """`samba-tool domain provision` of TEST.LAN into target, its output in log."""
    options = {
        "interfaces": HOST,
        "bind interfaces only": "yes",
        # LDAP is all the tests use: no SMB, RPC, KDC, DNS or winbindd to start.
        "server services": "ldap",
        "tls enabled": "yes",
        "tls certfile": str(tls.cert),
        "tls keyfile": str(tls.key),
        "tls cafile": str(tls.ca_cert),
        "log file": str(target / "log.%m"),
        # Everything in the target folder, so nothing is left in /run or /var/lib.
        "pid directory": str(target / "run"),
        "ncalrpc dir": str(target / "run" / "ncalrpc"),
        "winbindd socket directory": str(target / "run" / "winbindd"),
        "ntp signd socket directory": str(target / "run" / "ntp_signd"),
    }
    argv = [
        samba_tool,
        "domain",
        "provision",
        f"--targetdir={target}",
        f"--realm={REALM}",
        f"--domain={DOMAIN}",
        "--host-name=pfdc",
        f"--host-ip={HOST}",
        "--server-role=dc",
        "--dns-backend=NONE",
        "--use-rfc2307",
        f"--adminpass={admin_password}",
        *(f"--option={name}={value}" for name, value in options.items()),
    ]
    try:
        with log.open("wb") as out:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                timeout=_PROVISION_SECONDS,
                check=False,
            )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"samba-tool domain provision ran over {_PROVISION_SECONDS:.0f} s\n{tail(log)}"
        ) from exc
    if done.returncode != 0:
        raise AssertionError(
            f"samba-tool domain provision exited with {done.returncode}:\n{tail(log)}"
        )


@contextlib.contextmanager
def _exclusive_ports() -> Iterator[None]:
    """Holds the machine-wide lock on the DC's fixed ports, waiting for another test run."""
    with _LOCK_FILE.open("a") as lock:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"another test run has held the Samba DC ports for over "
                        f"{_LOCK_WAIT_SECONDS:.0f} s (lock {_LOCK_FILE})",
                        pytrace=False,
                    )
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _holders(ports: Sequence[int]) -> list[str]:
    """What listens on these ports, as "port N on IP: pid P (command line)"."""
    found: list[str] = []
    try:
        sockets = psutil.net_connections(kind="tcp")
    except psutil.Error:
        sockets = []
    for sock in sockets:
        if sock.status != psutil.CONN_LISTEN or not sock.laddr or sock.laddr.port not in ports:
            continue
        who = "a process this user cannot see"
        if sock.pid is not None:
            try:
                who = f"pid {sock.pid} ({' '.join(psutil.Process(sock.pid).cmdline())})"
            except psutil.Error:
                who = f"pid {sock.pid}"
        found.append(f"port {sock.laddr.port} on {sock.laddr.ip}: {who}")
    return sorted(set(found))


def _require_free_ports() -> None:
    busy = [port for port in PORTS if accepts(port)]
    if not busy:
        return
    holders = _holders(busy) or [f"port {port}: unknown" for port in busy]
    pytest.fail(
        "the Samba AD DC needs the LDAP ports "
        + ", ".join(map(str, PORTS))
        + f" on {HOST}, but something else listens there:\n  "
        + "\n  ".join(holders)
        + "\nstop that server (a system slapd: `systemctl stop slapd`) and run the tests again",
        pytrace=False,
    )


@contextlib.contextmanager
def running_samba_dc(workdir: Path) -> Iterator[SambaDC]:
    """Provisions a DC into workdir/dc, starts it, yields it once it answers binds on LDAPS,
    and stops its whole process group at exit.

    workdir also gets the TLS files (tls/), the provisioning log and samba's log (samba.log).
    Provisioning takes ~2.5 s and starting ~0.5 s. Without Samba installed the test fails
    under CI and is skipped elsewhere.
    """
    samba = require_peer("samba", PACKAGES)
    samba_tool = require_peer("samba-tool", PACKAGES)
    if os.geteuid() != 0:
        peer_missing(f"a Samba AD DC needs root: it listens on the LDAP ports {PORTS}")
    target = workdir / "dc"
    if target.exists():
        raise ValueError(f"{target} exists: a DC is provisioned into a new folder")
    workdir.mkdir(parents=True, exist_ok=True)
    tls = ensure_dev_pki(workdir / "tls", (HOST, "localhost"))
    # setsid: samba forks workers; a process group of its own lets _stop() end all of them
    # without touching the test run's group.
    argv = [
        "setsid",
        samba,
        "--interactive",
        "--debug-stdout",
        "--debuglevel=1",
        f"--configfile={target / 'etc' / 'smb.conf'}",
    ]
    dc = SambaDC(target, tls, ChildProcess("samba", argv, clean_env(), workdir / "samba.log"))
    _provision(samba_tool, target, tls, dc.admin_password, workdir / "provision.log")
    with _exclusive_ports():
        _require_free_ports()
        try:
            dc.process.start()
            wait_until(dc._leads_own_group, 5, "samba in a process group of its own", [dc.process])
            dc._wait_ready()
            dc._populate()
            yield dc
        finally:
            dc._stop()
