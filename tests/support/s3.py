"""Runs a real moto S3 server as a subprocess on an ephemeral 127.0.0.1 port, for the S3 tests."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_INSTALL_HINT = "install it into the test environment with: pip install 'moto[server]'"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
# moto_server takes a port number, not port 0, so a free port is picked first; another process
# may grab it in between, which a fresh port on the next attempt gets around.
_ATTEMPTS = 3


class MotoServerError(RuntimeError):
    """The moto server could not be started."""


@contextmanager
def run_moto_server() -> Iterator[str]:
    """Starts moto_server, yields its endpoint URL ("http://127.0.0.1:PORT"), stops it at exit."""
    executable = Path(sys.executable).parent / "moto_server"
    if not executable.is_file():
        raise MotoServerError(f"moto_server not found at {executable}; {_INSTALL_HINT}")
    last_log = ""
    for _ in range(_ATTEMPTS):
        port = _free_port()
        # The log goes to a file, not a pipe: moto logs every request, and a pipe nobody reads
        # fills up and blocks the server mid-test.
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(
                [str(executable), "--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if _wait_until_serving(process, port):
                    yield f"http://127.0.0.1:{port}"
                    return
                last_log = _tail(log)
            finally:
                _stop(process)
    raise MotoServerError(
        f"moto_server did not start after {_ATTEMPTS} attempts ({_INSTALL_HINT} if it is "
        f"missing or broken); its last output:\n{last_log}"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_serving(process: subprocess.Popen[bytes], port: int) -> bool:
    """Returns True once the server answers HTTP, False if it exits or never answers."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            # Any HTTP answer will do: the server is up; the status is not the point.
            return True
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-limit:]
