"""What the person reads: the consent page (whose data, for how long, how to undo it), error
pages that say what to do next, invisible characters and bidi isolation, small screens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.authorization import pages
from functions.authorization.api import make_handler
from tests.facade_fakes import (
    CIMD_ID,
    Facade,
    FakeResolver,
    User,
    approve_page,
    authorize_params,
    callback,
    cimd_client,
    confidential_client,
    csrf_of,
    facade_settings,
    public_client,
    start,
    to_consent_page,
)
from tests.helpers import FakeContext

# U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE, U+2066 LEFT-TO-RIGHT ISOLATE, U+FEFF.
BIDI_NAME = "Good\u202eAgent\u200b\u2066\ufeff"


def test_page_says_whose_data_for_how_long_and_how_to_undo(facade: Facade) -> None:
    facade.settings = facade_settings(resource_name="Acme Todos", grant_lifetime_days=14)
    _, page = to_consent_page(facade)
    body = page.body
    assert "Acme Todos" in body and "mcp.example.com" in body  # the server's name and host
    assert "unverified" in body  # a registered client's name is its own claim
    assert "an app on this computer" in body  # loopback, in plain words
    assert "Read your notes" in body and "Write and archive your notes" in body
    assert "up to 14 days" in body
    assert "Your decision is not remembered" in body  # loopback public client: RFC 8252 s8.6
    assert "disconnect or remove this server in the app" in body
    assert "<button type=submit class=primary name=decision value=approve>" in body  # Approve is primary


def test_page_says_a_proven_client_is_remembered() -> None:
    facade = Facade(resolver=FakeResolver(confidential_client()))
    _, page = to_consent_page(facade, client_id="conf-agent", redirect_uri="https://agent.example.org/cb")
    assert "Your decision is remembered" in page.body and "agent.example.org" in page.body


def test_cimd_client_is_named_by_its_host() -> None:
    facade = Facade(resolver=FakeResolver(cimd_client()))
    _, page = to_consent_page(
        facade, client_id="https://agent.example.net/client.json", redirect_uri="https://agent.example.net/cb"
    )
    assert "Its identity is the web site" in page.body and "agent.example.net" in page.body
    assert "unverified" not in page.body


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("http://127.0.0.1:1234/cb", "an app on this computer"),
        ("http://localhost/cb", "an app on this computer"),
        ("https://Claude.AI/api/mcp/auth_callback", "claude.ai"),
        ("cursor://anysphere.cursor-mcp/oauth/callback", "the app registered for cursor:"),
        ("com.example.app:/oauth", "the app registered for com.example.app:"),
    ],
)
def test_destination_in_plain_words(uri: str, words: str) -> None:
    assert pages.destination(uri) == words


def test_format_characters_are_dropped_and_names_isolated() -> None:
    facade = Facade(resolver=FakeResolver(public_client(client_name=BIDI_NAME)))
    facade.cognito.user = User(email="al\u202eice@example.com")
    _, page = to_consent_page(facade)
    assert not any(ch in page.body for ch in "\u202e\u200b\u2066\ufeff")
    assert "<bdi id=agent>GoodAgent</bdi>" in page.body
    assert "<bdi id=user>alice@example.com</bdi>" in page.body
    assert "<bdi id=client>public-agent</bdi>" in page.body


def test_every_page_has_viewport_landmarks_and_a_heading(facade: Facade) -> None:
    _, consent = to_consent_page(facade)
    for answer in (consent, pages.error_page(400, "x"), pages.finished_page(), pages.unavailable_page()):
        body = answer.body
        assert '<meta name=viewport content="width=device-width,initial-scale=1">' in body
        assert "<main>" in body and "<h1>" in body and "<html lang=en>" in body
    assert 'aria-label="Your decision"' in consent.body and "aria-labelledby=h-scopes" in consent.body


def test_unknown_client_page_says_to_re_add_the_connector(facade: Facade) -> None:
    answer = facade.authorization().authorize(authorize_params(client_id="gone-agent"))
    assert answer.status == 400 and "remove this server (the connector) and add it again" in answer.body


def test_expired_request_says_start_again_from_the_app(facade: Facade) -> None:
    started = start(facade)
    facade.clock.now += 601
    answer = callback(facade, started)
    assert answer.status == 400 and "expired" in answer.body and "start connecting again" in answer.body


def test_back_button_after_finishing_is_not_a_timeout(facade: Facade) -> None:
    started, page = to_consent_page(facade)
    approve_page(facade, started, page)
    # The browser's back button reloads the callback URL; the cookie was cleared on approval.
    again = callback(facade, started)
    assert "already finished" in again.body and "took too long" not in again.body
    # Or it keeps the cookie (another tab): the request was decided, same page.
    resubmit = facade.authorization().consent({"csrf": csrf_of(page), "decision": "approve"}, started.cookie)
    assert "already finished" in resubmit.body and len(facade.codes.items) == 1


def _handle(facade: Facade, route: str) -> dict[str, Any]:
    handler = make_handler(lambda: facade.authorization())
    event: dict[str, Any] = {"routeKey": route, "rawPath": route.split(" ")[1], "headers": {}, "cookies": []}
    result: dict[str, Any] = handler(event, FakeContext())
    return result


def test_get_consent_is_a_page_not_json(facade: Facade) -> None:
    result = _handle(facade, "GET /consent")
    assert result["headers"]["Content-Type"].startswith("text/html")
    assert "Nothing to approve" in result["body"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(result["body"])


# --------------------------------------------------------------------------- the page
def test_consent_page_shows_agent_scopes_user_and_is_escaped(facade: Facade) -> None:
    _, page = to_consent_page(facade)
    body = page.body
    assert "Agent &lt;b&gt;Smith&lt;/b&gt;" in body and "<b>Smith" not in body
    assert "public-agent" in body and "an app on this computer" in body
    assert "Read your notes" in body and "Write and archive your notes" in body
    assert "alice@example.com" in body
    assert "value=approve" in body and "value=deny" in body and "name=csrf" in body


def test_consent_page_security_headers(facade: Facade) -> None:
    _, page = to_consent_page(facade)
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "form-action 'self' http://127.0.0.1:33418" in csp  # the redirect after the form post
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("redirect_uri", "source"),
    [
        ("http://127.0.0.1:33418/cb", "http://127.0.0.1:33418"),
        ("http://localhost:8080/cb", "http://localhost:8080"),
        ("https://agent.example.net/cb", "https://agent.example.net"),
        # CSP host-source has no IPv6 literals (a browser drops the expression): the scheme only.
        ("http://[::1]:33418/cb", "http:"),
        ("com.example.agent:/oauth", "com.example.agent:"),
        ("http://a b/cb", None),
    ],
)
def test_the_consent_forms_csp_names_the_redirect_target_as_browsers_parse_it(
    redirect_uri: str, source: str | None
) -> None:
    assert pages.csp_source(redirect_uri) == source


def test_consent_page_for_a_cimd_client_shows_its_host() -> None:
    facade = Facade(resolver=FakeResolver(cimd_client()))
    _, page = to_consent_page(facade, client_id=CIMD_ID, redirect_uri="https://agent.example.net/cb")
    assert "agent.example.net" in page.body and CIMD_ID not in page.body


def test_hostile_client_name_cannot_inject_markup() -> None:
    evil = public_client(client_name='"><script>alert(1)</script>')
    facade = Facade(resolver=FakeResolver(evil))
    _, page = to_consent_page(facade)
    assert "<script>" not in page.body and "&lt;script&gt;" in page.body
