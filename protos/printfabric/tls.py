"""Development PKI (a private CA plus server certificates, made on first run) and TLS contexts."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "TlsFiles",
    "client_ssl_context",
    "ensure_dev_pki",
    "issue_certificate",
    "server_ssl_context",
]

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
SERVER_CERT_NAME = "server.pem"
SERVER_KEY_NAME = "server-key.pem"

DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
CA_VALID_DAYS = 3650
# 825 days is the longest leaf lifetime Apple platforms accept for a TLS server certificate.
CERT_VALID_DAYS = 825
RENEW_BEFORE = datetime.timedelta(days=30)
# Back-dating covers clocks of other machines on the LAN that run a little behind.
_BACKDATE = datetime.timedelta(minutes=5)
_LOCK_NAME = ".pki.lock"

_SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_HostEntry: TypeAlias = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one TLS identity plus the CA that issued it.

    The CA's private key, when there is one, sits next to ca_cert as "<stem>-key.pem".
    """

    ca_cert: Path
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        """Returns (ca_cert, cert, key) as PEM bytes."""
        return self.ca_cert.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()


def ensure_dev_pki(folder: Path, hostnames: Sequence[str] = DEFAULT_HOSTNAMES) -> TlsFiles:
    """Returns the development CA and server certificate in folder, creating what is missing.

    An existing CA is kept as long as it is valid, so clients that already trust it keep working;
    the server certificate is reissued by that CA when it is missing, broken, not issued by it,
    expires within 30 days, or lacks one of hostnames. Safe against concurrent callers.
    """
    hosts = _normalize_hostnames(hostnames)
    if not hosts:
        raise ValueError("a server certificate needs at least one hostname")
    folder = Path(folder)
    _make_private_dir(folder)
    files = TlsFiles(
        ca_cert=folder / CA_CERT_NAME,
        cert=folder / SERVER_CERT_NAME,
        key=folder / SERVER_KEY_NAME,
    )
    ca_key_path = folder / CA_KEY_NAME
    with _locked(folder / _LOCK_NAME):
        now = _now()
        ca = _load_usable_ca(files.ca_cert, ca_key_path, now)
        if ca is None:
            ca = _create_ca(files.ca_cert, ca_key_path)
            server_ok = False
        else:
            server_ok = _server_cert_usable(files, ca[0], hosts, now)
        if not server_ok:
            # Keep names a previous caller asked for, so callers with different lists do not
            # make each other reissue the certificate on every start.
            wanted = {_canonical(h) for h in hosts}
            names = [*hosts, *(h for h in _san_strings(files.cert) if _canonical(h) not in wanted)]
            cert_pem, key_pem = _issue(ca[0], ca[1], names[0], names, client=False)
            _write_atomic(files.key, key_pem, 0o600)
            _write_atomic(files.cert, cert_pem, 0o644)
        for key_path in (ca_key_path, files.key):
            # Reused keys too: a key someone made readable to others is fixed, not trusted.
            if os.stat(key_path).st_mode & 0o077:
                os.chmod(key_path, 0o600)
    return files


def issue_certificate(
    ca: TlsFiles | tuple[Path, Path],
    common_name: str,
    hostnames: Sequence[str],
    client: bool = False,
    *,
    valid_days: int = CERT_VALID_DAYS,
) -> tuple[bytes, bytes]:
    """Issues a certificate from an existing CA; returns (cert PEM, key PEM).

    ca is either TlsFiles (the CA key is read from "<ca_cert stem>-key.pem" next to ca_cert) or
    (ca_cert path, ca_key path). client=True makes a clientAuth certificate, otherwise
    serverAuth. The key is returned, never written: storing it is up to the caller.
    """
    if isinstance(ca, TlsFiles):
        ca_cert_path, ca_key_path = ca.ca_cert, _key_path_for(ca.ca_cert)
    else:
        ca_cert_path, ca_key_path = ca
    if not common_name:
        raise ValueError("common_name must not be empty")
    hosts = _normalize_hostnames(hostnames)
    if not client and not hosts:
        raise ValueError("a server certificate needs at least one hostname")
    if valid_days < 1:
        raise ValueError("valid_days must be at least 1")
    ca_cert = x509.load_pem_x509_certificate(Path(ca_cert_path).read_bytes())
    ca_key = _load_signing_key(Path(ca_key_path).read_bytes())
    if not _is_ca(ca_cert):
        raise ValueError(f"{ca_cert_path} is not a CA certificate")
    if not _same_public_key(ca_cert, ca_key):
        raise ValueError(f"{ca_key_path} is not the key of {ca_cert_path}")
    return _issue(ca_cert, ca_key, common_name, hosts, client=client, valid_days=valid_days)


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or newer) presenting files.cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=files.cert, keyfile=files.key)
    return ctx


