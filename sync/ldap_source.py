"""Reading a directory with ldap3: TLS that verifies, simple or NTLM bind, paged searches."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as lx

from sync.config import Source
from sync.records import Entry, dn_key


class SourceError(Exception):
    """A directory could not be read; the message names the source and the cause."""


def tls_for(source: Source) -> ldap3.Tls:
    """Certificate validation always: the source's CA file, or the system's roots."""
    return ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        version=ssl.PROTOCOL_TLS_CLIENT,
        ca_certs_file=str(source.ca_file) if source.ca_file else None,
        ssl_options=[ssl.OP_NO_SSLv2, ssl.OP_NO_SSLv3, ssl.OP_NO_TLSv1, ssl.OP_NO_TLSv1_1],
    )


@contextmanager
def connect(source: Source) -> Iterator[ldap3.Connection]:
    """A bound connection; SourceError saying what went wrong when there is none."""
    parts = urlsplit(source.url)
    use_ssl = parts.scheme == "ldaps"
    port = parts.port or (636 if use_ssl else 389)
    tls = tls_for(source) if source.secure else None
    server = ldap3.Server(
        parts.hostname or "",
        port=port,
        use_ssl=use_ssl,
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=source.timeout,
    )
    auth = {"simple": ldap3.SIMPLE, "ntlm": ldap3.NTLM, "anonymous": ldap3.ANONYMOUS}[source.bind]
    conn = ldap3.Connection(
        server,
        user=source.bind_dn or None,
        password=source.password or None,
        authentication=auth,
        receive_timeout=int(max(source.timeout, 60.0)),
        raise_exceptions=False,
        read_only=True,
        auto_range=True,
    )
    where = f"source {source.name!r} ({source.url})"
    try:
        try:
            conn.open()
            if source.start_tls and not conn.start_tls():
                raise SourceError(f"{where}: StartTLS refused: {_result(conn)}")
        except lx.LDAPStartTLSError as exc:
            raise SourceError(f"{where}: StartTLS failed: {_tls_reason(exc)}") from None
        except lx.LDAPSocketOpenError as exc:
            raise SourceError(f"{where}: {_open_reason(exc)}") from None
        if source.bind == "simple" and not source.secure:
            raise SourceError(
                f"{where}: a simple bind would send the password in clear; use ldaps:// or "
                "start_tls = true"
            )
        if not conn.bind():
            result = conn.result or {}
            if result.get("description") == "invalidCredentials":
                raise SourceError(f"{where}: wrong bind DN or password for {source.bind_dn}")
            raise SourceError(f"{where}: bind as {source.bind_dn} refused: {_result(conn)}")
        conn.raise_exceptions = True
        yield conn
    except lx.LDAPSocketReceiveError as exc:
        raise SourceError(f"{where}: the server stopped answering ({exc})") from None
    except lx.LDAPSocketOpenError as exc:
        raise SourceError(f"{where}: {_open_reason(exc)}") from None
    except lx.LDAPOperationResult as exc:
        raise SourceError(f"{where}: {exc.description}: {exc.message or exc.result}") from None
    except lx.LDAPException as exc:
        raise SourceError(f"{where}: {exc}") from None
    finally:
        with suppress(lx.LDAPException):
            conn.unbind()


def read(source: Source, seen: Callable[[int], None] = lambda n: None) -> Iterator[Entry]:
    """Every entry of the source's search, page by page; seen(1) after each."""
    with connect(source) as conn:
        try:
            pages = conn.extend.standard.paged_search(
                search_base=source.base,
                search_filter=source.filter,
                search_scope=ldap3.SUBTREE,
                attributes=source.mapping.attributes(),
                paged_size=source.page_size,
                generator=True,
            )
            for item in pages:
                if item.get("type") != "searchResEntry":
                    continue
                seen(1)
                yield Entry(source.name, item["dn"], item["attributes"])
        except lx.LDAPInvalidFilterError as exc:
            raise SourceError(
                f"source {source.name!r}: the filter {source.filter!r} is "
                f"not an LDAP filter ({exc})"
            ) from None
        except lx.LDAPNoSuchObjectResult:
            raise SourceError(
                f"source {source.name!r}: the search base {source.base!r} does not exist"
            ) from None


def members(source: Source) -> set[str]:
    """The members of the source's groups: DN keys (member, uniqueMember) and login keys
    (memberUid). Nested groups: use AD's `memberOf:1.2.840.113556.1.4.1941:=` in the filter."""
    out: set[str] = set()
    with connect(source) as conn:
        for group in source.groups:
            try:
                conn.search(
                    group,
                    "(objectClass=*)",
                    search_scope=ldap3.BASE,
                    attributes=["member", "uniqueMember", "memberUid"],
                )
            except lx.LDAPNoSuchObjectResult:
                raise SourceError(
                    f"source {source.name!r}: the group {group!r} does not exist"
                ) from None
            for entry in conn.response or ():
                if entry.get("type") != "searchResEntry":
                    continue
                for name, values in entry["attributes"].items():
                    kind = name.split(";", 1)[0].casefold()
                    for value in values if isinstance(values, list) else [values]:
                        out.add(dn_key(value) if kind != "memberuid" else str(value).casefold())
    return out


def _result(conn: ldap3.Connection) -> str:
    result = conn.result or {}
    return f"{result.get('description', 'error')} {result.get('message', '')}".strip()


def _open_reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return f"the server's TLS certificate is not trusted: {_tls_reason(exc)}"
    return f"cannot connect: {text}"


def _tls_reason(exc: Exception) -> str:
    text = str(exc)
    for hint in (
        "certificate has expired",
        "self-signed certificate",
        "unable to get local issuer",
        "hostname mismatch",
        "IP address mismatch",
        "certificate verify failed",
    ):
        if hint.lower() in text.lower():
            return f"{hint} ({text})"
    return text
