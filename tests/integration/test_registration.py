"""The registration function's real Lambda handler and the DynamoDB repositories, against moto.

Table contents are asserted directly: secrets only as hashes, the DEDUPE and COUNTER items,
nothing stored on rejection, TTLs, the rate-limit counters in the artefacts table.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.core.clients.cimd import CimdResolver
from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.records import ClientRecord
from functions.core.clients.resolver import KitClientResolver
from functions.core.clients.store import DEDUPE_PREFIX, ClientLimitReached, DedupeConflict, DynamoClientStore
from functions.core.clients.store_count import DynamoClientCounter
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.ddb import from_item
from functions.core.platform.errors import DependencyError
from functions.core.platform.routes import ROUTES
from functions.core.platform.settings import RegistrationSettings
from functions.core.state.ratelimit import DynamoRateLimiter
from functions.registration.api import make_handler
from functions.registration.service import RegistrationService
from local.config import ARTEFACTS_TABLE, CLIENTS_TABLE
from local.gateway import build_event
from tests.helpers import FakeContext
from tests.integration.conftest import MotoStack
from tests.unit.metadata_docs import meta

PUBLIC: dict[str, Any] = meta(client_name="Integration Agent")


def call(
    handler: Any,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    token: str | None = None,
    source_ip: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    template = "/register/{client_id}" if path.startswith("/register/") else path
    route = next(r for r in ROUTES if r.method == method and r.path == template)
    headers = [("content-type", "application/json")]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    event = build_event(
        method=method,
        path=path,
        raw_query="",
        headers=headers,
        body=raw if raw is not None else b"" if body is None else json.dumps(body).encode(),
        route=route,
        params={"client_id": path.rsplit("/", 1)[1]} if template != path else None,
        source_ip=source_ip or f"198.51.100.{uuid.uuid4().int % 250}",
    )
    result = handler(event, FakeContext())
    headers_out = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    text = result.get("body") or ""
    return int(result["statusCode"]), headers_out, json.loads(text) if text else None


def item(table: str, pk: str) -> dict[str, Any] | None:
    resp = boto3.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
    return from_item(resp["Item"]) if "Item" in resp else None


def scan(table: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(from_item(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture(scope="module")
def handler(moto_stack: MotoStack) -> Any:
    module = importlib.import_module("functions.registration.handler")
    return importlib.reload(module).handler  # built from this stack's environment


@pytest.fixture
def fresh_table(moto_stack: MotoStack) -> Iterator[str]:
    """An empty clients table, for tests that need an exact counter."""
    name = f"clients-{uuid.uuid4().hex[:8]}"
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    ddb.delete_table(TableName=name)


def service(table: str, now: list[float], **settings: Any) -> Any:
    values: dict[str, Any] = {
        "base_url": "http://localhost:8000",
        "clients_table": table,
        "artefacts_table": ARTEFACTS_TABLE,
    }
    values.update(settings)
    cfg = RegistrationSettings(**values)
    store = DynamoClientStore(table, idle_days=cfg.client_idle_days)
    svc = RegistrationService(cfg, store, DynamoRateLimiter(ARTEFACTS_TABLE, clock=lambda: now[0]), lambda: now[0])
    return make_handler(lambda: svc)


def test_register_read_update_delete_through_dynamodb(handler: Any) -> None:
    meta = {**PUBLIC, "client_name": f"crud-{uuid.uuid4().hex}"}
    status, headers, body = call(handler, "POST", "/register", body=meta)
    assert status == 201
    assert headers["cache-control"] == "no-store"
    cid, token = body["client_id"], body["registration_access_token"]
    stored = item(CLIENTS_TABLE, CLIENT_PREFIX + cid)
    assert stored is not None
    assert stored["kind"] == "client"
    assert stored["registration_access_token_hash"] == sha256_hex(token)
    assert token not in json.dumps(stored, default=str)
    assert json.loads(stored["metadata"])["client_name"] == meta["client_name"]
    assert int(stored["ttl"]) == int(stored["last_used_at"]) + 30 * 86_400
    dedupe = item(CLIENTS_TABLE, DEDUPE_PREFIX + stored["dedupe_key"])
    assert dedupe is not None
    assert dedupe["client_id"] == cid
    assert dedupe["ttl"] == stored["ttl"]

    status, _, read = call(handler, "GET", f"/register/{cid}", token=token)
    assert status == 200
    assert read["client_name"] == meta["client_name"]
    assert call(handler, "GET", f"/register/{cid}", token="wrong")[0] == 401

    # A public registration is shared by identical registrations (RFC 7592 section 1): its
    # registration access token proves no ownership, so PUT and DELETE change nothing.
    before = item(CLIENTS_TABLE, CLIENT_PREFIX + cid)
    evil = {**meta, "client_id": cid, "redirect_uris": ["http://127.0.0.1:9/evil"]}
    for method, body_ in (("PUT", evil), ("DELETE", None)):
        status, _, refused = call(handler, method, f"/register/{cid}", token=token, body=body_)
        assert (status, refused["error"]) == (403, "access_denied")
    assert item(CLIENTS_TABLE, CLIENT_PREFIX + cid) == before
    assert item(CLIENTS_TABLE, DEDUPE_PREFIX + stored["dedupe_key"]) is not None

    # A confidential client keeps full RFC 7592 management.
    conf = {**meta, "token_endpoint_auth_method": "client_secret_basic"}
    status, _, body = call(handler, "POST", "/register", body=conf)
    assert status == 201
    cid, token = body["client_id"], body["registration_access_token"]
    update = {**conf, "client_id": cid, "client_name": "renamed"}
    status, _, updated = call(handler, "PUT", f"/register/{cid}", token=token, body=update)
    assert status == 200
    assert updated["client_name"] == "renamed"
    stored = item(CLIENTS_TABLE, CLIENT_PREFIX + cid)
    assert stored is not None
    assert json.loads(stored["metadata"])["client_name"] == "renamed"

    counter = DynamoClientCounter(CLIENTS_TABLE, 30 * 86_400, lambda: boto3.client("dynamodb"))
    now = int(stored["ttl"]) - 30 * 86_400
    count_before = counter.total(now)
    status, _, _ = call(handler, "DELETE", f"/register/{cid}", token=token)
    assert status == 204
    assert item(CLIENTS_TABLE, CLIENT_PREFIX + cid) is None
    assert counter.total(now) == count_before - 1
    assert call(handler, "GET", f"/register/{cid}", token=token)[0] == 401


def test_confidential_secret_is_stored_hashed(handler: Any) -> None:
    meta = {**PUBLIC, "token_endpoint_auth_method": "client_secret_basic", "client_name": "conf"}
    status, _, body = call(handler, "POST", "/register", body=meta)
    assert status == 201
    assert body["client_secret_expires_at"] == 0
    stored = item(CLIENTS_TABLE, CLIENT_PREFIX + body["client_id"])
    assert stored is not None
    assert stored["client_secret_hash"] == sha256_hex(body["client_secret"])
    assert body["client_secret"] not in json.dumps(stored, default=str)
    assert "dedupe_key" not in stored


def test_identical_public_registrations_are_deduplicated(handler: Any) -> None:
    meta = {**PUBLIC, "client_name": f"dedupe-{uuid.uuid4().hex}"}

    def clients_and_dedupes() -> int:
        return sum(1 for i in scan(CLIENTS_TABLE) if i["pk"].startswith((CLIENT_PREFIX, DEDUPE_PREFIX)))

    before = clients_and_dedupes()
    first = call(handler, "POST", "/register", body=meta)[2]
    second = call(handler, "POST", "/register", body=meta)[2]
    assert first["client_id"] == second["client_id"]
    assert clients_and_dedupes() == before + 2  # one CLIENT and one DEDUPE item
    # Both registrants keep read access (RFC 7592 section 3); tokens are stored as hashes only.
    assert call(handler, "GET", f"/register/{first['client_id']}", token=first["registration_access_token"])[0] == 200
    assert call(handler, "GET", f"/register/{first['client_id']}", token=second["registration_access_token"])[0] == 200
    stored = item(CLIENTS_TABLE, CLIENT_PREFIX + first["client_id"])
    assert stored is not None
    assert stored["registration_access_token_hashes"] == [
        sha256_hex(second["registration_access_token"]),
        sha256_hex(first["registration_access_token"]),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {**PUBLIC, "redirect_uris": ["http://evil.example/cb"]},
        {**PUBLIC, "grant_types": ["implicit"]},
        {**PUBLIC, "scope": ["notes:read"]},
        ["not", "an", "object"],
    ],
)
def test_rejection_stores_nothing(handler: Any, body: Any) -> None:
    before = scan(CLIENTS_TABLE)
    status, _, answer = call(handler, "POST", "/register", body=body)
    assert status == 400
    assert answer["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    assert scan(CLIENTS_TABLE) == before


def test_rate_limit_counters_in_the_artefacts_table(fresh_table: str) -> None:
    now = [1_800_000_030.0]
    app = service(fresh_table, now, registration_rate_per_minute=2)
    ip = "203.0.113.77"
    assert call(app, "POST", "/register", body=PUBLIC, source_ip=ip)[0] == 201
    assert call(app, "POST", "/register", body={**PUBLIC, "client_name": "b"}, source_ip=ip)[0] == 201
    status, headers, body = call(app, "POST", "/register", body={**PUBLIC, "client_name": "c"}, source_ip=ip)
    assert status == 429
    assert headers["retry-after"] == "30"
    assert body["error"] == "temporarily_unavailable"
    minute = int(now[0] // 60)
    counter = item(ARTEFACTS_TABLE, f"RATE#register#{ip}#{minute}")
    assert counter is not None
    assert counter["count"] == 2
    assert counter["ttl"] == (minute + 1) * 60 + 60
    assert len([i for i in scan(fresh_table) if i["pk"].startswith(CLIENT_PREFIX)]) == 2
    assert call(app, "POST", "/register", body={**PUBLIC, "client_name": "d"}, source_ip="203.0.113.78")[0] == 201


def test_identical_registrations_do_not_spend_the_rate_limit(fresh_table: str) -> None:
    now = [1_800_000_030.0]
    app = service(fresh_table, now, registration_rate_per_minute=1)
    ip = "203.0.113.79"
    assert call(app, "POST", "/register", body=PUBLIC, source_ip=ip)[0] == 201
    for _ in range(3):
        assert call(app, "POST", "/register", body=PUBLIC, source_ip=ip)[0] == 201
    counter = item(ARTEFACTS_TABLE, f"RATE#register#{ip}#{int(now[0] // 60)}")
    assert counter is not None and counter["count"] == 1
    assert call(app, "POST", "/register", body={**PUBLIC, "client_name": "new"}, source_ip=ip)[0] == 429


@pytest.mark.parametrize("body", [b"[" * 2000 + b"]" * 2000, b'{"a":' * 2000 + b"0" + b"}" * 2000])
def test_deeply_nested_bodies_are_400(handler: Any, body: bytes) -> None:
    status, _, answer = call(handler, "POST", "/register", raw=body)
    assert status == 400 and answer["error"] == "invalid_client_metadata"
    conf = call(handler, "POST", "/register", body={**PUBLIC, "token_endpoint_auth_method": "client_secret_post"})[2]
    cid, token = conf["client_id"], conf["registration_access_token"]
    status, _, answer = call(handler, "PUT", f"/register/{cid}", raw=body, token=token)
    assert status == 400 and answer["error"] == "invalid_client_metadata"


def test_registration_disabled(fresh_table: str) -> None:
    app = service(fresh_table, [1_800_000_000.0], registration_policy="closed")
    status, _, body = call(app, "POST", "/register", body=PUBLIC)
    assert status == 404
    assert body["error"] == "invalid_request"
    assert scan(fresh_table) == []


def test_max_clients_expiry_frees_capacity(fresh_table: str) -> None:
    now = [1_800_000_000.0]
    app = service(fresh_table, now, max_clients=2, registration_rate_per_minute=100)
    conf = {**PUBLIC, "token_endpoint_auth_method": "client_secret_post"}
    first = call(app, "POST", "/register", body=conf)[2]
    now[0] += 20 * 86_400
    call(app, "POST", "/register", body=conf)
    status, _, body = call(app, "POST", "/register", body=conf)
    assert status == 403
    assert "maximum number of registered clients" in body["error_description"]
    counter = DynamoClientCounter(fresh_table, 30 * 86_400, lambda: boto3.client("dynamodb"))
    assert counter.total(int(now[0])) == 2
    # The first client idles out (TTL not yet applied by DynamoDB, never counted down):
    # its expiry bucket has ended, so it no longer counts.
    now[0] += 15 * 86_400
    assert counter.total(int(now[0])) == 1
    assert call(app, "POST", "/register", body=conf)[0] == 201
    assert counter.total(int(now[0])) == 2
    assert item(fresh_table, CLIENT_PREFIX + first["client_id"]) is not None  # TTL is cleanup only
    assert call(app, "GET", f"/register/{first['client_id']}", token=first["registration_access_token"])[0] == 401


def _record(cid: str, dedupe_key: str | None = None) -> ClientRecord:
    return ClientRecord(
        client_id=cid,
        kind="registered",
        redirect_uris=("https://a.example/cb",),
        token_endpoint_auth_method="none",
        metadata={"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"},
        registration_access_token_hash=sha256_hex("rat"),
        dedupe_key=dedupe_key,
    )


def test_store_transactions(fresh_table: str) -> None:
    store = DynamoClientStore(fresh_table, idle_days=1)
    store.create(_record("c" * 22, "k1"), max_clients=2, now=1000)
    with pytest.raises(DedupeConflict):
        store.create(_record("d" * 22, "k1"), max_clients=2, now=1001)
    assert item(fresh_table, CLIENT_PREFIX + "d" * 22) is None  # the transaction wrote nothing
    store.create(_record("e" * 22), max_clients=2, now=1002)
    with pytest.raises(ClientLimitReached):
        store.create(_record("f" * 22), max_clients=2, now=1003)
    assert DynamoClientCounter(fresh_table, 86_400, lambda: boto3.client("dynamodb")).total(1003) == 2
    # An idle-expired client's DEDUPE item can be taken over.
    later = 1000 + 86_400 + 1
    assert store.find_by_dedupe("k1", later) is None
    store.create(_record("g" * 22, "k1"), max_clients=5, now=later)
    dedupe = item(fresh_table, DEDUPE_PREFIX + "k1")
    assert dedupe is not None
    assert dedupe["client_id"] == "g" * 22


def test_resolver_touches_registered_clients_at_most_daily(fresh_table: str) -> None:
    store = DynamoClientStore(fresh_table, idle_days=30)
    store.create(_record("t" * 22, "tk"), max_clients=10, now=1_800_000_000)
    clock = [1_800_000_000.0 + 3600]
    resolver = KitClientResolver(store, CimdResolver(), clock=lambda: clock[0])
    record = resolver.resolve("t" * 22)
    assert record is not None
    stored = item(fresh_table, CLIENT_PREFIX + "t" * 22)
    assert stored is not None
    assert stored["last_used_at"] == 1_800_000_000  # less than a day: no write
    clock[0] = 1_800_000_000 + 86_400 + 5
    assert resolver.resolve("t" * 22) is not None
    stored = item(fresh_table, CLIENT_PREFIX + "t" * 22)
    assert stored is not None
    assert stored["last_used_at"] == int(clock[0])
    assert stored["ttl"] == int(clock[0]) + 30 * 86_400
    dedupe = item(fresh_table, DEDUPE_PREFIX + "tk")
    assert dedupe is not None
    assert dedupe["ttl"] == stored["ttl"]
    # Idle-expired clients are unknown even before DynamoDB's TTL removes them.
    clock[0] += 31 * 86_400
    assert resolver.resolve("t" * 22) is None
    assert resolver.resolve("no such client!") is None
    assert resolver.resolve("u" * 22) is None


def test_a_resolver_that_only_looks_never_renews_a_clients_idle_expiry(fresh_table: str) -> None:
    # The connected-agents page shows agents; showing one is not its use (CLIENT_IDLE_DAYS).
    store = DynamoClientStore(fresh_table, idle_days=30)
    store.create(_record("v" * 22, "vk"), max_clients=10, now=1_800_000_000)
    before = item(fresh_table, CLIENT_PREFIX + "v" * 22)
    later = 1_800_000_000.0 + 3 * 86_400
    looking = KitClientResolver(store, CimdResolver(), clock=lambda: later, touch=False)
    found = looking.resolve("v" * 22)
    assert found is not None and found.client_id == "v" * 22
    assert item(fresh_table, CLIENT_PREFIX + "v" * 22) == before
    # ...while an acting client's resolution renews it.
    assert KitClientResolver(store, CimdResolver(), clock=lambda: later).resolve("v" * 22) is not None
    assert item(fresh_table, CLIENT_PREFIX + "v" * 22)["last_used_at"] == int(later)  # type: ignore[index]


class FailingDelete:
    """The DynamoDB client, except that its first ``DeleteItem`` of a ``pk`` starting with ``prefix`` is throttled."""

    def __init__(self, prefix: str) -> None:
        self._ddb = boto3.client("dynamodb")
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)

    def delete_item(self, **kwargs: Any) -> Any:
        if self._prefix and kwargs["Key"]["pk"]["S"].startswith(self._prefix):
            self._prefix = ""
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "DeleteItem")
        return self._ddb.delete_item(**kwargs)


@pytest.mark.parametrize("failing", [DEDUPE_PREFIX, CLIENT_PREFIX])
def test_an_operator_delete_failing_halfway_leaves_identical_registrations_working(
    fresh_table: str, failing: str
) -> None:
    # The operator deletes a shared public client (mcp-kit-admin clients delete) and one of the
    # two deletes fails. A DEDUPE item left naming the deleted client made every identical
    # registration 503 until the item's ttl (CLIENT_IDLE_DAYS), and the retried delete found no
    # client to delete (exit 3).
    now = [1_800_000_000.0]
    app = service(fresh_table, now, registration_rate_per_minute=100)
    first = call(app, "POST", "/register", body=PUBLIC)[2]
    store = DynamoClientStore(fresh_table, idle_days=30, client=FailingDelete(failing))
    record = store.get(first["client_id"], int(now[0]))
    assert record is not None
    with pytest.raises(DependencyError):
        store.remove(record)
    status, _, again = call(app, "POST", "/register", body=PUBLIC)
    assert status == 201
    assert store.remove(record)  # the operator's retry finishes the delete
    assert item(fresh_table, CLIENT_PREFIX + first["client_id"]) is None
    status, _, fresh = call(app, "POST", "/register", body=PUBLIC)
    assert status == 201
    assert fresh["client_id"] != first["client_id"]
    if failing == CLIENT_PREFIX:  # the mapping was gone: the registration meanwhile made the new client
        assert again["client_id"] == fresh["client_id"]
