"""Node configuration: one frozen dataclass built at the entrypoint from the environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from printfabric import durations
from printfabric.lpd import check_lpr_uri, lpr_uri

from node.errors import ConfigError


def parse_seconds(value: str) -> float:
    """Parses '250ms', '90s', '15m', '2h' or plain seconds; ConfigError otherwise."""
    try:
        return durations.parse_seconds(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def software_version() -> str:
    try:
        return f"printfabric-node/{metadata.version('printfabric')}"
    except metadata.PackageNotFoundError:
        return "printfabric-node/dev"


@dataclass(frozen=True)
class JbaDevice:
    """A Xerox device whose Job Based Accounting log the node collects."""

    # A name of the operator's choice (unique on the node): keys the collector's cursor and
    # the records' ids.
    name: str
    # https://HOST[:PORT]/PATH of the device's accounting log export.
    url: str


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node process needs; the access token never appears in its repr."""

    home: Path
    cloud_target: str = "localhost:50051"
    cloud_ca: Path = Path("var/tls/ca.pem")
    company_code: str = ""
    serial_number: str = ""
    access_token: str = field(default="", repr=False)
    # Heartbeat period until the cloud's welcome names its own.
    heartbeat_seconds: float = 15.0
    # Reconnect backoff: full jitter over initial * 2**attempt, capped.
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    # How often the link looks for outbox records written by other processes.
    outbox_poll_seconds: float = 0.2
    remote_auth_timeout: float = 5.0
    software_version: str = field(default_factory=software_version)
    # The MFP API (HTTPS): host:port, port 0 for any free port, "" for none. Built in code the
    # default is an ephemeral port; from the environment it is 127.0.0.1:9443.
    mfp_listen: str = "127.0.0.1:0"
    # A certificate of the operator's; without one the node makes its own (CA and SHA-256
    # server certificate in <home>/tls) covering mfp_hostnames.
    mfp_tls_cert: Path | None = None
    mfp_tls_key: Path | None = None
    mfp_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    # Key that signs user sessions at the node's MFPs (default <home>/mfp-session.key).
    mfp_key_file: Path | None = None
    mfp_session_seconds: float = 900.0
    # Failed PIN/password attempts: at most this many per login / per device within the
    # window; the one that reaches the limit locks it for the lockout.
    mfp_login_failures: int = 5
    mfp_device_failures: int = 20
    mfp_failure_window: float = 300.0
    mfp_lockout_seconds: float = 300.0
    # How long a device session the cloud once confirmed is still taken while the cloud
    # cannot be asked (so MFPs log users in from the replica during an outage).
    mfp_offline_grace: float = 24 * 3600.0
    # Bounds each step of a delivery to a printer (connect, a write, an answer, an IPP job).
    delivery_timeout: float = 60.0
    # The LPD server (RFC 1179, plain TCP as the protocol is): host:port, port 0 for any free
    # port, "" for none. Built in code the default is an ephemeral port; from the environment
    # it is 127.0.0.1:5515 (515 in production: PF_NODE_LPD_LISTEN=0.0.0.0:515).
    lpd_listen: str = "127.0.0.1:0"
    # Where workstations reach that server, lpr://host[:port], announced to the cloud in the
    # hello (it lists it with the queues); "" announces nothing. from_env derives it from
    # lpd_listen unless PF_NODE_LPD_URI names it (behind NAT or a DNS name of the site's).
    lpd_uri: str = ""
    # A job whose P line names a login the replica does not know: "refuse" it (negative ack)
    # or "park" it (kept, and held once the user appears in the directory).
    lpd_unknown_user: str = "refuse"
    lpd_max_control_bytes: int = 16 * 1024
    lpd_max_job_bytes: int = 4 << 30
    lpd_idle_timeout: float = 60.0
    lpd_max_connections_per_peer: int = 16
    # How long a held or parked LPD job waits at the node for its release.
    lpd_hold_seconds: float = 48 * 3600.0
    # JBA accounting: the devices, how often their logs are fetched, the CA that signs their
    # certificates (default: the system's), and the log-in the logs need (HTTP Basic).
    jba_devices: tuple[JbaDevice, ...] = ()
    jba_interval: float = 300.0
    jba_ca: Path | None = None
    jba_user: str = ""
    jba_password: str = field(default="", repr=False)
    jba_timeout: float = 30.0

    @property
    def db_path(self) -> Path:
        return self.home / "node.db"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def mfp_key_path(self) -> Path:
        return self.mfp_key_file or self.home / "mfp-session.key"

    @property
    def mfp_host(self) -> str:
        return self.mfp_listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def mfp_port(self) -> int:
        return int(self.mfp_listen.rpartition(":")[2])

    @property
    def lpd_spool_dir(self) -> Path:
        """Jobs received over LPD (released jobs from the cloud are in spool_dir)."""
        return self.home / "lpd"

    @property
    def lpd_host(self) -> str:
        return self.lpd_listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def lpd_port(self) -> int:
        return int(self.lpd_listen.rpartition(":")[2])

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.db_path}"

    def require_link(self) -> NodeConfig:
        """Checks what `run` needs to reach the cloud; returns self for chaining."""
        missing = [
            name
            for name, value in (
                ("PF_COMPANY_CODE", self.company_code),
                ("PF_NODE_SERIAL", self.serial_number),
                ("PF_NODE_TOKEN or PF_NODE_TOKEN_FILE", self.access_token),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"set {', '.join(missing)} to connect the node to the cloud")
        if not self.cloud_ca.is_file():
            raise ConfigError(
                f"the cloud's CA certificate {self.cloud_ca} does not exist (set PF_CLOUD_CA)"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeConfig:
        env = os.environ if env is None else env
        pf_home = Path(env.get("PF_HOME", "var"))
        d = cls(home=Path())
        cert, key = _cert_pair(env)
        lpd_listen = _listen(env.get("PF_NODE_LPD_LISTEN", "127.0.0.1:5515"), "PF_NODE_LPD_LISTEN")
        return cls(
            home=Path(env.get("PF_NODE_HOME", str(pf_home / "node"))).resolve(),
            cloud_target=env.get("PF_CLOUD_TARGET", d.cloud_target),
            cloud_ca=Path(env.get("PF_CLOUD_CA", str(pf_home / "tls" / "ca.pem"))).resolve(),
            company_code=env.get("PF_COMPANY_CODE", "").strip(),
            serial_number=env.get("PF_NODE_SERIAL", "").strip(),
            access_token=_token(env),
            heartbeat_seconds=_positive(env, "PF_NODE_HEARTBEAT", d.heartbeat_seconds),
            backoff_initial=_positive(env, "PF_NODE_BACKOFF_INITIAL", d.backoff_initial),
            backoff_max=_positive(env, "PF_NODE_BACKOFF_MAX", d.backoff_max),
            outbox_poll_seconds=_positive(env, "PF_NODE_OUTBOX_POLL", d.outbox_poll_seconds),
            remote_auth_timeout=_positive(env, "PF_NODE_REMOTE_AUTH_TIMEOUT", 5.0),
            mfp_listen=_listen(
                env.get("PF_NODE_MFP_LISTEN", "127.0.0.1:9443"), "PF_NODE_MFP_LISTEN"
            ),
            mfp_tls_cert=cert,
            mfp_tls_key=key,
            mfp_hostnames=_hostnames(env),
            mfp_key_file=Path(env["PF_NODE_MFP_KEY"]).resolve()
            if env.get("PF_NODE_MFP_KEY")
            else None,
            mfp_session_seconds=_positive(env, "PF_NODE_MFP_SESSION", d.mfp_session_seconds),
            delivery_timeout=_positive(env, "PF_NODE_DELIVERY_TIMEOUT", d.delivery_timeout),
            lpd_listen=lpd_listen,
            lpd_uri=_lpd_uri(env.get("PF_NODE_LPD_URI", ""), lpd_listen),
            lpd_unknown_user=_choice(env, "PF_NODE_LPD_UNKNOWN_USER", ("refuse", "park")),
            lpd_max_control_bytes=_size(env, "PF_NODE_LPD_MAX_CONTROL", d.lpd_max_control_bytes),
            lpd_max_job_bytes=_size(env, "PF_NODE_LPD_MAX_JOB", d.lpd_max_job_bytes),
            lpd_idle_timeout=_positive(env, "PF_NODE_LPD_IDLE_TIMEOUT", d.lpd_idle_timeout),
            lpd_max_connections_per_peer=int(
                _size(env, "PF_NODE_LPD_MAX_PER_PEER", d.lpd_max_connections_per_peer)
            ),
            lpd_hold_seconds=_positive(env, "PF_NODE_LPD_HOLD", d.lpd_hold_seconds),
            jba_devices=_jba_devices(env.get("PF_NODE_JBA_DEVICES", "")),
            jba_interval=_positive(env, "PF_NODE_JBA_INTERVAL", d.jba_interval),
            jba_ca=Path(env["PF_NODE_JBA_CA"]).resolve() if env.get("PF_NODE_JBA_CA") else None,
            jba_user=env.get("PF_NODE_JBA_USER", "").strip(),
            jba_password=_secret_file(env, "PF_NODE_JBA_PASSWORD_FILE"),
            jba_timeout=_positive(env, "PF_NODE_JBA_TIMEOUT", d.jba_timeout),
        )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    if not env.get(name):
        return default
    value = parse_seconds(env[name])
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _token(env: Mapping[str, str]) -> str:
    # A secret on the command line shows in `ps`; only the environment or a file carry it.
    inline, path = env.get("PF_NODE_TOKEN", ""), env.get("PF_NODE_TOKEN_FILE", "")
    if inline and path:
        raise ConfigError("set PF_NODE_TOKEN or PF_NODE_TOKEN_FILE, not both")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read PF_NODE_TOKEN_FILE {path}: {exc.strerror}") from exc
    return inline.strip()


def _listen(value: str, name: str) -> str:
    """host:port ([v6]:port), port 0 for any free one; "" or "off" for no listener."""
    text = value.strip()
    if text.lower() in ("", "off", "none"):
        return ""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name}={value!r} is not host:port (e.g. 0.0.0.0:9443), or off")
    return text


# Listening on these means every address of the machine: no one of them names the node.
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "*")


