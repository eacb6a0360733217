"""HTTP concerns of the registration function: CORS, outages (503 + Retry-After, refunded
rate-limit hits), and secrets kept out of the logs.
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.platform.errors import DependencyError
from functions.registration.api import make_handler
from functions.registration.service import RegistrationService
from tests.fakes.clients import InMemoryClientStore
from tests.fakes.state import InMemoryRateLimiter
from tests.unit.registration.support import (
    CONFIDENTIAL,
    PUBLIC,
    Kit,
    assert_nothing_stored,
)

# ----- HTTP concerns ----------------------------------------------------------------------


def test_cors_preflight_on_register(kit: Kit) -> None:
    reply = kit.call(
        "OPTIONS",
        "/register",
        headers={
            "origin": "https://inspector.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "content-type" in reply.headers["access-control-allow-headers"].lower()
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert_nothing_stored(kit)


def test_cors_headers_on_registration(kit: Kit) -> None:
    reply = kit.register(PUBLIC, headers={"origin": "https://inspector.example"})
    assert reply.status == 201
    assert reply.headers["access-control-allow-origin"] == "*"


class BrokenStore(InMemoryClientStore):
    def get(self, client_id: str, now: int) -> Any:
        raise DependencyError("read client failed: ProvisionedThroughputExceededException")

    def find_by_dedupe(self, dedupe_key: str, now: int) -> Any:
        raise DependencyError("read dedupe failed: InternalServerError")


class BrokenLimiter(InMemoryRateLimiter):
    def hit(self, bucket: str, source_ip: str, limit: int) -> Any:
        raise DependencyError("rate limit failed: InternalServerError")


def test_dependency_failures_answer_503(kit: Kit) -> None:
    kit.service = RegistrationService(kit.settings, BrokenStore(), kit.limiter, clock=lambda: kit.now)
    kit.app = make_handler(lambda: kit.service)
    for reply in (kit.register(PUBLIC), kit.manage("GET", "A" * 22, "token")):
        assert reply.status == 503
        assert reply.headers["retry-after"] == "5"
        assert reply.json["error"] == "temporarily_unavailable"
    kit.service = RegistrationService(kit.settings, kit.store, BrokenLimiter(), clock=lambda: kit.now)
    kit.app = make_handler(lambda: kit.service)
    assert kit.register(PUBLIC).status == 503
    assert_nothing_stored(kit)


class FailingOnceStore(InMemoryClientStore):
    """Its first ``create`` fails after the rate limit was counted (a DynamoDB outage)."""

    failed = False

    def create(self, record: Any, *, max_clients: int, now: int) -> Any:
        if not self.failed:
            self.failed = True
            raise DependencyError("register client failed: ProvisionedThroughputExceededException")
        return super().create(record, max_clients=max_clients, now=now)


@pytest.mark.parametrize("meta", [PUBLIC, CONFIDENTIAL], ids=["public", "confidential"])
def test_a_503_gives_back_its_rate_limit_hit(meta: dict[str, Any]) -> None:
    """RFC 9110 section 15.6.4: the retry a 503 invites is not refused as over the limit."""
    kit = Kit(registration_rate_per_minute=1)
    kit.service = RegistrationService(kit.settings, FailingOnceStore(idle_days=30), kit.limiter, lambda: kit.now)
    kit.app = make_handler(lambda: kit.service)
    assert kit.register(meta).status == 503
    assert kit.register(meta).status == 201
    assert kit.register({**meta, "client_name": "another"}).status == 429  # the limit still holds


def test_secrets_are_not_logged(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    body = kit.register(CONFIDENTIAL).json
    kit.manage("GET", body["client_id"], body["registration_access_token"])
    kit.manage("GET", body["client_id"], "wrong")
    out = capsys.readouterr()
    logged = out.out + out.err
    assert body["client_secret"] not in logged
    assert body["registration_access_token"] not in logged
