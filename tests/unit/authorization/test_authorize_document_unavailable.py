"""GET /authorize and Cognito's callback for a CIMD client whose document cannot be fetched now:
a 503 page with ``Retry-After`` and the pages' security headers, never a redirect (the redirect
URI is unverified without the document, RFC 6749 section 4.1.2.1), nothing stored or spent, and
the retry completes; a definitive refusal stays the 400 "not registered" page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from functions.authorization.api import make_handler
from functions.authorization.pages import error_page
from functions.core.clients.cimd import UNAVAILABLE_CACHE_SECONDS
from functions.core.platform.errors import RETRY_AFTER_SECONDS
from tests.cimd_support import FakeNetwork
from tests.facade_fakes import Facade, authorize_params, callback, start
from tests.helpers import FakeContext
from tests.observability_capture import Captured
from tests.unit.test_cimd_transient import (
    DEFINITIVE,
    TRANSIENT,
    URL,
    document_facade,
    script,
)


def get(facade: Facade, route: str, query: dict[str, str], cookie: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"routeKey": route, "rawQueryString": urlencode(query), "headers": {}}
    if cookie is not None:
        event["cookies"] = [cookie]
    return make_handler(facade.authorization)(event, FakeContext())


def assert_try_again_page(result: dict[str, Any]) -> None:
    assert result["statusCode"] == 503, result["body"]
    headers = result["headers"]
    assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "Location" not in headers and not result.get("cookies")  # a page, never a redirect
    # The same security headers as every other page (CSP, framing, no-store, ...).
    for name, value in error_page(400, "x").headers.items():
        assert headers[name] == value, name
    assert "Try again in a moment" in result["body"]
    assert "not registered" not in result["body"]


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_failure_at_authorize_is_a_503_page_and_stores_nothing(
    net: FakeNetwork, seen: Captured, kind: str
) -> None:
    facade = document_facade(net)
    script(net, TRANSIENT[kind])
    assert_try_again_page(get(facade, "GET /authorize", authorize_params(client_id=URL)))
    assert not facade.txns.items
    assert seen.counted("DependencyUnavailable") == 0  # the app's host, not the kit's dependency
    assert seen.counted("ClientDocumentUnavailable") == 1
    net.fault, net.answer = None, None
    facade.clock.now += UNAVAILABLE_CACHE_SECONDS  # the retry after Retry-After
    retried = get(facade, "GET /authorize", authorize_params(client_id=URL))
    assert retried["statusCode"] == 302 and retried["headers"]["Location"].startswith("https://auth.example.com/")


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_failure_at_the_callback_keeps_the_request_and_cognitos_code(
    net: FakeNetwork, seen: Captured, kind: str
) -> None:
    facade = document_facade(net)
    started = start(facade, client_id=URL)
    script(net, TRANSIENT[kind])
    cookie = f"{facade.authorization().cookie.name}={started.cookie}"
    query = {"code": "cognito-code", "state": started.txn_id}
    # 503, not the 400 of a foreign or missing cookie: the request was found, then the document failed.
    assert_try_again_page(get(facade, "GET /oauth/callback", query, cookie))
    (txn,) = facade.txns.items.values()
    assert txn.status == "pending"  # not abandoned
    assert not facade.cognito.exchanged  # Cognito's single-use code not spent
    assert seen.counted("DependencyUnavailable") == 0
    assert seen.counted("ClientDocumentUnavailable") == 1
    net.fault, net.answer = None, None
    facade.clock.now += UNAVAILABLE_CACHE_SECONDS
    page = callback(facade, started)  # the reload
    assert page.status == 200 and "csrf" in page.body, page.body


@pytest.mark.parametrize("kind", DEFINITIVE)
def test_a_definitive_failure_at_authorize_is_the_not_registered_page(net: FakeNetwork, kind: str) -> None:
    facade = document_facade(net)
    script(net, DEFINITIVE[kind])
    result = get(facade, "GET /authorize", authorize_params(client_id=URL))
    assert result["statusCode"] == 400 and "not registered" in result["body"]
    assert "Location" not in result["headers"] and "Retry-After" not in result["headers"]
    assert not facade.txns.items
