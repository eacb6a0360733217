from __future__ import annotations

import time

import pytest

from functions.core.ddb import ConditionFailed
from functions.core.grants import CachedGrants, InMemoryGrantRepository
from tests.helpers import grant


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cache_serves_within_ttl_and_rereads_after() -> None:
    repo, clock = InMemoryGrantRepository(), Clock()
    repo.create(grant())
    cache = CachedGrants(repo, ttl_seconds=10, clock=clock)
    assert cache.get("origin-alice") is not None
    repo.revoke("origin-alice", "test", int(time.time()))
    clock.now += 9.9
    assert cache.get("origin-alice").status == "active"  # still cached: bounded staleness
    clock.now += 0.2
    assert cache.get("origin-alice").status == "revoked"  # revocation bites after the TTL
    assert repo.reads == 2


def test_ttl_zero_disables_cache() -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant())
    cache = CachedGrants(repo, ttl_seconds=0)
    cache.get("origin-alice")
    cache.get("origin-alice")
    assert repo.reads == 2


def test_misses_are_cached_too() -> None:
    repo, clock = InMemoryGrantRepository(), Clock()
    cache = CachedGrants(repo, ttl_seconds=10, clock=clock)
    for _ in range(20):
        assert cache.get("nope") is None
    assert repo.reads == 1


def test_cache_is_bounded() -> None:
    repo = InMemoryGrantRepository()
    cache = CachedGrants(repo, ttl_seconds=10)
    for i in range(CachedGrants.MAX_ENTRIES + 50):
        cache.get(f"g{i}")
    assert len(cache._entries) == CachedGrants.MAX_ENTRIES


def test_expired_grant_is_not_active() -> None:
    g = grant(expires_at=int(time.time()) - 1)
    assert not g.is_active(time.time())


def test_create_is_conditional_and_revoke_only_once() -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant())
    with pytest.raises(ConditionFailed):
        repo.create(grant())
    assert repo.revoke("origin-alice", "user", 1) is True
    assert repo.revoke("origin-alice", "user", 2) is False
