"""Development PKI: certificate contents, key files, renewal, and real TLS handshakes."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from printfabric.tls import (
    TlsFiles,
    client_ssl_context,
    ensure_dev_pki,
    issue_certificate,
    server_ssl_context,
)

from tests.support.fabric import CloudHarness

HOSTS = ("localhost", "127.0.0.1", "::1")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ec_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_matches(cert_path: Path, key_path: Path) -> bool:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return _public_der(key.public_key()) == _public_der(_ec_public(_cert(cert_path)))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.pem"))}


def _days_left(cert: x509.Certificate) -> float:
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left / datetime.timedelta(days=1)


def _sha256_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    # Raises InvalidSignature unless issuer's key made this signature over these bytes.
    _ec_public(issuer).verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    cert.verify_directly_issued_by(issuer)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "pki"


@pytest.fixture
def pki(folder: Path) -> TlsFiles:
    return ensure_dev_pki(folder)


# -- certificate contents ----------------------------------------------------------------------


def test_ca_is_self_signed_sha256_p256_ca(pki: TlsFiles) -> None:
    ca = _cert(pki.ca_cert)
    _sha256_signed_by(ca, ca)
    assert isinstance(_ec_public(ca).curve, ec.SECP256R1)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    common_name = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(common_name, str)
    assert common_name.startswith("PrintFabric Dev CA ")
    assert len(common_name) > len("PrintFabric Dev CA ")
    assert 3640 < _days_left(ca) <= 3650


def test_server_cert_is_sha256_and_chains_to_ca(pki: TlsFiles) -> None:
    ca, server = _cert(pki.ca_cert), _cert(pki.cert)
    _sha256_signed_by(server, ca)
    assert server.issuer == ca.subject
    assert isinstance(_ec_public(server).curve, ec.SECP256R1)
    assert _key_matches(pki.cert, pki.key)
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = server.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ski = server.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(_ec_public(server))
    assert 815 < _days_left(server) <= 825


def test_server_cert_names_every_hostname(pki: TlsFiles) -> None:
    san = _cert(pki.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_custom_hostnames_become_dns_and_ip_entries(folder: Path) -> None:
    files = ensure_dev_pki(folder, ["printfabric.lan", "10.1.2.3", "fd00::7"])
    san = _cert(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["printfabric.lan"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("fd00::7"),
    ]


def test_hostnames_must_be_a_list_not_a_string(folder: Path) -> None:
    with pytest.raises(TypeError):
        ensure_dev_pki(folder, "localhost")
    with pytest.raises(ValueError):
        ensure_dev_pki(folder, [])


# -- files -------------------------------------------------------------------------------------


def test_keys_are_0600_and_folder_0700(pki: TlsFiles, folder: Path) -> None:
    assert _mode(folder) == 0o700
    assert _mode(pki.key) == 0o600
    assert _mode(folder / "ca-key.pem") == 0o600
    assert sorted(p.name for p in folder.glob("*.pem")) == [
        "ca-key.pem",
        "ca.pem",
        "server-key.pem",
        "server.pem",
    ]
    assert not list(folder.glob("*.tmp")), "no temporary file may be left behind"


def test_reused_keys_readable_by_others_are_made_private(pki: TlsFiles, folder: Path) -> None:
    os.chmod(pki.key, 0o644)
    os.chmod(folder / "ca-key.pem", 0o640)
    before = _snapshot(folder)
    ensure_dev_pki(folder)
    assert _mode(pki.key) == 0o600
    assert _mode(folder / "ca-key.pem") == 0o600
    assert _snapshot(folder) == before


def test_concurrent_first_runs_agree_on_one_pki(folder: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: ensure_dev_pki(folder), range(8)))
    assert all(r == results[0] for r in results)
    _sha256_signed_by(_cert(results[0].cert), _cert(results[0].ca_cert))
    assert _key_matches(results[0].cert, results[0].key)
    assert _key_matches(results[0].ca_cert, folder / "ca-key.pem")


def test_read_returns_the_pem_bytes(pki: TlsFiles) -> None:
    ca, cert, key = pki.read()
    assert ca == pki.ca_cert.read_bytes()
    assert cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_second_call_reuses_the_same_files(pki: TlsFiles, folder: Path) -> None:
    before = _snapshot(folder)
    again = ensure_dev_pki(folder)
    assert again == pki
    assert _snapshot(folder) == before


def test_expiring_server_cert_is_renewed_by_the_same_ca(pki: TlsFiles, folder: Path) -> None:
    cert_pem, key_pem = issue_certificate(pki, "localhost", HOSTS, valid_days=10)
    pki.cert.write_bytes(cert_pem)
    pki.key.write_bytes(key_pem)
    ca_before = pki.ca_cert.read_bytes()
    assert _days_left(_cert(pki.cert)) < 11

    ensure_dev_pki(folder)

    assert pki.ca_cert.read_bytes() == ca_before
    assert (folder / "ca-key.pem").exists()
    renewed = _cert(pki.cert)
    assert renewed.public_bytes(serialization.Encoding.PEM) != cert_pem
    assert _days_left(renewed) > 800
    _sha256_signed_by(renewed, _cert(pki.ca_cert))
    assert _key_matches(pki.cert, pki.key)
    assert _mode(pki.key) == 0o600


def test_new_hostname_reissues_and_keeps_earlier_names(pki: TlsFiles, folder: Path) -> None:
    ca_before = pki.ca_cert.read_bytes()
    ensure_dev_pki(folder, ["printer.example", "localhost"])
    san = _cert(pki.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"printer.example", "localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert pki.ca_cert.read_bytes() == ca_before
    _sha256_signed_by(_cert(pki.cert), _cert(pki.ca_cert))

    # The default list is covered now, so callers with different lists do not take turns
    # reissuing the certificate.
    settled = _snapshot(folder)
    ensure_dev_pki(folder)
    assert _snapshot(folder) == settled


def test_missing_server_key_is_reissued_by_the_existing_ca(pki: TlsFiles, folder: Path) -> None:
    ca_before = pki.ca_cert.read_bytes()
    pki.key.unlink()
    ensure_dev_pki(folder)
    assert pki.ca_cert.read_bytes() == ca_before
    assert _key_matches(pki.cert, pki.key)
    _sha256_signed_by(_cert(pki.cert), _cert(pki.ca_cert))


def test_server_cert_of_another_ca_is_replaced(pki: TlsFiles, folder: Path, tmp_path: Path) -> None:
    other = ensure_dev_pki(tmp_path / "other")
    shutil.copyfile(other.cert, pki.cert)
    shutil.copyfile(other.key, pki.key)
    ensure_dev_pki(folder)
    _sha256_signed_by(_cert(pki.cert), _cert(pki.ca_cert))
    assert _key_matches(pki.cert, pki.key)


def test_ca_key_not_matching_ca_cert_regenerates_everything(
    pki: TlsFiles, folder: Path, tmp_path: Path
) -> None:
    other = ensure_dev_pki(tmp_path / "other")
    shutil.copyfile(tmp_path / "other" / "ca-key.pem", folder / "ca-key.pem")
    old_ca = pki.ca_cert.read_bytes()
    ensure_dev_pki(folder)
    new_ca = pki.ca_cert.read_bytes()
    assert new_ca not in (old_ca, other.ca_cert.read_bytes())
    assert _key_matches(pki.ca_cert, folder / "ca-key.pem")
    _sha256_signed_by(_cert(pki.cert), _cert(pki.ca_cert))


# -- issue_certificate -------------------------------------------------------------------------


def test_issue_client_certificate_from_ca_paths(pki: TlsFiles, folder: Path) -> None:
    cert_pem, key_pem = issue_certificate(
        (pki.ca_cert, folder / "ca-key.pem"), "node-7", [], client=True
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    _sha256_signed_by(cert, _cert(pki.ca_cert))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node-7"
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert _public_der(key.public_key()) == _public_der(_ec_public(cert))


def test_issue_server_certificate_for_another_component(pki: TlsFiles) -> None:
    cert_pem, _ = issue_certificate(pki, "gateway", ["gateway.lan", "192.168.1.20"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    _sha256_signed_by(cert, _cert(pki.ca_cert))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gateway.lan"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]


def test_issue_refuses_a_leaf_as_ca(pki: TlsFiles) -> None:
    with pytest.raises(ValueError, match="not a CA"):
        issue_certificate((pki.cert, pki.key), "x", ["localhost"])


def test_issue_refuses_a_server_cert_without_names(pki: TlsFiles) -> None:
    with pytest.raises(ValueError):
        issue_certificate(pki, "x", [])


# -- real handshakes ---------------------------------------------------------------------------


def _handshake(
    port: int, ctx: ssl.SSLContext, server_hostname: str
) -> tuple[str | None, str | None, bytes]:
    """Blocking TLS handshake over a raw socket: (version, ALPN protocol, peer cert DER)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        peer = tls.getpeercert(binary_form=True)
        assert peer is not None
        return tls.version(), tls.selected_alpn_protocol(), peer


