"""The demo tenant that `make run` bootstraps on first start, and its credentials file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cloud.config import CloudConfig
from cloud.domain.devices import DeviceFields, Devices, PrinterFields
from cloud.domain.directory import Directory, NewUser, UserFields
from cloud.domain.enums import AccessRight, DeviceKind, QueueModel
from cloud.domain.runtime import Runtime
from cloud.domain.tenants import Tenants, tenant_by_code
from cloud.errors import NotFound

DEMO_CODE = "DEMO"


@dataclass(frozen=True)
class DemoCredentials:
    company_code: str
    cloud_target: str
    ca_cert: str
    gateway_url: str
    queue: str
    login: str
    password: str
    pin: str
    card: str
    mfp_serial: str
    mfp_access_token: str
    node_serial: str
    node_access_token: str


def demo_file(config: CloudConfig) -> Path:
    return config.home / "demo.json"


async def ensure_demo(rt: Runtime, config: CloudConfig, ca_cert: Path) -> DemoCredentials:
    """Creates the DEMO tenant once; later starts read the credentials back from demo.json."""
    path = demo_file(config)
    if path.exists():
        stored = DemoCredentials(**json.loads(path.read_text()))
        # Where the cloud and gateway listen is this start's, not the first one's.
        creds = replace(
            stored,
            cloud_target=_cloud_target(config),
            ca_cert=str(ca_cert),
            gateway_url=config.public_url,
        )
        if creds != stored:
            _write_creds(path, creds)
        await _ensure_direct_queue(rt, config)
        return creds
    tenant = await Tenants(rt).create(None, DEMO_CODE, "Demo Company")
    devices = Devices(rt)
    queue = await devices.create_printer(
        None,
        tenant.id,
        PrinterFields(
            name="secure", display_name="Secure print (release at any MFP)", model=QueueModel.SECURE
        ),
    )
    password = secrets.token_urlsafe(9)
    pin = f"{secrets.randbelow(10**6):06d}"
    card = f"{secrets.randbelow(10**10):010d}"
    rights = frozenset(AccessRight) - {AccessRight.FAX}
    await Directory(rt).create(
        None,
        tenant.id,
        NewUser(
            UserFields(
                login="demo",
                email="demo@example.com",
                full_name="Demo User",
                department="IT",
                rights=rights,
            ),
            password=password,
            pin=pin,
            cards=[card],
        ),
    )
    node, node_token = await devices.create_node(
        None, tenant.id, "DEMO-NODE-1", "Demo node", "Office"
    )
    # Released to "office", a job goes through the node into $PF_HOME/printed/.
    printed = config.home / "printed"
    printed.mkdir(parents=True, exist_ok=True)
    office = await devices.create_printer(
        None,
        tenant.id,
        PrinterFields(
            name="office",
            display_name="Office printer (behind the demo node)",
            model=QueueModel.SECURE,
            node_id=node.id,
            device_uri=printed.as_uri(),
        ),
    )
    # The MFP releases onto the office printer: a job released there lands in printed/.
    mfp, mfp_token = await devices.create_device(
        None,
        tenant.id,
        DeviceFields(
            kind=DeviceKind.MFP,
            serial_number="DEMO-MFP-1",
            display_name="Demo MFP",
            printer_id=office.id,
        ),
    )
    await _ensure_direct_queue(rt, config)
    creds = DemoCredentials(
        company_code=DEMO_CODE,
        cloud_target=_cloud_target(config),
        ca_cert=str(ca_cert),
        gateway_url=config.public_url,
        queue=queue.name,
        login="demo",
        password=password,
        pin=pin,
        card=card,
        mfp_serial=mfp.serial_number,
        mfp_access_token=mfp_token,
        node_serial=node.serial_number,
        node_access_token=node_token,
    )
    _write_creds(path, creds)
    return creds


def _cloud_target(config: CloudConfig) -> str:
    return f"localhost:{config.listen.rpartition(':')[2]}"


def _write_creds(path: Path, creds: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(creds), fh, indent=2)


async def _ensure_direct_queue(rt: Runtime, config: CloudConfig) -> None:
    """The demo's `direct` queue: jobs print at once, by the cloud, into $PF_HOME/printed/.

    Made on every start if missing, so a demo made by an older version gets it too.
    """
    async with rt.db.session() as session:
        tenant = await tenant_by_code(session, DEMO_CODE)
    if tenant is None:
        return
    devices = Devices(rt)
    printed = config.home / "printed"
    printed.mkdir(parents=True, exist_ok=True)
    try:
        async with rt.db.session() as session:
            await devices.printer_by_ref(session, tenant.id, "direct")
    except NotFound:
        await devices.create_printer(
            None,
            tenant.id,
            PrinterFields(
                name="direct",
                display_name="Direct print (no release needed)",
                model=QueueModel.DIRECT,
                device_uri=printed.as_uri(),
            ),
        )


def banner(creds: DemoCredentials, config: CloudConfig) -> str:
    demo = demo_file(config)
    host = creds.gateway_url.split("://", 1)[-1]
    ipps = f"ipps://{creds.login}:{creds.password}@{host}"
    node_mfp = f"https://{os.environ.get('PF_NODE_MFP_LISTEN', '127.0.0.1:9443')}/mfp/v1"
    node_lpd = f"lpd://{os.environ.get('PF_NODE_LPD_LISTEN', '127.0.0.1:5515')}"
    return f"""
