"""Client counting keys (docs/storage-schema.md): every live client is in a counted bucket, an
expired bucket is never read, and one BatchGetItem (at most 100 keys) reads them all."""

from __future__ import annotations

import pytest

from functions.core.clients.store import DAY
from functions.core.clients.store_count import (
    bucket_seconds,
    counter_key,
    counter_ttl,
    live_counter_keys,
)

NOW = 1_800_000_123


@pytest.mark.parametrize("idle_days", [1, 2, 7, 8, 9, 30, 90, 365, 3650])
def test_live_clients_are_counted_and_expired_buckets_are_not(idle_days: int) -> None:
    idle, width = idle_days * DAY, bucket_seconds(idle_days * DAY)
    live = set(live_counter_keys(NOW, idle))
    assert len(live) <= 100  # BatchGetItem's limit
    step = max(1, idle // 500)
    for ttl in range(NOW + 1, NOW + idle + 1, step):  # every ttl a write made up to now can have
        assert counter_key("client-a", ttl, width) in live
    # A bucket is read only while it can hold a live client: the bucket of a ttl more than one
    # width in the past is never read (that is all the over-count there can be).
    assert counter_key("client-a", NOW - width, width) not in live


def test_buckets_expire_after_their_clients() -> None:
    width = bucket_seconds(30 * DAY)
    assert width == 4 * DAY
    for ttl in (NOW, NOW + 1, NOW + width - 1):
        assert counter_ttl(counter_key("c", ttl, width)) >= ttl + width - 1


def test_shards_spread_clients() -> None:
    width = bucket_seconds(30 * DAY)
    shards = {counter_key(f"client-{n}", NOW, width).rsplit("#", 1)[1] for n in range(64)}
    assert len(shards) > 1