def _lpd_uri(value: str, lpd_listen: str) -> str:
    """PF_NODE_LPD_URI, checked; unset: derived from the LPD listener; "" when none runs."""
    text = value.strip()
    if text.lower() in ("off", "none"):
        return ""
    if not lpd_listen:
        if text:
            raise ConfigError(
                "PF_NODE_LPD_URI is set but the LPD server is off (PF_NODE_LPD_LISTEN=off): "
                "unset one of them"
            )
        return ""
    if text:
        try:
            return check_lpr_uri(text)
        except ValueError as exc:
            raise ConfigError(f"PF_NODE_LPD_URI: {exc}") from None
    host, _, port = lpd_listen.rpartition(":")
    host = host.strip("[]")
    if int(port) == 0:
        # Any free port: which one is known only once the server listens, too late to name it
        # here, so nothing is announced (PF_NODE_LPD_URI names an address if one is wanted).
        return ""
    if host in _WILDCARD_HOSTS:
        host = socket.getfqdn()
    try:
        return check_lpr_uri(lpr_uri(host, int(port)))
    except ValueError:
        raise ConfigError(
            f"PF_NODE_LPD_URI: cannot make an lpr:// address from the LPD listener's host "
            f"{host!r}; set PF_NODE_LPD_URI=lpr://HOST[:PORT] (or off)"
        ) from None


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive count or byte size: 100, 64k, 100M, 4G (binary units)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    number, unit = text.rstrip("kKmMgGbB"), text[len(text.rstrip("kKmMgGbB")) :].lower()
    unit = unit.removesuffix("b") if unit != "b" else ""
    if not number.isdigit() or unit not in _SIZE_UNITS or int(number) <= 0:
        raise ConfigError(f"{name}={text!r} is not a positive size such as 64k, 100M or 4G")
    return int(number) * _SIZE_UNITS[unit]


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _secret_file(env: Mapping[str, str], name: str) -> str:
    path = env.get(name, "")
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {name} {path}: {exc.strerror}") from exc


