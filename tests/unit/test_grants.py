from __future__ import annotations

import time
from typing import Any

import pytest

from functions.core.clients.records import ClientRecord
from functions.core.platform.ddb import ConditionFailed
from functions.core.platform.errors import DependencyError
from functions.core.state.client_bound_grants import CLIENT_GONE, ClientBoundGrants
from functions.core.state.grants import CachedGrants
from tests.facade_fakes import Facade, approve
from tests.fakes.clients import InMemoryClientStore
from tests.fakes.state import InMemoryGrantRepository
from tests.helpers import grant
from tests.unit.test_token import code_form, exchange, refused


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


# ----- a grant counts only while its registered client exists (RFC 7592 section 2.3) ------

REGISTERED = "Zx8pQ2aV0mN4bT6cY1eW3g"  # the shape of a DCR client_id
CIMD = "https://app.example.com/client.json"


def _client_store(*client_ids: str, idle_days: int = 30) -> InMemoryClientStore:
    store = InMemoryClientStore(idle_days=idle_days)
    for cid in client_ids:
        store.create(
            ClientRecord(client_id=cid, kind="registered", redirect_uris=("https://a.example/cb",), **PUBLIC_METHOD),
            max_clients=10,
            now=int(time.time()),
        )
    return store


PUBLIC_METHOD: dict[str, Any] = {"token_endpoint_auth_method": "none", "registration_access_token_hash": "h"}


class CountingClients:
    def __init__(self, store: InMemoryClientStore, fail: bool = False) -> None:
        self.store, self.fail, self.reads = store, fail, 0

    def get(self, client_id: str, now: int) -> ClientRecord | None:
        self.reads += 1
        if self.fail:
            raise DependencyError("clients table down")
        return self.store.get(client_id, now)


def test_a_deleted_clients_grant_is_revoked_within_the_cache_ttl() -> None:
    repo, clock = InMemoryGrantRepository(), Clock()
    repo.create(grant(client_id=REGISTERED))
    store = _client_store(REGISTERED)
    clients = CountingClients(store)
    cache = CachedGrants(ClientBoundGrants(repo, clients), ttl_seconds=10, clock=clock)
    assert cache.get("origin-alice").is_active(time.time())
    record = store.get(REGISTERED, int(time.time()))
    assert record is not None and store.delete(record, expected_token_hash="h")
    clock.now += 9.9
    assert cache.get("origin-alice").is_active(time.time())  # cached with its grant: bounded staleness
    clock.now += 0.2
    gone = cache.get("origin-alice")
    assert gone is not None and not gone.is_active(time.time())
    assert (gone.status, gone.revoked_reason) == ("revoked", CLIENT_GONE)
    assert clients.reads == 2 and repo.reads == 2  # one client read per grant read, none per cached hit


def test_an_idle_expired_clients_grant_is_inactive() -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant(client_id=REGISTERED))
    store = _client_store(REGISTERED)
    item = store.items["CLIENT#" + REGISTERED]
    item["ttl"] = int(time.time()) - 1  # past its idle expiry; DynamoDB's TTL has not removed it yet
    assert not ClientBoundGrants(repo, store).get("origin-alice").is_active(time.time())


def test_an_unknown_registered_client_makes_the_grant_inactive() -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant(client_id=REGISTERED))
    assert ClientBoundGrants(repo, _client_store()).get("origin-alice").status == "revoked"


@pytest.mark.parametrize("client_id", [CIMD, "devtoken-cli", "agent-1"])
def test_grants_of_clients_without_a_registration_are_governed_by_the_grant(client_id: str) -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant(client_id=client_id))
    clients = CountingClients(_client_store())
    assert ClientBoundGrants(repo, clients).get("origin-alice").status == "active"
    assert clients.reads == 0


def test_inactive_or_missing_grants_skip_the_client_read() -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant(client_id=REGISTERED))
    repo.revoke("origin-alice", "test", int(time.time()))
    clients = CountingClients(_client_store(REGISTERED))
    bound = ClientBoundGrants(repo, clients)
    assert bound.get("origin-alice").revoked_reason == "test"
    assert bound.get("origin-nobody") is None
    assert clients.reads == 0


def test_a_failed_client_lookup_is_a_dependency_error_never_an_allow() -> None:
    repo = InMemoryGrantRepository()
    repo.create(grant(client_id=REGISTERED))
    cache = CachedGrants(ClientBoundGrants(repo, CountingClients(_client_store(REGISTERED), fail=True)), 10)
    with pytest.raises(DependencyError):
        cache.get("origin-alice")
    with pytest.raises(DependencyError):  # a failure is not cached as an answer either
        cache.get("origin-alice")


# ----- code redemption and refresh of a deleted client ------------------------------------


def test_code_of_a_deleted_client_is_not_redeemed() -> None:
    facade = Facade()
    code = approve(facade)["code"]
    del facade.resolver.clients["public-agent"]
    refused(lambda: facade.token().token(code_form(code), ""), "invalid_client", 401)


def test_refresh_of_a_deleted_client_is_refused() -> None:
    facade = Facade()
    tokens = exchange(facade)
    del facade.resolver.clients["public-agent"]
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "public-agent"}
    refused(lambda: facade.token().token(form, ""), "invalid_client", 401)


def test_a_registered_client_id_is_exactly_the_issued_shape() -> None:
    from functions.core.clients.ids import REGISTERED_CLIENT_ID

    assert REGISTERED_CLIENT_ID.match("A" * 22)
    # Not with a trailing newline (a "$" would allow it), not too short, not URL-shaped.
    assert not REGISTERED_CLIENT_ID.match("A" * 22 + "\n")
    assert not REGISTERED_CLIENT_ID.match("A" * 15)
    assert not REGISTERED_CLIENT_ID.match("https://agent.example")


def test_an_older_read_finishing_late_never_replaces_a_newer_answer() -> None:
    from functions.core.state.grants import CachedGrants

    repo = InMemoryGrantRepository()
    repo.create(grant("origin-alice", "sub-alice", ("notes:read",)))
    now = [0.0]
    reads: list[float] = []

    class LateReader:
        def get(self, grant_id: str) -> object:
            reads.append(now[0])
            seen = repo.get(grant_id)  # the first read starts at 0 and sees the grant active...
            if len(reads) == 1:
                repo.revoke(grant_id, "user_revoked", 1)
                now[0] = 5.0
                cache.get(grant_id)  # ...a read started at 5 sees it revoked...
            return seen  # ...and the first one finishes last

    cache = CachedGrants(LateReader(), 10, clock=lambda: now[0])
    cache.get("origin-alice")
    now[0] = 6.0
    # The revocation this container has seen stays seen.
    assert cache.get("origin-alice").status == "revoked"
