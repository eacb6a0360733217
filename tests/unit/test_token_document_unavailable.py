"""POST /token and POST /revoke for a CIMD client whose document cannot be fetched now: 503
``temporarily_unavailable`` with ``Retry-After`` and no-store, nothing consumed (the code and
the refresh token work on the retry), and never ``DependencyUnavailable``; a definitive refusal
stays 401 ``invalid_client``. Real ``KitClientResolver`` / ``CimdResolver`` / ``DocumentFetcher``
over ``FakeNetwork`` (no traffic)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.core.clients.cimd import UNAVAILABLE_CACHE_SECONDS
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.errors import RETRY_AFTER_SECONDS
from functions.token.api import make_handler
from tests.cimd_support import FakeNetwork
from tests.facade_fakes import Facade, approve
from tests.helpers import FakeContext
from tests.observability_capture import Captured
from tests.unit.test_cimd_transient import (
    DEFINITIVE,
    TRANSIENT,
    URL,
    document_facade,
    script,
)
from tests.unit.test_token_refresh import assert_no_store, event


def token_form(code: str) -> dict[str, str]:
    from tests.facade_fakes import code_form

    return code_form(code, client_id=URL)


def post(facade: Facade, route: str, form: dict[str, str]) -> dict[str, Any]:
    return make_handler(facade.token)(event(route, form), FakeContext())


def assert_retry_later(result: dict[str, Any]) -> None:
    """RFC 6749 section 5.2 shape, 503, Retry-After, never cached."""
    assert result["statusCode"] == 503, result["body"]
    body = json.loads(result["body"])
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith("the client's metadata document (its client_id URL on localhost)")
    assert result["headers"]["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert result["headers"]["Content-Type"] == "application/json"
    assert "WWW-Authenticate" not in result["headers"]
    assert_no_store(result)


def the_retry_later(facade: Facade, net: FakeNetwork) -> None:
    """The host is back and the client retries after ``Retry-After``."""
    net.fault, net.answer = None, None
    facade.clock.now += UNAVAILABLE_CACHE_SECONDS


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_failure_at_token_is_503_and_spends_nothing(net: FakeNetwork, seen: Captured, kind: str) -> None:
    facade = document_facade(net)
    code = approve(facade, client_id=URL)["code"]
    script(net, TRANSIENT[kind])
    assert_retry_later(post(facade, "POST /token", token_form(code)))
    stored = facade.codes.items[sha256_hex(code)]
    assert stored.used_at is None  # the single-use redemption is not spent
    (grant,) = facade.grants.items.values()
    assert grant.status == "pending" and not facade.rts.items
    the_retry_later(facade, net)
    issued = post(facade, "POST /token", token_form(code))
    assert issued["statusCode"] == 200, issued["body"]
    tokens = json.loads(issued["body"])

    # The refresh token is not rotated nor revoked by a transient failure either.
    script(net, TRANSIENT[kind])
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": URL}
    assert_retry_later(post(facade, "POST /token", refresh))
    assert facade.rts.items[sha256_hex(tokens["refresh_token"])].status == "active"
    assert facade.cognito.refreshes == 0
    # /revoke (RFC 7009): nothing revoked, the same 503.
    assert_retry_later(post(facade, "POST /revoke", {"token": tokens["refresh_token"], "client_id": URL}))
    assert next(iter(facade.grants.items.values())).status == "active" and not facade.cognito.revoked
    the_retry_later(facade, net)
    rotated = post(facade, "POST /token", refresh)
    assert rotated["statusCode"] == 200, rotated["body"]
    # A third party's host is not the kit's dependency: no DependencyUnavailable, no alarm.
    assert seen.counted("DependencyUnavailable") == 0
    assert seen.counted("ClientDocumentUnavailable") == 3  # one per 503: code, refresh, revoke
    assert seen.counted("CimdFetchFailures", outcome="unavailable") >= 1
    assert seen.counted("CimdFetchFailures", outcome="refused") == 0


@pytest.mark.parametrize("kind", DEFINITIVE)
def test_a_definitive_failure_at_token_stays_invalid_client(net: FakeNetwork, kind: str) -> None:
    facade = document_facade(net)
    code = approve(facade, client_id=URL)["code"]
    script(net, DEFINITIVE[kind])
    result = post(facade, "POST /token", token_form(code))
    assert result["statusCode"] == 401 and json.loads(result["body"])["error"] == "invalid_client"
    assert "Retry-After" not in result["headers"]
    revoked = post(facade, "POST /revoke", {"token": "x", "client_id": URL})
    assert revoked["statusCode"] == 401


def test_a_non_public_document_address_stays_invalid_client(net: FakeNetwork) -> None:
    facade = document_facade(net)
    code = approve(facade, client_id=URL)["code"]
    net.address = "169.254.169.254"
    before = net.connects
    result = post(facade, "POST /token", token_form(code))
    assert result["statusCode"] == 401 and json.loads(result["body"])["error"] == "invalid_client"
    assert net.connects == before  # the refused address is never connected to
