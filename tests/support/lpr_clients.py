"""Real LPR clients (rlpr, the CUPS lpd backend) that print one document to an LPD server.

Each runs as a child process without blocking the event loop and is killed (by its own pid) if
it takes longer than timeout; a failure raises AssertionError with what the client said. Both
stream the document from disk, so they are fit for jobs of hundreds of megabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.processes import require_peer

__all__ = ["cups_lpd_backend", "rlpr"]

CUPS_LPD_BACKEND = "/usr/lib/cups/backend/lpd"
_PRINTER_SERVICE = re.compile(r"^printer\s.*$", re.MULTILINE)


async def rlpr(
    host: str,
    port: int,
    queue: str,
    document: Path,
    *,
    user: str,
    tmp: Path,
    timeout: float = 120,  # noqa: ASYNC109  (the whole run, the child is killed after it)
) -> None:
    """Prints document with `rlpr` as user (its P line), file type 'l' (print as is).

    rlpr has no port option for LPD: it takes the port from the `printer` entry of
    /etc/services. The child runs in a mount namespace of its own (`unshare -m`; not root:
    `unshare -rm`, in a user namespace too) where a copy of that file in tmp, naming port, is
    bind-mounted over it; the host's file is untouched. rlpr's own inactivity timer (3 s by
    default) would give up on a server that takes a while to acknowledge a big job, so it gets
    timeout as well. File type 'l' because the document is sent as it is (a PDF or PostScript
    file is not text for `pr`, rlpr's default 'f').
    """
    program = require_peer("rlpr", "rlpr")
    unshare = require_peer("unshare", "util-linux")
    services = tmp / f"services-{port}"
    await asyncio.to_thread(_write_services, services, port)
    argv = [
        program,
        "-N",  # no privileged source port: that needs setuid and proves nothing
        "-l",
        f"--user={user}",
        f"--timeout={max(1, int(timeout))}",
        f"--tmpdir={tmp}",
        "-H",
        host,
        "-P",
        queue,
        str(document),
    ]
    namespaces = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
    script = 'mount --bind "$0" /etc/services && exec "$@"'
    command = [unshare, *namespaces, "sh", "-c", script, str(services), *argv]
    await _run("rlpr", command, None, timeout)


async def cups_lpd_backend(
    host: str,
    port: int,
    queue: str,
    document: Path,
    *,
    user: str,
    title: str,
    order: str = "control,data",
    timeout: float = 120,  # noqa: ASYNC109  (the whole run, the child is killed after it)
) -> None:
    """Prints document with CUPS's lpd backend, run as cupsd would run it: argv is job id,
    user (its P line), title (its J and N lines), copies, options, file; DEVICE_URI says where.

    order is "control,data" (the default, as RFC 1179 describes) or "data,control" (as BSD lpr
    sends). reserve=none keeps it from binding source port 1023 as root; snmp=false keeps it
    from asking the "printer" for its page counter; contimeout bounds its connection retries.
    """
    backend = require_peer(CUPS_LPD_BACKEND, "cups")
    where = f"[{host}]" if ":" in host else host
    uri = (
        f"lpd://{where}:{port}/{queue}?reserve=none&snmp=false&order={order}"
        f"&contimeout={max(1, int(timeout))}"
    )
    env = dict(os.environ, DEVICE_URI=uri)
    argv = [backend, "1", user, title, "1", "", str(document)]
    await _run("the CUPS lpd backend", argv, env, timeout)


def _write_services(path: Path, port: int) -> None:
    """/etc/services with the `printer` entry pointing at port."""
    try:
        text = Path("/etc/services").read_text("utf-8", "replace")
    except OSError:
        text = ""
    text = _PRINTER_SERVICE.sub("", text)
    path.write_text(f"{text.rstrip()}\nprinter\t\t{port}/tcp\t\tspooler\n", "utf-8")


async def _run(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    timeout: float,  # noqa: ASYNC109
) -> None:
    child = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else dict(env),
    )
    assert child.stdout is not None and child.stderr is not None
    # Read both pipes from the start: a child blocked on a full pipe would never finish.
    said = asyncio.gather(child.stdout.read(), child.stderr.read())
    late = ""
    try:
        async with asyncio.timeout(timeout):
            await child.wait()
    except TimeoutError:
        late = f"{name} did not finish within {timeout:g} s"
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    try:
        async with asyncio.timeout(5):
            out, err = await said
    except TimeoutError:
        said.cancel()
        out, err = b"", b"(its output did not end)"
    if late:
        raise AssertionError(f"{late}:\n{_said(out, err)}")
    if child.returncode != 0:
        raise AssertionError(f"{name} exited with {child.returncode}:\n{_said(out, err)}")


def _said(out: bytes, err: bytes) -> str:
    """The tail of what a client wrote (the CUPS backend says everything on stderr)."""
    text = (out.decode("utf-8", "replace") + err.decode("utf-8", "replace")).strip()
    return text[-4000:] or "(nothing)"
