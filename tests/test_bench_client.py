"""`make bench`'s client_upload stays working: a small file printed by every route of the
workstation client against a real fabric, each job intact, the client's memory flat."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import client_upload
from tests.bench.client_upload import MIB, ROUTES, RSS_LIMIT_MIB

pytestmark = pytest.mark.timeout(240)


def test_an_8_mib_file_goes_by_every_route_intact_with_flat_client_memory() -> None:
    outcome = client_upload.run(8 << 20, rounds=1)

    assert outcome.passed, outcome.rows
    assert outcome.name == client_upload.NAME
    assert outcome.baseline.size == 8 << 20
    assert outcome.baseline.mb_per_s > 0
    assert [sent.route for sent in outcome.sent] == list(ROUTES)
    for sent in outcome.sent:
        assert sent.transfer.size == 8 << 20
        assert sent.transfer.mb_per_s > 0, sent
        assert sent.job_number > 0, sent
        assert 0 < sent.peak_rss < RSS_LIMIT_MIB * MIB, sent


def test_peak_rss_counts_the_spawned_command_not_the_bench_process(tmp_path: Path) -> None:
    ballast = bytearray(256 << 20)  # the bench process is big; a spawned `true` is not
    ballast[::4096] = b"\x01" * len(ballast[::4096])

    exited = client_upload.run_client(["/bin/true"], {}, tmp_path, timeout=30)

    assert 0 < exited.peak_rss < 64 * MIB
    assert exited.seconds > 0