def _jba_devices(value: str) -> tuple[JbaDevice, ...]:
    """NAME=https://HOST[:PORT]/PATH, comma-separated."""
    devices: list[JbaDevice] = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url.lower().startswith("https://"):
            raise ConfigError(
                f"PF_NODE_JBA_DEVICES: {item!r} is not NAME=https://HOST/PATH "
                "(the JBA log is fetched over HTTPS only)"
            )
        if any(d.name == name for d in devices):
            raise ConfigError(f"PF_NODE_JBA_DEVICES: the name {name!r} is used twice")
        devices.append(JbaDevice(name, url))
    return tuple(devices)


def _cert_pair(env: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    cert, key = env.get("PF_NODE_MFP_TLS_CERT", ""), env.get("PF_NODE_MFP_TLS_KEY", "")
    if bool(cert) != bool(key):
        raise ConfigError("set both PF_NODE_MFP_TLS_CERT and PF_NODE_MFP_TLS_KEY, or neither")
    if not cert:
        return None, None
    return Path(cert).resolve(), Path(key).resolve()


def _hostnames(env: Mapping[str, str]) -> tuple[str, ...]:
    names = env.get("PF_NODE_MFP_HOSTNAMES", "") or env.get("PF_TLS_HOSTNAMES", "")
    found = tuple(n.strip() for n in names.split(",") if n.strip())
    return found or NodeConfig.mfp_hostnames
