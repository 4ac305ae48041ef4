"""Cloud configuration: one frozen dataclass built at the entrypoint from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from printfabric.durations import parse_seconds


def parse_duration(value: str) -> timedelta:
    """Parses '90s', '15m', '12h', '7d' or plain seconds (ValueError otherwise)."""
    return timedelta(seconds=parse_seconds(value))


def _size(value: str) -> int:
    """Parses '512M', '4G', '100K' or plain bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    value = value.strip().upper().removesuffix("B").removesuffix("I")
    if value and value[-1] in units:
        return int(float(value[:-1]) * units[value[-1]])
    return int(value)


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True)
class CloudConfig:
    """Everything the cloud process needs; see the README's configuration table."""

    home: Path
    listen: str = "127.0.0.1:50051"
    database_url: str = ""
    blob_dir: Path = Path()
    s3: S3Settings | None = None
    # Base URL of the gateway, used in printer lists and signed blob URLs.
    public_url: str = "https://localhost:8443"
    max_job_bytes: int = 4 << 30
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    default_job_retention: timedelta = timedelta(hours=24)
    sweep_interval: timedelta = timedelta(seconds=60)
    # Hostnames and addresses the generated server certificate covers.
    tls_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    # Event bus and presence between replicas; unset: in-process (one cloud process).
    redis_url: str = ""
    node_heartbeat: timedelta = timedelta(seconds=15)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The only place file:///folder printers that the cloud delivers to may write (a cloud
    # tenant must not write anywhere else on the cloud's disk). Default: $PF_HOME/printed.
    file_printer_root: Path = Path()
    # Failed log-in attempts: per login (passwords) and per device (any credential), counted in
    # a window; reaching the maximum locks that login or device for the lockout. 0: no limit.
    auth_max_failures: int = 5
    auth_device_max_failures: int = 20
    auth_failure_window: timedelta = timedelta(minutes=5)
    auth_lockout: timedelta = timedelta(minutes=5)
    # Directory connectors (Azure AD): how often this replica looks for tenants whose sync is
    # due (0: never; syncs then run only from `printfabric-cloud azure-ad sync`), and how long
    # a replica holds a tenant's run so that no other replica starts the same tenant meanwhile.
    connector_poll: timedelta = timedelta(seconds=30)
    connector_lease: timedelta = timedelta(minutes=30)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.home / "cloud"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def secret_file(self) -> Path:
        return self.state_dir / "token-signing.key"

    @property
    def blob_url_key_file(self) -> Path:
        """The key that signs the blob folder's URLs; the gateway that serves them reads it.

        Never the token-signing key: whoever holds that can mint access tokens.
        """
        return self.state_dir / "blob-url.key"

    @property
    def connector_key_file(self) -> Path:
        """The key that seals connector secrets (Azure AD client secrets) in the database.

        Every cloud replica needs the same file, as with the token-signing key.
        """
        return self.state_dir / "connector-secrets.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CloudConfig:
        env = os.environ if env is None else env
        home = Path(env.get("PF_HOME", "var")).resolve()
        s3 = None
        if env.get("PF_S3_BUCKET"):
            s3 = S3Settings(
                bucket=env["PF_S3_BUCKET"],
                endpoint_url=env.get("PF_S3_ENDPOINT") or None,
                region=env.get("PF_S3_REGION", "us-east-1"),
                access_key=env.get("PF_S3_ACCESS_KEY") or None,
                secret_key=env.get("PF_S3_SECRET_KEY") or None,
            )
        hostnames = tuple(
            h.strip() for h in env.get("PF_TLS_HOSTNAMES", "localhost,127.0.0.1,::1").split(",")
        )
        defaults = cls(home=home)
        return cls(
            home=home,
            listen=env.get("PF_CLOUD_LISTEN", defaults.listen),
            database_url=env.get("PF_DATABASE_URL", ""),
            blob_dir=Path(env["PF_BLOB_DIR"]) if env.get("PF_BLOB_DIR") else Path(),
            s3=s3,
            public_url=env.get("PF_PUBLIC_URL", defaults.public_url).rstrip("/"),
            max_job_bytes=_size(env["PF_MAX_JOB_BYTES"])
            if env.get("PF_MAX_JOB_BYTES")
            else defaults.max_job_bytes,
            access_token_ttl=parse_duration(env.get("PF_ACCESS_TOKEN_TTL", "15m")),
            refresh_token_ttl=parse_duration(env.get("PF_REFRESH_TOKEN_TTL", "30d")),
            default_job_retention=parse_duration(env.get("PF_JOB_RETENTION", "24h")),
            sweep_interval=parse_duration(env.get("PF_SWEEP_INTERVAL", "60s")),
            tls_hostnames=tuple(h for h in hostnames if h),
            redis_url=env.get("PF_REDIS_URL", ""),
            node_heartbeat=parse_duration(env.get("PF_NODE_HEARTBEAT", "15s")),
            tls_cert=Path(env["PF_TLS_CERT"]) if env.get("PF_TLS_CERT") else None,
            tls_key=Path(env["PF_TLS_KEY"]) if env.get("PF_TLS_KEY") else None,
            file_printer_root=Path(env["PF_FILE_PRINTER_ROOT"])
            if env.get("PF_FILE_PRINTER_ROOT")
            else Path(),
            auth_max_failures=int(env.get("PF_AUTH_MAX_FAILURES", defaults.auth_max_failures)),
            auth_device_max_failures=int(
                env.get("PF_AUTH_DEVICE_MAX_FAILURES", defaults.auth_device_max_failures)
            ),
            auth_failure_window=parse_duration(env.get("PF_AUTH_FAILURE_WINDOW", "5m")),
            auth_lockout=parse_duration(env.get("PF_AUTH_LOCKOUT", "5m")),
            connector_poll=parse_duration(env.get("PF_CONNECTOR_POLL", "30s")),
            connector_lease=parse_duration(env.get("PF_CONNECTOR_LEASE", "30m")),
        ).resolved()

    def resolved(self) -> CloudConfig:
        """Fills the defaults that depend on home."""
        return replace(
            self,
            database_url=self.database_url or f"sqlite+aiosqlite:///{self.state_dir / 'cloud.db'}",
            blob_dir=self.blob_dir if str(self.blob_dir) not in ("", ".") else self.home / "blobs",
            file_printer_root=(
                self.file_printer_root
                if str(self.file_printer_root) not in ("", ".")
                else self.home / "printed"
            ).resolve(),
        )
