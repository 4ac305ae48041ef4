"""`make bench`'s lpd_receive stays working: a small job through the node's LPD server from a
client process, checked against its baseline copy and stored byte for byte."""

from __future__ import annotations

import pytest

from tests.bench import lpd_receive
from tests.bench.spool_1gib import MB

pytestmark = pytest.mark.timeout(120)


def test_an_8_mib_job_reaches_the_node_intact_with_flat_memory() -> None:
    outcome = lpd_receive.run(8 << 20)

    assert outcome.passed, outcome.rows
    assert outcome.name == lpd_receive.NAME
    assert outcome.baseline.size == outcome.lpd.size == 8 << 20
    assert outcome.baseline.mb_per_s > 0
    assert outcome.lpd.mb_per_s > 0
    assert 0 <= outcome.rss_growth < lpd_receive.RSS_GROWTH_LIMIT_MB * MB
