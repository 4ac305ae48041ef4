"""A real OpenLDAP slapd for the tests, loaded with users that carry both AD and OpenLDAP attributes.

`running_slapd(workdir, make_users(20_000), groups=...)` writes a slapd.conf, bulk-loads the
users with `slapadd -q` and serves them on ldap:// and ldaps:// (127.0.0.1, free ports) until the
block ends; `Slapd` changes entries as the directory's admin and stops/starts the server.

Every user entry is an inetOrgPerson plus the auxiliary class `adUser` (sAMAccountName,
userAccountControl, department under their Active Directory OIDs), so one slapd serves both
attribute mappings:

    AD:        sAMAccountName  mail  displayName  department        userAccountControl (512/514)
    OpenLDAP:  uid             mail  cn           departmentNumber  -
    both:      employeeNumber = PIN, pager = card number

Findings the fixture relies on (OpenLDAP 2.5.13, Debian 12):
- Installing the slapd package configures a system slapd (ldap:/// ldapi:///) and its postinst
  starts it unless policy-rc.d forbids it or /etc/ldap/noslapd exists; the Makefile creates that
  file first so port 389 stays free for the Samba AD DC tests. Nothing here uses port 389.
- userAccountControl has INTEGER syntax, so AD's bitwise filter works on slapd as on AD:
  `(!(userAccountControl:1.2.840.113556.1.4.803:=2))` finds the enabled users.
- Like AD (MaxPageSize 1000), a search returns at most 1000 entries per page and a search
  without the paged-results control stops at 1000 with sizeLimitExceeded; paging reads them all.
- The reader account sees every entry but no userPassword; anonymous searches see nothing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import random
import re
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ldap3.core.exceptions import LDAPException
from printfabric.tls import ensure_dev_pki

from tests.support.processes import (
    ChildProcess,
    clean_env,
    free_port,
    require_peer,
    tail,
    wait_until,
)

__all__ = [
    "DEFAULT_BASE",
    "DEPARTMENTS",
    "DISABLED",
    "ENABLED",
    "PAGE_LIMIT",
    "LdapUser",
    "Slapd",
    "make_users",
    "running_slapd",
]

DEFAULT_BASE = "dc=example,dc=test"
DEPARTMENTS = ("Engineering", "Finance", "Human Resources", "Legal", "Marketing", "Sales")
# userAccountControl: NORMAL_ACCOUNT (0x200), plus ACCOUNTDISABLE (0x2) when disabled.
ENABLED = 512
DISABLED = 514
PAGE_LIMIT = 1000
HOST = "127.0.0.1"
START_SECONDS = 20.0
_START_ATTEMPTS = 3
_MODULE_DIR = "/usr/lib/ldap"
_SCHEMA_DIR = "/etc/ldap/schema"
_FIRST_NAMES = (
    "Ada", "Alan", "Barbara", "Chidi", "Dana", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
    "Jean", "Katherine", "Linus", "Margaret", "Niklaus", "Olga", "Radia", "Søren", "Zoë", "Émile",
)  # fmt: skip
_LAST_NAMES = (
    "Allen", "Backus", "Conway", "Dijkstra", "Engelbart", "Floyd", "Hamilton", "Hopper",
    "Johnson", "Kernighan", "Lamarr", "Liskov", "Lovelace", "Müller", "Perlman", "Ritchie",
    "Sutherland", "Thompson", "Wirth", "Ørsted",
)  # fmt: skip

# The AD attributes under their Active Directory OIDs; the class OID is in OpenLDAP's
# experimental arc (1.3.6.1.4.1.4203.666), which exists for exactly this kind of local test.
AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.100.1 NAME 'adUser'
  DESC 'the Active Directory user attributes PrintFabric maps'
  SUP top AUXILIARY MAY ( sAMAccountName $ userAccountControl $ department ) )
"""

USER_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson", "adUser")


@dataclass(frozen=True)
class LdapUser:
    """One person in the directory; its entry is uid=<login>,ou=people,<base>."""

    login: str
    mail: str
    display_name: str
    department: str
    pin: str
    card: str
    disabled: bool = False
    base: str = DEFAULT_BASE

    @property
    def dn(self) -> str:
        return user_dn(self.login, self.base)

    @property
    def surname(self) -> str:
        return self.display_name.rsplit(" ", 1)[-1]

    def attributes(self) -> dict[str, str]:
        """The entry's attributes (without objectClass), both mappings at once."""
        return {
            "uid": self.login,
            "cn": self.display_name,
            "sn": self.surname,
            "displayName": self.display_name,
            "mail": self.mail,
            "departmentNumber": self.department,
            "department": self.department,
            "employeeNumber": self.pin,
            "pager": self.card,
            "sAMAccountName": self.login,
            "userAccountControl": str(DISABLED if self.disabled else ENABLED),
        }


