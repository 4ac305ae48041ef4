"""A job the gateway answered successful-ok for is on disk: kill -9 of the fabric loses none.

cupsd, by default, keeps a new job's state in memory for up to 30 s (DirtyCleanInterval) and
loses what it accepted in that time to a crash. The fabric answers only after the job row has
committed and the document is in the blob store, and this is what the bench's acceptance rate
pays for (bench gateway_ipp compares with a cupsd that writes each job at once, too).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from printfabric.blobtokens import blob_path
from pypdf import PdfWriter

from tests.support.cups import ipptool_print_rate
from tests.support.gateway import running_fabric
from tests.support.processes import read_only_sqlite

JOBS = 40

_HELD_JOBS = """
SELECT j.title, j.sha256, j.size_bytes, j.blob_key
FROM jobs j JOIN printers p ON p.id = j.printer_id
WHERE p.name = 'secure' AND j.title LIKE 'bench-%'
"""


def _document(path: Path) -> Path:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(path)
    return path


def test_every_job_answered_survives_kill_9_of_the_whole_fabric(tmp_path: Path) -> None:
    home = tmp_path / "fabric"
    document = _document(tmp_path / "small.pdf")
    with running_fabric(home) as fabric:
        # Fails unless every one of the JOBS Print-Jobs was answered successful-ok.
        ipptool_print_rate(
            fabric.uri("secure"), document, count=JOBS, workdir=tmp_path, concurrency=2
        )
        fabric.kill9()
    # The fabric comes back from what it left on disk, as `make run` would after a crash.
    with running_fabric(home), read_only_sqlite(home / "cloud" / "cloud.db") as db:
        held = db.execute(_HELD_JOBS).fetchall()
    expected = hashlib.sha256(document.read_bytes()).hexdigest()
    assert sorted(title for title, *_ in held) == sorted(
        f"bench-{n}" for share in (JOBS // 2, JOBS - JOBS // 2) for n in range(1, share + 1)
    )
    for title, sha256, size, key in held:
        data = blob_path(home / "blobs", key).read_bytes()
        assert (sha256, size) == (expected, document.stat().st_size), title
        assert hashlib.sha256(data).hexdigest() == expected, f"{title}: the document differs"
