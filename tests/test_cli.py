"""The admin CLI and `make run`'s fabric command, as separate processes, as a person uses them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pypdf import PdfWriter

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    home: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "printfabric-cloud"), *args],
        env={**os.environ, "PF_HOME": str(home), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admin_cli_creates_tenant_user_queue_device_and_node(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli(home, "tenant", "create", "globex", "--name", "Globex").returncode == 0
    made = cli(
        home,
        "user",
        "create",
        "--tenant",
        "GLOBEX",
        "hank",
        "--admin",
        "--password-env",
        "PW",
        "--card",
        "123",
        env={"PW": "s3cret"},
    )
    assert made.returncode == 0, made.stderr
    assert "hank" in made.stdout and "s3cret" not in made.stdout
    assert (
        cli(
            home,
            "queue",
            "create",
            "--tenant",
            "GLOBEX",
            "lobby",
            "--model",
            "direct",
            "--device-uri",
            "socket://10.1.1.1:9100",
        ).returncode
        == 0
    )
    device = cli(
        home, "--json", "device", "create", "--tenant", "GLOBEX", "MFP-9", "--queue", "lobby"
    )
    assert len(json.loads(device.stdout)["access_token"]) >= 40
    node = cli(home, "--json", "node", "create", "--tenant", "GLOBEX", "NODE-9")
    assert json.loads(node.stdout)["serial_number"] == "NODE-9"
    tenants = json.loads(cli(home, "--json", "tenant", "list").stdout)["tenants"]
    assert [t["company_code"] for t in tenants] == ["GLOBEX"]
    dup = cli(home, "tenant", "create", "GLOBEX")
    assert dup.returncode == 1 and "exists" in dup.stderr
    unknown = cli(home, "queue", "create", "--tenant", "NOPE", "q")
    assert unknown.returncode == 1 and "no tenant with company code NOPE" in unknown.stderr


def test_fabric_starts_bootstraps_the_demo_prints_a_first_job_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    port, gateway_port = free_port(), free_port()
    env = {
        **os.environ,
        "PF_HOME": str(home),
        "PF_CLOUD_LISTEN": f"127.0.0.1:{port}",
        "PF_GATEWAY_LISTEN": f"127.0.0.1:{gateway_port}",
    }
    proc = subprocess.Popen(
        [str(BIN / "printfabric-cloud"), "fabric"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        demo = home / "demo.json"
        deadline = time.monotonic() + 60
        while not demo.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert demo.exists(), "fabric did not write demo.json"
        assert oct(demo.stat().st_mode & 0o777) == "0o600"
        creds = json.loads(demo.read_text())
        assert (
            creds["company_code"] == "DEMO"
            and creds["pin"]
            and creds["card"]
            and creds["mfp_access_token"]
        )
        pdf = tmp_path / "first.pdf"
        writer = PdfWriter()
        writer.add_blank_page(width=595, height=842)
        writer.write(pdf)
        time.sleep(0.5)
        example = subprocess.run(
            [
                sys.executable,
                str(ROOT / "docs" / "examples" / "submit_job.py"),
                "--demo",
                str(demo),
                str(pdf),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert example.returncode == 0, example.stderr
        assert "JOB_STATE_HELD: 1 pages" in example.stdout
        # Released to the office printer, the job goes through the demo node into printed/.
        release = subprocess.run(
            [
                sys.executable,
                str(ROOT / "docs" / "examples" / "release_jobs.py"),
                "--demo",
                str(demo),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert release.returncode == 0, release.stderr
        assert "Released to Office printer" in release.stdout
        printed = home / "printed"
        deadline = time.monotonic() + 30
        while not any(printed.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        delivered = list(printed.iterdir())
        assert len(delivered) == 1, (home / "node.log").read_text()[-3000:]
        assert delivered[0].read_bytes() == pdf.read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Print a first file" in out and "stopping" in out
