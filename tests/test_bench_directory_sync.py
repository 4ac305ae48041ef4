"""`make bench`'s directory_sync stays working: printfabric-sync from a small slapd into a real
cloud, in full and then incrementally, with every count right and both baselines measured."""

from __future__ import annotations

import pytest

from tests.bench import directory_sync
from tests.bench.directory_sync import CHANGED, DISABLED, REMOVED
from tests.support.processes import require_peer

pytestmark = pytest.mark.timeout(180)

USERS = 500


def test_500_users_synced_in_full_then_incrementally_against_ldapsearch_and_a_direct_push() -> None:
    for program, package in (("slapd", "slapd"), ("ldapsearch", "ldap-utils")):
        require_peer(program, package)

    outcome = directory_sync.run(USERS, rounds=1)

    assert outcome.passed, outcome.rows
    assert outcome.name == directory_sync.NAME
    assert outcome.users == USERS
    assert len(outcome.reads) == 1 and outcome.read.seconds > 0
    assert outcome.push_seconds > 0
    full, incremental = outcome.full.summary, outcome.incremental.summary
    assert [full[k] for k in ("entries", "created", "pushed", "full")] == [USERS] * 3 + [True]
    assert outcome.unchanged.summary["pushed"] == 0
    changes = [incremental[k] for k in ("updated", "disabled", "removed", "pushed")]
    assert changes == [CHANGED, DISABLED, REMOVED, CHANGED + DISABLED + REMOVED]
    for run in (outcome.full, outcome.unchanged, outcome.incremental):
        assert 0 < run.seconds < run.wall, run
        assert run.peak_rss > 0, run
    assert outcome.startup.peak_rss > 0
