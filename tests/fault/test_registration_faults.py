"""The registration function (RFC 7591 DCR, RFC 7592 management) in the fault matrix.

The real app (``functions.registration.api.make_handler``) on the real ``DynamoClientStore``
and ``DynamoRateLimiter``, whose one boto3 DynamoDB client (moto, in process) is
instrumented with ``tests.fault.harness.instrument``: DynamoDB is the registration
function's only dependency. As in tests/fault/test_faults.py, a run without faults counts
the calls each request makes; then, on fresh state, the request runs once per call with that
call failing. It must be answered 503 with ``Retry-After`` (never 400/401/403/429/500, never
a client), and the identical request sent again after recovery must succeed with a result
that works (the client reads back with its registration access token, the update or the
deletion took effect, the identical registration returned the same ``client_id``). After
every request the live-client counters (functions/core/clients/store_count.py) must count
exactly the stored clients.

The per-IP limit is 1 registration a minute and every request comes from its own address,
so a failed request that spent the budget would make its retry a 429.

The metadata function is not in the matrix: it serves documents built from settings and
makes no dependency call.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.store import DynamoClientStore
from functions.core.clients.store_count import DynamoClientCounter
from functions.core.platform.routes import CLIENT_CONFIGURATION_PATH, REGISTRATION_PATH
from functions.core.platform.settings import RegistrationSettings
from functions.core.state.ratelimit import DynamoRateLimiter
from functions.registration.api import make_handler
from functions.registration.service import RegistrationService
from tests.fault.harness import Answer, Faults, event, instrument
from tests.helpers import CLAUDE_METADATA, FakeContext

IDLE_DAYS = 30
# A real hosted client's metadata (public: token_endpoint_auth_method "none").
PUBLIC: dict[str, Any] = CLAUDE_METADATA
CONFIDENTIAL: dict[str, Any] = {**PUBLIC, "token_endpoint_auth_method": "client_secret_post"}
# The decrement after a deletion: a failure leaves an over-count until its bucket ends, never
# an under-count (client_store_count.py), and the client is gone either way.
COUNT_DECREMENT = ("UpdateItem", "COUNTER#")


@dataclass
class Recorder:
    """The (operation, partition key prefix) of every DynamoDB call, in order."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, model: Any, params: Any, **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        pk = str(key.get("pk", {}).get("S", ""))
        self.calls.append((model.name, pk.split("#", 1)[0] + "#" if "#" in pk else pk))


class Aws:
    """moto: one instrumented DynamoDB client and a fresh pair of tables per test."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.recorder = Recorder()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        # Parameters are built before the call is made (and failed by the hook of ``instrument``).
        ddb.meta.events.register("before-parameter-build.dynamodb", self.recorder)
        self.ddb = instrument(ddb, "dynamodb", faults)
        self._sets = count(1)

    def tables(self) -> tuple[str, str]:
        n = next(self._sets)
        names = (f"reg-clients-{n}", f"reg-artefacts-{n}")
        for name in names:
            self.ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        return names


class Kit:
    """The registration function wired to the instrumented client, on fresh tables."""

    def __init__(self, aws: Aws) -> None:
        aws.faults.arm(None)
        self.aws, self.faults = aws, aws.faults
        self.clients, artefacts = aws.tables()
        settings = RegistrationSettings(
            base_url="https://mcp.example.com",
            clients_table=self.clients,
            artefacts_table=artefacts,
            client_idle_days=IDLE_DAYS,
            registration_rate_per_minute=1,
        )
        store = DynamoClientStore(self.clients, idle_days=IDLE_DAYS, client=aws.ddb)
        service = RegistrationService(settings, store, DynamoRateLimiter(artefacts, aws.ddb))
        self.app = make_handler(lambda: service)
        self._addresses = count(1)

    def arm(self, n: int | None) -> None:
        self.faults.arm(None if n is None else "dynamodb", n or 0)
        self.aws.recorder.calls.clear()

    def address(self) -> str:
        n = next(self._addresses)
        return f"198.51.{n // 256}.{n % 256}"

    def call(
        self, method: str, path: str, *, body: Any = None, token: str | None = None, ip: str | None = None
    ) -> Answer:
        headers = {"content-type": "application/json"} if body is not None else {}
        if token is not None:
            headers["authorization"] = "Bearer " + token
        ev = event(method, path, headers=headers, body=None if body is None else json.dumps(body))
        ev["requestContext"]["http"]["sourceIp"] = ip or self.address()
        ev["requestContext"]["stage"] = "$default"
        if path.startswith(REGISTRATION_PATH + "/"):
            # API Gateway's route key names the route's path variable and passes its value.
            ev["routeKey"] = f"{method} {CLIENT_CONFIGURATION_PATH}"
            ev["pathParameters"] = {"client_id": path.rsplit("/", 1)[1]}
        answer: Answer = self.app(ev, FakeContext())
        return answer

    def register(self, meta: dict[str, Any]) -> dict[str, Any]:
        answer = self.call("POST", "/register", body=meta)
        assert answer["statusCode"] == 201, answer["body"]
        return _json(answer)

    def read(self, client_id: str, token: str) -> Answer:
        return self.call("GET", f"/register/{client_id}", token=token)

    def counted_and_live(self) -> tuple[int, int]:
        """Clients counted live by the counters, and CLIENT# items live in the table."""
        now = int(time.time())
        counted = DynamoClientCounter(self.clients, IDLE_DAYS * 86_400, lambda: self.aws.ddb).total(now)
        items = self.aws.ddb.scan(TableName=self.clients)["Items"]
        live = sum(1 for i in items if i["pk"]["S"].startswith(CLIENT_PREFIX) and int(i["ttl"]["N"]) > now)
        return counted, live