def _legacy_client() -> ssl.SSLContext:
    """A client that offers nothing newer than TLS 1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # OpenSSL 3 refuses TLS 1.0/1.1 (SHA-1 MACs) at the default security level.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # The deprecation of these versions is the very point of the test.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def _tls12_client(pki: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    return ctx


@contextmanager
def _permissive_server(pki: TlsFiles) -> Iterator[int]:
    """A one-shot TLS server that still accepts TLS 1.0/1.1, to prove _legacy_client works."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(pki.cert, pki.key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(10)


def _assert_legacy_client_can_speak_tls11(pki: TlsFiles) -> None:
    # Without this control, a client whose OpenSSL cannot offer TLS 1.1 at all would make the
    # refusal tests pass without the server having refused anything.
    with _permissive_server(pki) as port:
        try:
            version, _, _ = _handshake(port, _legacy_client(), "localhost")
        except ssl.SSLError as exc:
            pytest.skip(f"this OpenSSL cannot speak TLS 1.1 at all: {exc}")
    assert version == "TLSv1.1"


def _assert_refused(port: int) -> None:
    # The server closes the connection on the ClientHello; depending on timing the client sees
    # an EOF in the handshake or a reset.
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as refused:
        _handshake(port, _legacy_client(), "localhost")
    # A refusal by the server, not a client that had nothing to offer.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value).upper()


