"""The in-memory client store (tests/fakes/clients.py) behaves as ``DynamoClientStore`` (moto,
in process): the same answers to the same registration scenario, and the same items left."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.records import ClientRecord
from functions.core.clients.store import DEDUPE_PREFIX, ClientLimitReached, DedupeConflict, DynamoClientStore
from functions.core.platform.ddb import from_item
from tests.fakes.clients import InMemoryClientStore
from tests.fakes.dynamodb import in_process_tables

T = 1_800_000_000
DAY = 86_400


def _record(client_id: str, *, public: bool, dedupe_key: str | None = None) -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        kind="registered",
        redirect_uris=("https://a.example/cb",),
        token_endpoint_auth_method="none" if public else "client_secret_basic",
        metadata={"redirect_uris": ["https://a.example/cb"], "client_name": client_id},
        client_name=client_id,
        client_secret_hash=None if public else "secret-hash",
        registration_access_token_hash=f"rat-{client_id}",
        client_id_issued_at=T,
        dedupe_key=dedupe_key,
    )


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (DedupeConflict, ClientLimitReached) as exc:
        return type(exc).__name__


def _scenario(store: Any) -> list[Any]:
    """Every store operation, each in its winning and its losing case."""
    a = _record("public-client-aaaaaaa", public=True, dedupe_key="d1")
    b = _record("confidential-bbbbbbb", public=False)
    out: list[Any] = []
    created_a = store.create(a, max_clients=2, now=T)
    created_b = store.create(b, max_clients=2, now=T)
    out += [created_a, created_b]
    out.append(_outcome(lambda: store.create(replace(a, client_id="public-client-ccccccc"), max_clients=9, now=T)))
    out.append(_outcome(lambda: store.create(_record("third-client-ddddddd", public=False), max_clients=2, now=T)))
    out.append(store.find_by_dedupe("d1", T))
    out.append(store.find_by_dedupe("unknown", T))
    shared = store.add_registration_token(created_a, "rat-2", T + 10)
    out.append(shared)
    out.append(store.add_registration_token(created_a, "rat-3", T + 11))  # stale: re-read
    out.append(store.update(created_b, expected_token_hash="wrong", now=T + 20))
    changed = replace(created_b, metadata={**created_b.metadata, "client_name": "renamed"}, client_secret_hash=None)
    out.append(store.update(changed, expected_token_hash="rat-confidential-bbbbbbb", now=T + 20))
    current = store.get(b.client_id, T + 30)
    out.append(current)
    out.append(store.touch(current, T + 40))  # within a day: unchanged
    out.append(store.touch(current, T + 2 * DAY))
    out.append(store.delete(created_a, expected_token_hash="wrong"))
    out.append(store.delete(shared, expected_token_hash="rat-2"))
    out.append(store.get(a.client_id, T + 50))
    out.append(store.find_by_dedupe("d1", T + 50))
    out.append(store.get(b.client_id, T + 2 * DAY + 31 * DAY))  # idle-expired
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DynamoClientStore, Any]]:
    with in_process_tables(monkeypatch, "clients") as ddb:
        yield DynamoClientStore("clients", idle_days=30, client=ddb), ddb


def test_the_in_memory_store_answers_as_dynamodb(dynamo: tuple[DynamoClientStore, Any]) -> None:
    store, ddb = dynamo
    memory = InMemoryClientStore(idle_days=30)
    assert _scenario(memory) == _scenario(store)
    stored = {
        i["pk"]["S"]: {k: _plain(v) for k, v in from_item(i).items()}
        for i in ddb.scan(TableName="clients")["Items"]  # a test's look at the table, not a request path
        if i["pk"]["S"].startswith((CLIENT_PREFIX, DEDUPE_PREFIX))
    }
    kept = {k: v for k, v in memory.items.items() if k.startswith((CLIENT_PREFIX, DEDUPE_PREFIX))}
    assert kept == stored
    assert set(stored) == {CLIENT_PREFIX + "confidential-bbbbbbb"}
    now = T + 2 * DAY
    assert memory.counted(now) == store._count.total(now) == 1