PrintFabric is running (state in {config.home})

  cloud gRPC (TLS)   grpcs://{creds.cloud_target}   CA: {creds.ca_cert}
  gateway (IPPS)     {creds.gateway_url}   log in {config.home / "gateway.log"}
  node               {creds.node_serial}, state in {config.home / "node"}, log in {config.home / "node.log"}
  MFP API            {creds.gateway_url}/mfp/v1 (cloud), {node_mfp} (node; CA {config.home / "node" / "tls" / "ca.pem"})
  node LPD           {node_lpd}/QUEUE (plain LPR, for the site's LAN)

Demo tenant {creds.company_code} (also in {demo}):
  login {creds.login}   password {creds.password}   PIN {creds.pin}   card {creds.card}
  MFP serial {creds.mfp_serial}   access token {creds.mfp_access_token}
  node serial {creds.node_serial}   access token {creds.node_access_token}

Print a first file over IPPS (any IPP client; with CUPS's ipptool):
  ipptool -tv -f YOUR.pdf {ipps}/ipp/print/direct print-job.test
  -> it prints at once into {config.home / "printed"}
Or add a driverless printer (user {creds.login}, password above):
  lpadmin -p PrintFabric -E -v {ipps}/ipp/print/secure -m everywhere
Secure print: a job sent to {ipps}/ipp/print/secure (or by gRPC:
  .venv/bin/python docs/examples/submit_job.py --demo {demo} YOUR.pdf)
is held until released; release it at the demo MFP (the simulator logs in with the demo card)
and the node prints it on the office printer, into {config.home / "printed"}:
  .venv/bin/printfabric mfp --demo {config.home} jobs
  .venv/bin/printfabric mfp --demo {config.home} release --all
Or print over LPR to the node (held there, released at the MFP the same way), e.g. with CUPS's
lpd backend run directly:
  DEVICE_URI='{node_lpd}/secure?reserve=none' /usr/lib/cups/backend/lpd 1 {creds.login} "My file" 1 "" YOUR.pdf

Ctrl-C stops everything.
"""


@contextlib.asynccontextmanager
async def demo_gateway(config: CloudConfig, creds: DemoCredentials) -> AsyncIterator[None]:
    """Runs `printfabric-gateway run` beside the cloud, for the DEMO tenant by default."""
    env = {
        **os.environ,
        "PF_HOME": str(config.home),
        "PF_GATEWAY_CLOUD_TARGET": creds.cloud_target,
        "PF_GATEWAY_CLOUD_CA": creds.ca_cert,
        "PF_GATEWAY_COMPANY": creds.company_code,
    }
    if config.s3 is None:
        # The gateway serves the signed URLs of the cloud's blob folder, with its URL key.
        env["PF_GATEWAY_BLOB_DIR"] = str(config.blob_dir.resolve())
        env["PF_GATEWAY_BLOB_KEY"] = str(config.blob_url_key_file)
    async with _child(config.home / "gateway.log", env, "printfabric-gateway", "run"):
        yield


@contextlib.asynccontextmanager
async def demo_node(config: CloudConfig, creds: DemoCredentials) -> AsyncIterator[None]:
    """Runs `printfabric-node run` for the demo node beside the cloud, stopped on exit."""
    env = {
        **os.environ,
        "PF_NODE_HOME": str(config.home / "node"),
        "PF_CLOUD_TARGET": creds.cloud_target,
        "PF_CLOUD_CA": creds.ca_cert,
        "PF_COMPANY_CODE": creds.company_code,
        "PF_NODE_SERIAL": creds.node_serial,
        # The token goes by environment, never on a command line where `ps` shows it.
        "PF_NODE_TOKEN": creds.node_access_token,
    }
    async with _child(config.home / "node.log", env, "printfabric-node", "run"):
        yield


@contextlib.asynccontextmanager
async def _child(log_path: Path, env: dict[str, str], *argv: str) -> AsyncIterator[None]:
    """Runs one of our commands (from this venv) beside the cloud, stopped on exit."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / argv[0]),
            *argv[1:],
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
