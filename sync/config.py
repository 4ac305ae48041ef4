"""The sync tool's one TOML file: the cloud, the schedule, the state file and the LDAP sources.

Secrets (the sync agent's token, bind passwords) come from the environment or a file named in the
configuration, never from the file itself or the command line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from printfabric.durations import parse_seconds

DEFAULT_CONFIG = Path("/etc/printfabric/sync.toml")
# Active Directory's account is disabled when this userAccountControl bit is set.
AD_ACCOUNTDISABLE = 0x2


class ConfigError(Exception):
    """The configuration is unusable; the message says which key and why."""


@dataclass(frozen=True)
class AttributeMap:
    """Which directory attribute feeds which user field; a list means the first non-empty."""

    login: tuple[str, ...]
    email: tuple[str, ...]
    full_name: tuple[str, ...]
    department: tuple[str, ...]
    pin: tuple[str, ...] = ()
    card: tuple[str, ...] = ()
    # An integer attribute holding Active Directory's userAccountControl flags.
    disabled: str = ""

    def attributes(self) -> list[str]:
        names = [
            *self.login,
            *self.email,
            *self.full_name,
            *self.department,
            *self.pin,
            *self.card,
        ]
        if self.disabled:
            names.append(self.disabled)
        return list(dict.fromkeys(names))


PRESETS: dict[str, AttributeMap] = {
    "ad": AttributeMap(
        login=("sAMAccountName",),
        email=("mail",),
        full_name=("displayName", "cn"),
        department=("department",),
        disabled="userAccountControl",
    ),
    "openldap": AttributeMap(
        login=("uid",),
        email=("mail",),
        full_name=("cn",),
        department=("departmentNumber",),
    ),
}
DEFAULT_FILTERS = {
    "ad": "(&(objectCategory=person)(objectClass=user))",
    "openldap": "(objectClass=inetOrgPerson)",
}


@dataclass(frozen=True)
class Source:
    """One directory to read: a domain controller, a global catalog or an OpenLDAP server."""

    name: str
    url: str
    base: str
    filter: str
    mapping: AttributeMap
    bind: str = "simple"  # simple, ntlm or anonymous
    bind_dn: str = ""
    password: str = field(default="", repr=False)
    start_tls: bool = False
    ca_file: Path | None = None
    groups: tuple[str, ...] = ()
    page_size: int = 1000
    timeout: float = 10.0

    @property
    def secure(self) -> bool:
        return self.url.startswith("ldaps://") or self.start_tls


@dataclass(frozen=True)
class Cloud:
    target: str
    ca_file: Path
    company_code: str
    serial_number: str
    token: str = field(repr=False)
    timeout: float = 600.0


@dataclass(frozen=True)
class SyncConfig:
    cloud: Cloud
    sources: tuple[Source, ...]
    state_file: Path
    interval: float = 3600.0
    # A run that would disable more than this share of the synced users stops, unless forced:
    # a wrong filter or an emptied group must not disable the company.
    max_disable_percent: float = 10.0


def load(path: Path, env: Mapping[str, str] | None = None) -> SyncConfig:
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"the configuration file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse(raw, base=path.parent, env=env)


def parse(raw: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> SyncConfig:
    _known(raw, "", {"cloud", "sync", "source"})
    cloud = _table(raw, "cloud")
    sync = _table(raw, "sync", required=False)
    _known(sync, "sync", {"state_file", "interval", "max_disable_percent"})
    sources_raw = raw.get("source")
    if not isinstance(sources_raw, list) or not sources_raw:
        raise ConfigError("add at least one [[source]] table (a directory to read)")
    sources = tuple(_source(s, i, base, env) for i, s in enumerate(sources_raw))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError("two [[source]] tables have the same name")
    interval = _duration(sync, "sync.interval", "1h")
    percent = sync.get("max_disable_percent", 10.0)
    if not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise ConfigError("sync.max_disable_percent must be a number from 0 to 100")
    return SyncConfig(
        cloud=_cloud(cloud, base, env),
        sources=sources,
        state_file=_path(base, _str(sync, "sync.state_file", "sync-state.json")),
        interval=interval,
        max_disable_percent=float(percent),
    )


def _cloud(t: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> Cloud:
    _known(
        t,
        "cloud",
        {
            "target",
            "ca_file",
            "company_code",
            "serial_number",
            "token_env",
            "token_file",
            "timeout",
        },
    )
    ca = _path(base, _str(t, "cloud.ca_file"))
    if not ca.is_file():
        raise ConfigError(f"cloud.ca_file: {ca} does not exist")
    return Cloud(
        target=_str(t, "cloud.target"),
        ca_file=ca,
        company_code=_str(t, "cloud.company_code"),
        serial_number=_str(t, "cloud.serial_number"),
        token=_secret(t, "cloud", "token", base, env),
        timeout=_duration(t, "cloud.timeout", "10m"),
    )


def _source(t: Any, index: int, base: Path, env: Mapping[str, str]) -> Source:
    where = f"source #{index + 1}"
    if not isinstance(t, Mapping):
        raise ConfigError(f"{where} must be a table")
    _known(
        t,
        where,
        {
            "name",
            "url",
            "base",
            "filter",
            "preset",
            "mapping",
            "bind",
            "bind_dn",
            "password",
            "password_env",
            "password_file",
            "start_tls",
            "ca_file",
            "groups",
            "page_size",
            "timeout",
        },
    )
    name = _str(t, f"{where}.name", f"source{index + 1}")
    where = f"source {name!r}"
    url = _str(t, f"{where}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise ConfigError(f"{where}.url must be ldap://host[:port] or ldaps://host[:port]")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{where}.url has a bad port") from None
    preset = _str(t, f"{where}.preset", "ad")
    if preset not in PRESETS:
        raise ConfigError(f"{where}.preset must be one of {', '.join(PRESETS)}")
    mapping = _mapping(t.get("mapping", {}), PRESETS[preset], f"{where}.mapping")
    bind = _str(t, f"{where}.bind", "simple")
    if bind not in ("simple", "ntlm", "anonymous"):
        raise ConfigError(f"{where}.bind must be simple, ntlm or anonymous")
    start_tls = t.get("start_tls", False)
    if not isinstance(start_tls, bool):
        raise ConfigError(f"{where}.start_tls must be true or false")
    if start_tls and parts.scheme == "ldaps":
        raise ConfigError(f"{where}: start_tls is for ldap:// URLs; ldaps:// is TLS already")
    ca_text = _str(t, f"{where}.ca_file", "")
    ca = _path(base, ca_text) if ca_text else None
    if ca is not None and not ca.is_file():
        raise ConfigError(f"{where}.ca_file: {ca} does not exist")
    groups = t.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise ConfigError(f"{where}.groups must be a list of group DNs")
    page_size = t.get("page_size", 1000)
    if not isinstance(page_size, int) or not 1 <= page_size <= 100_000:
        raise ConfigError(f"{where}.page_size must be an integer from 1 to 100000")
    password = "" if bind == "anonymous" else _secret(t, where, "password", base, env)
    bind_dn = _str(t, f"{where}.bind_dn", "")
    if bind != "anonymous" and not bind_dn:
        raise ConfigError(f"{where}.bind_dn is required for a {bind} bind")
    if bind == "ntlm" and "\\" not in bind_dn:
        raise ConfigError(f"{where}.bind_dn must be DOMAIN\\user for an NTLM bind")
    return Source(
        name=name,
        url=url,
        base=_str(t, f"{where}.base"),
        filter=_str(t, f"{where}.filter", DEFAULT_FILTERS[preset]),
        mapping=mapping,
        bind=bind,
        bind_dn=bind_dn,
        password=password,
        start_tls=start_tls,
        ca_file=ca,
        groups=tuple(groups),
        page_size=page_size,
        timeout=_duration(t, f"{where}.timeout", "10s"),
    )


def _mapping(t: Any, preset: AttributeMap, where: str) -> AttributeMap:
    if not isinstance(t, Mapping):
        raise ConfigError(f"{where} must be a table")
    fields = ("login", "email", "full_name", "department", "pin", "card")
    _known(t, where, {*fields, "disabled"})
    values: dict[str, Any] = {}
    for name in fields:
        value = t.get(name, getattr(preset, name))
        if isinstance(value, str):
            value = (value,) if value else ()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}.{name} must be an attribute name or a list of them")
        values[name] = tuple(value)
    if not values["login"]:
        raise ConfigError(f"{where}.login must name the login attribute")
    disabled = t.get("disabled", preset.disabled)
    if not isinstance(disabled, str):
        raise ConfigError(f"{where}.disabled must be an attribute name (or empty for none)")
    return AttributeMap(disabled=disabled, **values)


def _secret(t: Mapping[str, Any], where: str, what: str, base: Path, env: Mapping[str, str]) -> str:
    """The secret from `{what}_env` (a variable name) or `{what}_file` (a path)."""
    var, file = t.get(f"{what}_env"), t.get(f"{what}_file")
    if what in t:
        raise ConfigError(
            f"{where}.{what}: secrets are not kept in the file; set {what}_env or {what}_file"
        )
    if var and file:
        raise ConfigError(f"{where}: set {what}_env or {what}_file, not both")
    if var:
        if not isinstance(var, str) or not env.get(var):
            raise ConfigError(f"{where}.{what}_env: the environment variable {var} is not set")
        return env[var]
    if file:
        if not isinstance(file, str):
            raise ConfigError(f"{where}.{what}_file must be a path")
        path = _path(base, file)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}.{what}_file: cannot read {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{where}.{what}_file: {path} is empty")
        return value
    raise ConfigError(f"{where}: set {what}_env (a variable name) or {what}_file (a path)")


def _table(raw: Mapping[str, Any], key: str, required: bool = True) -> Mapping[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"add a [{key}] table")
    return value


def _known(t: Mapping[str, Any], where: str, keys: set[str]) -> None:
    unknown = sorted(set(t) - keys)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(keys))})")


def _str(t: Mapping[str, Any], where: str, default: str | None = None) -> str:
    key = where.rsplit(".", 1)[-1]
    value = t.get(key, default)
    if value is None:
        raise ConfigError(f"{where} is required")
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def _duration(t: Mapping[str, Any], where: str, default: str) -> float:
    key = where.rsplit(".", 1)[-1]
    value = t.get(key, default)
    try:
        seconds = parse_seconds(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{where} must be more than zero")
    return seconds


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
