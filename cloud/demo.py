"""The demo tenant that `make run` bootstraps on first start, and its credentials file."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from cloud.config import CloudConfig
from cloud.domain.devices import DeviceFields, Devices, PrinterFields
from cloud.domain.directory import Directory, NewUser, UserFields
from cloud.domain.enums import AccessRight, DeviceKind, QueueModel
from cloud.domain.runtime import Runtime
from cloud.domain.tenants import Tenants

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
        return DemoCredentials(**json.loads(path.read_text()))
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
    mfp, mfp_token = await devices.create_device(
        None,
        tenant.id,
        DeviceFields(
            kind=DeviceKind.MFP,
            serial_number="DEMO-MFP-1",
            display_name="Demo MFP",
            printer_id=queue.id,
        ),
    )
    node, node_token = await devices.create_node(
        None, tenant.id, "DEMO-NODE-1", "Demo node", "Office"
    )
    port = config.listen.rpartition(":")[2]
    creds = DemoCredentials(
        company_code=DEMO_CODE,
        cloud_target=f"localhost:{port}",
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(creds), fh, indent=2)
    return creds


def banner(creds: DemoCredentials, config: CloudConfig) -> str:
    demo = demo_file(config)
    return f"""
PrintFabric is running (state in {config.home})

  cloud gRPC (TLS)   grpcs://{creds.cloud_target}   CA: {creds.ca_cert}
  gateway (IPPS)     not built yet in this version (issue #4)
  node               not built yet in this version (issue #3)

Demo tenant {creds.company_code} (also in {demo}):
  login {creds.login}   password {creds.password}   PIN {creds.pin}   card {creds.card}
  MFP serial {creds.mfp_serial}   access token {creds.mfp_access_token}
  node serial {creds.node_serial}   access token {creds.node_access_token}

Print a first file (in another terminal, from this folder):
  .venv/bin/python docs/examples/submit_job.py --demo {demo} YOUR.pdf

Ctrl-C stops everything.
"""