def user_dn(login: str, base: str) -> str:
    return f"uid={login},ou=people,{base}"


def make_users(n: int, *, seed: int = 0, base: str = DEFAULT_BASE) -> list[LdapUser]:
    """n users user00001..: the same list for the same seed, PINs and cards unique.

    PINs are 6 digits (some start with 0); cards are 10 hex digits starting "04" with at least
    one letter A-F, so every reader format reads them as the same hex number.
    """
    if not 0 <= n <= 500_000:
        raise ValueError("make_users makes 0 to 500 000 users")
    rng = random.Random(seed)
    pins = rng.sample(range(1_000_000), n)
    cards: list[str] = []
    seen: set[int] = set()
    while len(cards) < n:
        value = rng.getrandbits(32)
        card = f"04{value:08X}"
        if value not in seen and not card.isdigit():
            seen.add(value)
            cards.append(card)
    users = []
    for i in range(n):
        login = f"user{i + 1:05d}"
        users.append(
            LdapUser(
                login=login,
                mail=f"{login}@{_mail_domain(base)}",
                display_name=f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}",
                department=DEPARTMENTS[rng.randrange(len(DEPARTMENTS))],
                pin=f"{pins[i]:06d}",
                card=cards[i],
                base=base,
            )
        )
    return users


def _mail_domain(base: str) -> str:
    parts = [rdn.split("=", 1)[1] for rdn in base.split(",") if rdn.lower().startswith("dc=")]
    return ".".join(parts) or "example.test"