def client_ssl_context(ca_cert: Path) -> ssl.SSLContext:
    """A client-side context (TLS 1.2 or newer) that trusts only ca_cert and checks hostnames."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca_cert)
    return ctx


# -- internals ---------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_path_for(cert_path: Path) -> Path:
    return cert_path.with_name(f"{cert_path.stem}-key{cert_path.suffix}")


def _normalize_hostnames(hostnames: Sequence[str]) -> list[str]:
    if isinstance(hostnames, str):
        # A bare string is a Sequence[str] too; iterating it would yield single letters.
        raise TypeError("hostnames must be a sequence of names, not a string")
    out: list[str] = []
    seen: set[str] = set()
    for raw in hostnames:
        name = raw.strip()
        if not name:
            raise ValueError("empty hostname")
        if _canonical(name) not in seen:
            seen.add(_canonical(name))
            out.append(name)
    return out


def _host_entry(name: str) -> _HostEntry:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _entry_string(entry: x509.GeneralName) -> str | None:
    if isinstance(entry, x509.DNSName):
        return entry.value
    if isinstance(entry, x509.IPAddress):
        return str(entry.value)
    return None


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {s for s in (_entry_string(e) for e in ext.value) if s is not None}


def _san_strings(cert_path: Path) -> list[str]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return []
    return sorted(_sans(cert))


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _make_private_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not folder.is_dir():
            raise
        return
    # mkdir's mode is filtered by the umask; state it explicitly.
    os.chmod(folder, 0o700)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Writes data so that path is either its old content or the complete new one."""
    # mkstemp creates the file 0600, so a key is never readable by others, not even briefly.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _private_pem(key: _SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_signing_key(pem: bytes) -> _SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("a CA key must be an EC or RSA key")
    return key


def _same_public_key(cert: x509.Certificate, key: _SigningKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return bool(cert.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt))


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _signed_with_sha256(cert: x509.Certificate) -> bool:
    return isinstance(cert.signature_hash_algorithm, hashes.SHA256)


def _load_usable_ca(
    cert_path: Path, key_path: Path, now: datetime.datetime
) -> tuple[x509.Certificate, _SigningKey] | None:
    """The CA in cert_path/key_path if both exist, match, and stay valid long enough."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = _load_signing_key(key_path.read_bytes())
    except (OSError, ValueError, TypeError):
        return None
    usable = (
        _is_ca(cert)
        and _signed_with_sha256(cert)
        and _same_public_key(cert, key)
        and cert.not_valid_before_utc <= now
        and cert.not_valid_after_utc - now > RENEW_BEFORE
    )
    return (cert, key) if usable else None


def _server_cert_usable(
    files: TlsFiles, ca_cert: x509.Certificate, hosts: Sequence[str], now: datetime.datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = _load_signing_key(files.key.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    have = {_canonical(n) for n in _sans(cert)}
    return (
        _signed_with_sha256(cert)
        and _same_public_key(cert, key)
        and cert.not_valid_before_utc <= now
        and cert.not_valid_after_utc - now > RENEW_BEFORE
        and all(_canonical(h) in have for h in hosts)
    )


def _create_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, _SigningKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random suffix keeps the CAs of different machines apart in trust stores.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PrintFabric"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"PrintFabric Dev CA {secrets.token_hex(4)}"),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    # Key first: a crash before the certificate is written leaves a key/cert mismatch, which
    # the next run detects and repairs, never a certificate without its key.
    _write_atomic(key_path, _private_pem(key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: _SigningKey,
    common_name: str,
    hosts: Sequence[str],
    *,
    client: bool,
    valid_days: int = CERT_VALID_DAYS,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    # A certificate outliving its CA would fail verification anyway; cap it.
    not_after = min(now + datetime.timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PrintFabric"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_host_entry(h) for h in hosts]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _private_pem(key)
