"""The node's directory replica: snapshots built aside, deltas, and log-in from it alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from printfabric import credentials

from node.credential import Card, LoginPassword, Pin
from node.db import NodeDatabase
from node.errors import AuthRefused, ReplicaError
from node.replica import DirectoryDelta, Replica, ReplicaUser, SnapshotChunk

KEY = b"k" * 32
NEW_KEY = b"n" * 32
# One card as two readers deliver it: decimal and hex.
CARD_DECIMAL = "0004512345"
CARD_HEX = f"0x{4512345:X}"


def user(
    user_id: str,
    login: str,
    revision: int,
    *,
    key: bytes = KEY,
    password_hash: str = "",
    pin: str = "",
    cards: tuple[str, ...] = (),
    disabled: bool = False,
) -> ReplicaUser:
    return ReplicaUser(
        user_id=user_id,
        login=login,
        email=f"{login.lower()}@example.com",
        full_name=login.title(),
        department="Finance",
        rights=(1, 2),
        disabled=disabled,
        password_hash=password_hash,
        pin_hash=credentials.pin_hash(key, pin) if pin else "",
        card_hashes=tuple(credentials.card_hash(key, c) for c in cards),
        revision=revision,
    )


def chunk(
    revision: int, users: list[ReplicaUser], *, first: bool, last: bool, key: bytes = KEY
) -> SnapshotChunk:
    return SnapshotChunk(revision, users, first, last, key if first else b"")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[NodeDatabase]:
    database = await NodeDatabase.open(tmp_path / "node.db")
    yield database
    await database.close()


@pytest.fixture
def replica(db: NodeDatabase) -> Replica:
    return Replica(db)


async def logins(replica: Replica, *ids: str) -> list[str | None]:
    found = [await replica.user(i) for i in ids]
    return [u.login if u else None for u in found]


async def test_a_snapshot_is_built_aside_and_swapped_in_on_its_last_chunk(
    replica: Replica,
) -> None:
    await replica.apply_snapshot_chunk(chunk(3, [user("u1", "alice", 1)], first=True, last=True))
    assert await replica.revision() == 3

    assert (
        await replica.apply_snapshot_chunk(
            chunk(
                7,
                [user("u2", "bob", 5, key=NEW_KEY, pin="2468")],
                first=True,
                last=False,
                key=NEW_KEY,
            )
        )
        is None
    )
    # Until `last`, the node still works from the old replica.
    assert await replica.revision() == 3
    assert await logins(replica, "u1", "u2") == ["alice", None]
    assert await replica.authenticate_pin("2468") is None

    swapped = await replica.apply_snapshot_chunk(
        chunk(7, [user("u3", "carol", 6, key=NEW_KEY)], first=False, last=True)
    )
    assert swapped == 7
    assert await replica.revision() == 7
    # A snapshot replaces everything: alice was not in it.
    assert await logins(replica, "u1", "u2", "u3") == [None, "bob", "carol"]
    found = await replica.authenticate_pin("2468")
    assert found is not None and found.login == "bob"
    state = await replica.state()
    assert (state.users, state.staging_revision) == (2, None)


async def test_a_snapshot_cut_in_the_middle_leaves_the_old_replica_intact(
    tmp_path: Path, db: NodeDatabase, replica: Replica
) -> None:
    await replica.apply_snapshot_chunk(
        chunk(4, [user("u1", "alice", 2, pin="1357")], first=True, last=True)
    )
    await replica.apply_snapshot_chunk(
        chunk(
            9, [user("u2", "bob", 8, key=NEW_KEY, pin="1357")], first=True, last=False, key=NEW_KEY
        )
    )
    # The link drops and the node restarts before the rest of the snapshot arrives.
    await db.close()
    reopened = await NodeDatabase.open(tmp_path / "node.db")
    try:
        again = Replica(reopened)
        assert await again.revision() == 4
        found = await again.authenticate_pin("1357")
        assert found is not None and found.login == "alice"
        assert (await again.state()).staging_revision == 9

        # The next connection's snapshot starts over with its own first chunk.
        await again.apply_snapshot_chunk(
            chunk(10, [user("u3", "carol", 10, key=NEW_KEY)], first=True, last=True)
        )
        assert await logins(again, "u1", "u2", "u3") == [None, None, "carol"]
        assert await again.revision() == 10
    finally:
        await reopened.close()


async def test_a_chunk_of_a_snapshot_that_never_started_is_refused(replica: Replica) -> None:
    await replica.apply_snapshot_chunk(chunk(2, [user("u1", "alice", 1)], first=True, last=True))
    with pytest.raises(ReplicaError) as refused:
        await replica.apply_snapshot_chunk(
            chunk(5, [user("u9", "mallory", 5)], first=False, last=True)
        )
    assert refused.value.reason == "SNAPSHOT_OUT_OF_ORDER"
    assert await replica.revision() == 2
    assert await logins(replica, "u1", "u9") == ["alice", None]


async def test_deltas_upsert_delete_and_never_roll_a_user_back(replica: Replica) -> None:
    await replica.apply_snapshot_chunk(
        chunk(
            10,
            [user("u1", "alice", 9, cards=(CARD_DECIMAL,)), user("u2", "bob", 10, pin="1111")],
            first=True,
            last=True,
        )
    )
    held = await replica.apply_delta(
        DirectoryDelta(
            from_revision=10,
            to_revision=12,
            upserts=[
                # The card moves from alice to carol (a new user); bob is renamed.
                user("u1", "alice", 11),
                user("u3", "carol", 12, cards=(CARD_DECIMAL,)),
                user("u2", "Robert", 12, pin="1111"),
            ],
        )
    )
    assert held == await replica.revision() == 12
    assert await logins(replica, "u1", "u2", "u3") == ["alice", "Robert", "carol"]
    owner = await replica.authenticate_card(CARD_HEX)
    assert owner is not None and owner.login == "carol"

    # A stale copy of bob (an overlap after a reconnect) changes nothing.
    await replica.apply_delta(
        DirectoryDelta(10, 11, [user("u2", "bob", 10, pin="1111")], deleted_user_ids=["u1"])
    )
    assert await logins(replica, "u1", "u2") == [None, "Robert"]
    assert await replica.revision() == 12


async def test_local_log_in_by_password_pin_and_card(replica: Replica) -> None:
    encoded = credentials.hash_password("s3cret pass")
    await replica.apply_snapshot_chunk(
        chunk(
            1,
            [
                user(
                    "u1",
                    "Alice.Smith",
                    1,
                    password_hash=encoded,
                    pin="024680",
                    cards=(CARD_DECIMAL,),
                )
            ],
            first=True,
            last=True,
        )
    )
    # Logins are case-insensitive, as in the cloud.
    by_password = await replica.authenticate(LoginPassword(" alice.smith", "s3cret pass"))
    by_pin = await replica.authenticate(Pin("024680"))
    by_hex = await replica.authenticate(Card(CARD_HEX))
    by_decimal = await replica.authenticate(Card("4512345"))
    by_reader = await replica.authenticate(Card("44-da-59"))
    for found in (by_password, by_pin, by_hex, by_decimal, by_reader):
        assert found is not None and found.user_id == "u1"
    assert by_pin is not None and by_pin.rights == (1, 2)

    with pytest.raises(AuthRefused) as wrong:
        await replica.authenticate(LoginPassword("alice.smith", "guess"))
    assert wrong.value.reason == "BAD_CREDENTIALS"
    with pytest.raises(AuthRefused) as malformed:
        await replica.authenticate(Pin("12"))
    assert malformed.value.reason == "INVALID_PIN"
    # What the replica does not know is not a refusal: the cloud may know it.
    assert await replica.authenticate(LoginPassword("nobody", "x")) is None
    assert await replica.authenticate(Pin("999999")) is None
    assert await replica.authenticate(Card("0x1234")) is None


async def test_a_disabled_user_is_refused_with_a_reason(replica: Replica) -> None:
    encoded = credentials.hash_password("pw")
    disabled = user(
        "u1", "dave", 3, password_hash=encoded, pin="5555", cards=("abc123",), disabled=True
    )
    await replica.apply_snapshot_chunk(chunk(3, [disabled], first=True, last=True))
    for credential in (LoginPassword("dave", "pw"), Pin("5555"), Card("ABC123")):
        with pytest.raises(AuthRefused) as refused:
            await replica.authenticate(credential)
        assert refused.value.reason == "USER_DISABLED"
        assert "dave is disabled" in refused.value.message


async def test_without_a_credential_key_pins_and_cards_are_unknown_here(replica: Replica) -> None:
    assert await replica.authenticate(Pin("1234")) is None
    assert await replica.authenticate(Card("1234")) is None


async def test_a_node_moved_to_another_company_starts_its_replica_over(replica: Replica) -> None:
    assert await replica.claim("ACME") == 0
    await replica.apply_snapshot_chunk(chunk(6, [user("u1", "alice", 6)], first=True, last=True))
    assert await replica.record_welcome("tenant-a", "node-1")
    assert await replica.claim("acme") == 6
    assert await replica.claim("GLOBEX") == 0
    assert await logins(replica, "u1") == [None]
    # The same code but a different tenant (the cloud's database was replaced): start over.
    await replica.apply_snapshot_chunk(chunk(2, [user("u2", "bob", 2)], first=True, last=True))
    assert await replica.record_welcome("tenant-b", "node-1")
    assert not await replica.record_welcome("tenant-c", "node-1")
    assert await replica.revision() == 0
