"""Client counting on DynamoDB (moto): the cap holds, expiry frees capacity, no Scan anywhere,
and concurrent registrations neither conflict nor 503 (docs/storage-schema.md, clients table)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from functions.core.clients.records import ClientRecord
from functions.core.clients.store import ClientLimitReached, DynamoClientStore
from functions.core.clients.store_count import COUNTER_PREFIX
from functions.core.platform.crypto import sha256_hex
from tests.integration.conftest import MotoStack

DAY = 86_400


class ScanCalled(AssertionError):
    pass


@pytest.fixture
def ddb(moto_stack: MotoStack) -> Iterator[Any]:
    """A clients table and a client that fails any Scan and records every transaction."""
    client = boto3.client("dynamodb")
    name = f"clients-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.transactions = []  # type: ignore[attr-defined]

    def no_scan(**_: Any) -> None:
        raise ScanCalled("a Scan on a request path")

    def record(params: dict[str, Any], **_: Any) -> None:
        client.transactions.append(params["TransactItems"])  # type: ignore[attr-defined]

    client.meta.events.register("before-call.dynamodb.Scan", no_scan)
    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", record)
    client.table = name  # type: ignore[attr-defined]
    yield client
    client.delete_table(TableName=name)


def _record(n: int) -> ClientRecord:
    return ClientRecord(
        client_id=f"client-{n:04d}-{uuid.uuid4().hex[:8]}",
        kind="registered",
        redirect_uris=("https://a.example/cb",),
        token_endpoint_auth_method="client_secret_basic",
        metadata={"redirect_uris": ["https://a.example/cb"]},
        registration_access_token_hash=sha256_hex(f"rat-{n}"),
    )


def test_the_hook_catches_a_scan(ddb: Any) -> None:
    with pytest.raises(ScanCalled):
        ddb.scan(TableName=ddb.table)


def test_cap_holds_and_expiry_frees_capacity_without_scan(ddb: Any) -> None:
    store = DynamoClientStore(ddb.table, idle_days=30, client=ddb)
    now = 1_800_000_000
    first = store.create(_record(1), max_clients=2, now=now)
    store.create(_record(2), max_clients=2, now=now + 20 * DAY)
    for _ in range(3):  # refused every time, and refusing changes no count
        with pytest.raises(ClientLimitReached):
            store.create(_record(3), max_clients=2, now=now + 20 * DAY)
    assert store.get(first.client_id, now + 35 * DAY) is None  # idled out; TTL has not deleted it
    store.create(_record(4), max_clients=2, now=now + 35 * DAY)
    with pytest.raises(ClientLimitReached):
        store.create(_record(5), max_clients=2, now=now + 35 * DAY)


def test_delete_and_refresh_keep_the_count(ddb: Any) -> None:
    store = DynamoClientStore(ddb.table, idle_days=30, client=ddb)
    now = 1_800_000_000
    a = store.create(_record(1), max_clients=2, now=now)
    # Used every day for 60 days: its ttl moves through many buckets, it stays counted once.
    for day in range(1, 61):
        a = store.touch(a, now + day * DAY)
    later = now + 60 * DAY
    store.create(_record(2), max_clients=2, now=later)
    with pytest.raises(ClientLimitReached):
        store.create(_record(3), max_clients=2, now=later)
    assert store.delete(a, expected_token_hash=sha256_hex("rat-1"))
    store.create(_record(3), max_clients=2, now=later)


def test_registrations_share_no_item(ddb: Any) -> None:
    """No counter in any transaction: concurrent registrations cannot conflict (no 503)."""
    store = DynamoClientStore(ddb.table, idle_days=30, client=ddb)
    for n in range(3):
        store.create(_record(n), max_clients=10, now=1_800_000_000)
    keys = [next(iter(op.values()))["Item"]["pk"]["S"] for items in ddb.transactions for op in items]
    assert len(keys) == 3 and not any(k.startswith(COUNTER_PREFIX) for k in keys)


@pytest.fixture
def atomic_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each write atomically; moto's in-process backend, shared by the server's
    request threads, does not (two concurrent ADDs to the counter can lose one). One lock around
    moto's writes gives the test DynamoDB's atomicity, and the requests still race each other."""
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()  # transact_write_items calls the others
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


@pytest.mark.usefixtures("atomic_writes")
def test_concurrent_registrations_all_succeed(ddb: Any) -> None:
    store = DynamoClientStore(ddb.table, idle_days=30, client=ddb)
    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(lambda n: store.create(_record(n), max_clients=100, now=1_800_000_000), range(12)))
    assert len({r.client_id for r in done}) == 12
    with pytest.raises(ClientLimitReached):  # exactly 12 counted: a cap of 12 is now full
        store.create(_record(99), max_clients=12, now=1_800_000_000)