def _json(answer: Answer) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer["body"])
    return body


def _unique(meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "client_name": "agent-" + uuid.uuid4().hex[:12]}


@dataclass
class Request:
    send: Callable[[], Answer]
    succeeded: Callable[[Answer], None]
    # (operation, key prefix) of calls whose failure leaves the answer unchanged.
    best_effort: frozenset[tuple[str, str]] = frozenset()


Scenario = Callable[[Kit], Request]


def _reads_back(kit: Kit, answer: Answer) -> dict[str, Any]:
    assert answer["statusCode"] == 201, answer["body"]
    body = _json(answer)
    read = kit.read(body["client_id"], body["registration_access_token"])
    assert read["statusCode"] == 200, read["body"]
    assert _json(read)["client_name"] == body["client_name"]
    return body


def register_public(kit: Kit) -> Request:
    meta, ip = _unique(PUBLIC), kit.address()
    return Request(lambda: kit.call("POST", "/register", body=meta, ip=ip), lambda a: _assert(_reads_back(kit, a)))


def register_confidential(kit: Kit) -> Request:
    meta, ip = _unique(CONFIDENTIAL), kit.address()

    def succeeded(answer: Answer) -> None:
        assert _reads_back(kit, answer)["client_secret"]

    return Request(lambda: kit.call("POST", "/register", body=meta, ip=ip), succeeded)


def register_identical(kit: Kit) -> Request:
    """RFC 7591 section 3 + the kit's de-duplication: the same public metadata, same client."""
    meta, ip = _unique(PUBLIC), kit.address()
    first = kit.register(meta)

    def succeeded(answer: Answer) -> None:
        assert _reads_back(kit, answer)["client_id"] == first["client_id"]

    return Request(lambda: kit.call("POST", "/register", body=meta, ip=ip), succeeded)


def read(kit: Kit) -> Request:
    client = kit.register(_unique(CONFIDENTIAL))

    def succeeded(answer: Answer) -> None:
        assert answer["statusCode"] == 200, answer["body"]
        assert _json(answer)["client_id"] == client["client_id"]

    return Request(lambda: kit.read(client["client_id"], client["registration_access_token"]), succeeded)


def update(kit: Kit) -> Request:
    """RFC 7592 section 2.2 on a confidential client (public ones are shared, read-only)."""
    client = kit.register(_unique(CONFIDENTIAL))
    cid, token = client["client_id"], client["registration_access_token"]
    body = {**CONFIDENTIAL, "client_id": cid, "client_name": "renamed-" + cid}

    def succeeded(answer: Answer) -> None:
        assert answer["statusCode"] == 200, answer["body"]
        assert _json(kit.read(cid, token))["client_name"] == "renamed-" + cid

    return Request(lambda: kit.call("PUT", f"/register/{cid}", body=body, token=token), succeeded)


def delete(kit: Kit) -> Request:
    """RFC 7592 section 2.3: 204, then the client is gone."""
    client = kit.register(_unique(CONFIDENTIAL))
    cid, token = client["client_id"], client["registration_access_token"]

    def succeeded(answer: Answer) -> None:
        assert answer["statusCode"] == 204, answer["body"]
        assert kit.read(cid, token)["statusCode"] == 401
        assert "Item" not in kit.aws.ddb.get_item(TableName=kit.clients, Key={"pk": {"S": CLIENT_PREFIX + cid}})

    return Request(lambda: kit.call("DELETE", f"/register/{cid}", token=token), succeeded, frozenset({COUNT_DECREMENT}))


SCENARIOS: tuple[Scenario, ...] = (
    register_public,
    register_confidential,
    register_identical,
    read,
    update,
    delete,
)


def _assert(condition: object) -> None:
    assert condition


def _unavailable(answer: Answer) -> bool:
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    return answer["statusCode"] == 503 and int(headers.get("retry-after", "0")) > 0


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """moto in process; ``patch.dict`` restores the environment (AWS_ENDPOINT_URL too)."""
    with mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        with mock_aws():
            yield Aws(Faults())


@pytest.fixture
def kit(aws: Aws) -> Kit:
    return Kit(aws)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_failed_dynamodb_call_is_503_and_the_identical_retry_succeeds(kit: Kit, scenario: Scenario) -> None:
    kit.arm(None)
    probe = scenario(kit)
    kit.arm(None)
    answer = probe.send()
    calls = kit.faults.calls["dynamodb"]
    probe.succeeded(answer)
    assert calls > 0
    for n in range(1, calls + 1):
        kit.arm(None)
        request = scenario(kit)
        kit.arm(n)
        failed = request.send()
        assert kit.faults.fired, f"call {n} was not made"
        cut = kit.aws.recorder.calls[n - 1]
        kit.arm(None)
        if cut in request.best_effort and failed["statusCode"] != 503:
            request.succeeded(failed)  # answered as without the fault: nothing to retry
            counted, live = kit.counted_and_live()
            assert counted >= live, (cut, counted, live)  # an over-count at most, never under
            continue
        assert _unavailable(failed), (n, cut, failed["statusCode"], failed["body"][:300])
        request.succeeded(request.send())  # the identical request, after recovery
        counted, live = kit.counted_and_live()
        assert counted == live, (n, cut, counted, live)