@pytest.fixture
async def grpc_port(pki: TlsFiles) -> AsyncIterator[int]:
    _, cert, key = pki.read()
    server = grpc.aio.server()
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    assert port > 0
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def test_grpc_server_refuses_tls11(pki: TlsFiles, grpc_port: int) -> None:
    await asyncio.to_thread(_assert_legacy_client_can_speak_tls11, pki)
    await asyncio.to_thread(_assert_refused, grpc_port)


async def test_grpc_server_speaks_tls12_h2_with_sha256_cert(pki: TlsFiles, grpc_port: int) -> None:
    expected = _cert(pki.cert).public_bytes(serialization.Encoding.DER)
    for hostname in ("localhost", "127.0.0.1"):
        version, alpn, peer_der = await asyncio.to_thread(
            _handshake, grpc_port, _tls12_client(pki), hostname
        )
        assert version == "TLSv1.2"
        assert alpn == "h2"
        assert peer_der == expected
        peer = x509.load_der_x509_certificate(peer_der)
        assert isinstance(peer.signature_hash_algorithm, hashes.SHA256)
        assert peer.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256


async def test_grpc_server_is_not_trusted_without_the_dev_ca(grpc_port: int) -> None:
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2"])
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(_handshake, grpc_port, ctx, "localhost")


@pytest.fixture
async def asyncio_tls_port(pki: TlsFiles) -> AsyncIterator[int]:
    async def echo_upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write((await reader.readline()).upper())
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(echo_upper, "127.0.0.1", 0, ssl=server_ssl_context(pki))
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_asyncio_server_speaks_tls12(pki: TlsFiles, asyncio_tls_port: int) -> None:
    ctx = client_ssl_context(pki.ca_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", asyncio_tls_port, ssl=ctx, server_hostname="localhost"
    )
    try:
        tls = writer.get_extra_info("ssl_object")
        assert isinstance(tls, ssl.SSLObject)
        assert tls.version() == "TLSv1.2"
        peer_der = tls.getpeercert(binary_form=True)
        assert peer_der is not None
        peer = x509.load_der_x509_certificate(peer_der)
        assert isinstance(peer.signature_hash_algorithm, hashes.SHA256)
        writer.write(b"ping\n")
        await writer.drain()
        assert await reader.readline() == b"PING\n"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_asyncio_server_refuses_tls11(pki: TlsFiles, asyncio_tls_port: int) -> None:
    await asyncio.to_thread(_assert_legacy_client_can_speak_tls11, pki)
    await asyncio.to_thread(_assert_refused, asyncio_tls_port)


async def test_client_context_checks_the_hostname(pki: TlsFiles, asyncio_tls_port: int) -> None:
    ctx = client_ssl_context(pki.ca_cert)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(
            "127.0.0.1", asyncio_tls_port, ssl=ctx, server_hostname="printer.example"
        )


def test_server_context_minimum_is_tls12(pki: TlsFiles) -> None:
    assert server_ssl_context(pki).minimum_version == ssl.TLSVersion.TLSv1_2


async def test_the_cloud_listener_itself_refuses_tls_11_and_serves_tls_12(
    sqlite_cloud: CloudHarness,
) -> None:
    port = sqlite_cloud.running.port
    tls = sqlite_cloud.running.tls
    _assert_legacy_client_can_speak_tls11(tls)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await asyncio.to_thread(_handshake, port, _legacy_client(), "localhost")
    version, alpn, der = await asyncio.to_thread(_handshake, port, _tls12_client(tls), "localhost")
    assert (version, alpn) == ("TLSv1.2", "h2")
    assert isinstance(x509.load_der_x509_certificate(der).signature_hash_algorithm, hashes.SHA256)