class Slapd:
    """A private slapd over workdir (config, database, certificates and slapd.log stay there).

    Changes go through ldap3 as the rootdn; the reader account (reader_dn/reader_password) is
    the read-only service account a directory sync would be configured with.
    """

    def __init__(self, workdir: Path, base: str, program: str) -> None:
        self.workdir = workdir
        self.base = base
        self.people_dn = f"ou=people,{base}"
        self.groups_dn = f"ou=groups,{base}"
        self.admin_dn = f"cn=admin,{base}"
        self.admin_password = secrets.token_urlsafe(12)
        self.reader_dn = f"cn=reader,{base}"
        self.reader_password = secrets.token_urlsafe(12)
        self.ca_file = workdir / "tls" / "ca.pem"
        self.conf = workdir / "slapd.conf"
        self.log = workdir / "slapd.log"
        self.load_seconds = 0.0
        self.start_seconds = 0.0
        self._program = program
        self._ports = (0, 0)
        self.process: ChildProcess | None = None

    @property
    def ldap_url(self) -> str:
        return f"ldap://{HOST}:{self._ports[0]}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{HOST}:{self._ports[1]}"

    def dn_of(self, login: str) -> str:
        return user_dn(login, self.base)

    def group_dn(self, name: str) -> str:
        return f"cn={name},{self.groups_dn}"

    # -- the process ---------------------------------------------------------------------------

    def start(self) -> None:
        """Starts slapd (on the ports it had before, if it ran) and waits until it answers."""
        if self.running:
            raise RuntimeError("slapd is already running")
        began = time.monotonic()
        fresh_ports = self._ports == (0, 0)
        for attempt in range(1, _START_ATTEMPTS + 1):
            if fresh_ports:
                self._ports = (free_port(), free_port())
            urls = f"{self.ldap_url}/ {self.ldaps_url}/"
            # "-d 0" keeps slapd in the foreground but silences even fatal errors; "none" logs those.
            argv = [self._program, "-f", str(self.conf), "-h", urls, "-d", "none"]
            self.process = ChildProcess("slapd", argv, clean_env(), self.log)
            self.process.start()
            try:
                wait_until(
                    self._answers, START_SECONDS, f"slapd answering on {urls}", [self.process]
                )
                break
            except AssertionError:
                self.process.stop()
                # Another process may take a free port before slapd binds it: new ports, again.
                if (
                    not fresh_ports
                    or attempt == _START_ATTEMPTS
                    or "errno=98" not in tail(self.log)
                ):
                    raise
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def _answers(self) -> bool:
        conn = ldap3.Connection(
            ldap3.Server(self.ldap_url, get_info=ldap3.NONE, connect_timeout=1),
            receive_timeout=2,
        )
        try:
            answered = bool(conn.bind())
        except LDAPException:
            return False
        finally:
            # Also after a failed bind: its socket would otherwise stay open until collected.
            with contextlib.suppress(LDAPException):
                conn.unbind()
        # slapd binds all its listeners before it serves any, so ldaps:// is up too (a bare
        # TCP probe of it would only log "TLS: can't accept").
        return answered

    # -- changes as the admin ------------------------------------------------------------------

    @contextlib.contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        """An ldap3 connection bound as the rootdn that raises on any failed operation."""
        server = ldap3.Server(self.ldap_url, get_info=ldap3.NONE, connect_timeout=5)
        conn = ldap3.Connection(
            server,
            self.admin_dn,
            self.admin_password,
            auto_bind=ldap3.AUTO_BIND_NO_TLS,
            raise_exceptions=True,
            receive_timeout=30,
        )
        try:
            yield conn
        finally:
            conn.unbind()

    def modify(self, login: str, **attrs: str | int | Sequence[str] | None) -> None:
        """Sets attributes of a user's entry by LDAP name; None removes the attribute."""
        changes = {name: [(ldap3.MODIFY_REPLACE, _values(value))] for name, value in attrs.items()}
        with self.admin() as conn:
            conn.modify(self.dn_of(login), changes)

    def set_disabled(self, login: str, disabled: bool) -> None:
        self.modify(login, userAccountControl=DISABLED if disabled else ENABLED)

    def delete(self, login: str) -> None:
        with self.admin() as conn:
            conn.delete(self.dn_of(login))

    def add(self, user: LdapUser) -> None:
        self._check_base(user)
        with self.admin() as conn:
            conn.add(user.dn, list(USER_CLASSES), user.attributes())

    def set_members(self, group: str, logins: Sequence[str]) -> None:
        """Replaces a group's members (a groupOfNames keeps at least one)."""
        if not logins:
            raise ValueError("a groupOfNames needs at least one member")
        with self.admin() as conn:
            members = [self.dn_of(login) for login in logins]
            conn.modify(self.group_dn(group), {"member": [(ldap3.MODIFY_REPLACE, members)]})

    def _check_base(self, user: LdapUser) -> None:
        if user.base != self.base:
            raise ValueError(
                f"{user.login} was made for {user.base}, this server serves {self.base}"
            )

    # -- the files -----------------------------------------------------------------------------

    def write_config(self, cert: Literal["valid", "expired"], slappasswd: str) -> None:
        tls_dir = self.workdir / "tls"
        pki = ensure_dev_pki(tls_dir, hostnames=(HOST,))
        cert_file, key_file = pki.cert, pki.key
        if cert == "expired":
            cert_file, key_file = _write_expired_certificate(tls_dir)
        data = self.workdir / "data"
        data.mkdir()
        self.workdir.joinpath("ad.schema").write_text(AD_SCHEMA)
        schemas = [f"{_SCHEMA_DIR}/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")]
        schemas.append(str(self.workdir / "ad.schema"))
        rootpw = _hashed(slappasswd, self.admin_password)
        lines = [
            *(f"include {path}" for path in schemas),
            f"pidfile {self.workdir / 'slapd.pid'}",
            f"argsfile {self.workdir / 'slapd.args'}",
            f"modulepath {_MODULE_DIR}",
            "moduleload back_mdb",
            f"TLSCACertificateFile {self.ca_file}",
            f"TLSCertificateFile {cert_file}",
            f"TLSCertificateKeyFile {key_file}",
            "TLSProtocolMin 3.3",
            # AD's MaxPageSize: pages of at most 1000, and no more than 1000 without paging.
            f"sizelimit size.soft={PAGE_LIMIT} size.hard={PAGE_LIMIT} size.pr={PAGE_LIMIT} "
            "size.prtotal=unlimited",
            'access to dn.base="" by * read',
            'access to dn.base="cn=Subschema" by * read',
            "database mdb",
            f'suffix "{self.base}"',
            f'rootdn "{self.admin_dn}"',
            f"rootpw {rootpw}",
            f"directory {data}",
            "maxsize 1073741824",
            "dbnosync",
            "index objectClass eq",
            "index uid,sAMAccountName,mail,member eq",
            "access to attrs=userPassword by anonymous auth by * none",
            f'access to * by dn.exact="{self.reader_dn}" read by * none',
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def load(
        self,
        slapadd: str,
        slappasswd: str,
        users: Sequence[LdapUser],
        groups: Mapping[str, Sequence[str]],
    ) -> None:
        """Bulk-loads the tree with slapadd (slapd must not run)."""
        for user in users:
            self._check_base(user)
        ldif = self.workdir / "users.ldif"
        with ldif.open("w", encoding="utf-8") as out:
            for entry in self._entries(slappasswd, users, groups):
                out.write(_ldif(*entry))
        began = time.monotonic()
        done = subprocess.run(
            [slapadd, "-q", "-f", str(self.conf), "-l", str(ldif)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.load_seconds = time.monotonic() - began
        if done.returncode != 0:
            raise AssertionError(f"slapadd exited with {done.returncode}:\n{done.stderr[-3000:]}")

    def _entries(
        self, slappasswd: str, users: Sequence[LdapUser], groups: Mapping[str, Sequence[str]]
    ) -> Iterator[tuple[str, Sequence[str], Mapping[str, str | Sequence[str]]]]:
        attr, value = self.base.split(",", 1)[0].split("=", 1)
        if attr.lower() != "dc":
            raise ValueError(f"the base must start with dc=, not {self.base!r}")
        yield self.base, ("top", "dcObject", "organization"), {"dc": value, "o": value}
        yield self.people_dn, ("top", "organizationalUnit"), {"ou": "people"}
        yield self.groups_dn, ("top", "organizationalUnit"), {"ou": "groups"}
        yield (
            self.reader_dn,
            ("top", "organizationalRole", "simpleSecurityObject"),
            {"cn": "reader", "userPassword": _hashed(slappasswd, self.reader_password)},
        )
        for user in users:
            yield user.dn, USER_CLASSES, user.attributes()
        known = {user.login for user in users}
        for name, logins in groups.items():
            if not logins:
                raise ValueError(f"group {name}: a groupOfNames needs at least one member")
            unknown = sorted(set(logins) - known)
            if unknown:
                raise ValueError(f"group {name}: no such users {unknown[:5]}")
            members = [self.dn_of(login) for login in logins]
            yield self.group_dn(name), ("top", "groupOfNames"), {"cn": name, "member": members}


@contextlib.contextmanager
def running_slapd(
    workdir: Path,
    users: Sequence[LdapUser],
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    cert: Literal["valid", "expired"] = "valid",
    base: str = DEFAULT_BASE,
) -> Iterator[Slapd]:
    """A slapd serving users (and groups: name -> logins) until the block ends.

    workdir must be new or empty of a database; nothing in it is deleted afterwards, so a
    failed test leaves slapd.conf, users.ldif and slapd.log to look at.
    """
    program = require_peer("slapd", "slapd")
    slapadd = require_peer("slapadd", "slapd")
    slappasswd = require_peer("slappasswd", "slapd")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "data").exists():
        raise ValueError(f"{workdir} already holds a slapd database: give a fresh workdir")
    slapd = Slapd(workdir, base, program)
    slapd.write_config(cert, slappasswd)
    slapd.load(slapadd, slappasswd, users, groups or {})
    try:
        slapd.start()
        yield slapd
    finally:
        slapd.stop()


def _values(value: str | int | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int):
        return [str(value)]
    return list(value)


def _hashed(slappasswd: str, secret: str) -> str:
    done = subprocess.run(
        [slappasswd, "-s", secret], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


_SAFE = re.compile(
    r"^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$"
)


def _ldif(dn: str, classes: Sequence[str], attrs: Mapping[str, str | Sequence[str]]) -> str:
    """One LDIF record (RFC 2849); values that are not SAFE-STRINGs go base64."""
    lines = [_ldif_line("dn", dn), *(f"objectClass: {c}" for c in classes)]
    for name, value in attrs.items():
        lines.extend(_ldif_line(name, v) for v in ([value] if isinstance(value, str) else value))
    return "\n".join(lines) + "\n\n"


def _ldif_line(name: str, value: str) -> str:
    if _SAFE.match(value) and not value.endswith(" "):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _write_expired_certificate(tls_dir: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 from the test CA whose notAfter has passed.

    printfabric.tls only issues certificates that are valid from now on, so this one is made here.
    """
    ca_cert = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((tls_dir / "ca-key.pem").read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the test CA key is expected to be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tls_dir / "expired.pem", tls_dir / "expired-key.pem"
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file
