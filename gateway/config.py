"""Gateway configuration: one frozen dataclass built at the entrypoint from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from printfabric.durations import parse_seconds


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _seconds(name: str, value: str) -> float:
    try:
        return parse_seconds(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs; see the README's gateway configuration table."""

    home: Path
    listen: str = "127.0.0.1:8443"
    cloud_target: str = "localhost:50051"
    # CA that signed the cloud's certificate (the dev CA of $PF_HOME/tls by default).
    cloud_ca: Path = Path()
    # The tenant of /ipp/print/{queue}; other tenants use /t/{company}/ipp/print/{queue}.
    default_company: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Names the generated certificate covers (when no certificate is configured).
    tls_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    # How long a checked login + password is trusted before the cloud is asked again.
    auth_cache_seconds: float = 60.0
    # An idle HTTP connection is closed after this long.
    idle_timeout: float = 30.0
    # Key that signs MFP user sessions (several gateways of one deployment share it).
    mfp_key_file: Path | None = None
    # How long a user stays logged in at an MFP.
    mfp_session_seconds: float = 900.0
    # The cloud's blob folder whose signed URLs (/blob/v1/{token}) the gateway serves, and the
    # key those URLs are signed with (the cloud's blob-url.key; never its token-signing key).
    blob_folder: Path | None = None
    blob_key_file: Path | None = None

    @property
    def blob_dir(self) -> Path:
        return self.blob_folder or self.home / "blobs"

    @property
    def blob_key_path(self) -> Path:
        # Where the cloud keeps it under the same $PF_HOME (CloudConfig.blob_url_key_file).
        return self.blob_key_file or self.home / "cloud" / "blob-url.key"

    @property
    def mfp_key_path(self) -> Path:
        return self.mfp_key_file or self.home / "gateway-mfp.key"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if env is None else env
        home = Path(env.get("PF_HOME", "var")).resolve()
        listen = env.get("PF_GATEWAY_LISTEN", "127.0.0.1:8443")
        if not listen.rpartition(":")[2].isdigit():
            raise ConfigError(f"PF_GATEWAY_LISTEN={listen!r} is not host:port")
        cert, key = env.get("PF_GATEWAY_TLS_CERT", ""), env.get("PF_GATEWAY_TLS_KEY", "")
        if bool(cert) != bool(key):
            raise ConfigError("set both PF_GATEWAY_TLS_CERT and PF_GATEWAY_TLS_KEY, or neither")
        hostnames = env.get("PF_TLS_HOSTNAMES", "localhost,127.0.0.1,::1").split(",")
        return cls(
            home=home,
            listen=listen,
            cloud_target=env.get("PF_GATEWAY_CLOUD_TARGET", "localhost:50051"),
            cloud_ca=Path(env["PF_GATEWAY_CLOUD_CA"])
            if env.get("PF_GATEWAY_CLOUD_CA")
            else home / "tls" / "ca.pem",
            default_company=env.get("PF_GATEWAY_COMPANY", "").strip().upper(),
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            tls_hostnames=tuple(h.strip() for h in hostnames if h.strip()),
            auth_cache_seconds=_seconds(
                "PF_GATEWAY_AUTH_CACHE", env.get("PF_GATEWAY_AUTH_CACHE", "60s")
            ),
            idle_timeout=_seconds(
                "PF_GATEWAY_IDLE_TIMEOUT", env.get("PF_GATEWAY_IDLE_TIMEOUT", "30s")
            ),
            mfp_key_file=Path(env["PF_GATEWAY_MFP_KEY"]) if env.get("PF_GATEWAY_MFP_KEY") else None,
            mfp_session_seconds=_seconds(
                "PF_GATEWAY_MFP_SESSION", env.get("PF_GATEWAY_MFP_SESSION", "15m")
            ),
            blob_folder=_path(env, "PF_GATEWAY_BLOB_DIR", folder=True),
            blob_key_file=_path(env, "PF_GATEWAY_BLOB_KEY", folder=False),
        )


def _path(env: Mapping[str, str], name: str, *, folder: bool) -> Path | None:
    """An optional path setting; a value that cannot be what it names is a ConfigError.

    A path that does not exist (yet) is fine: the gateway then serves no blob storage.
    """
    value = env.get(name, "").strip()
    if not value:
        return None
    if "\0" in value:
        raise ConfigError(f"{name} holds a NUL character")
    path = Path(value).expanduser().resolve()
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{name}={value!r} is not a folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{name}={value!r} is a folder, not a key file")
    return path
