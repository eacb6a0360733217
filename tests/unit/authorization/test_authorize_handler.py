"""The authorization function's handler: routing, cookies, 503s, and hostile input that gets a page, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from functions.authorization.api import make_handler
from tests.facade_fakes import (
    Facade,
    authorize_params,
    query_of,
)
from tests.helpers import FakeContext


# --------------------------------------------------------------------------- the handler shape
def _event(route: str, *, query: str = "", cookies: list[str] | None = None, body: str = "") -> dict[str, Any]:
    event: dict[str, Any] = {
        "routeKey": route,
        "rawQueryString": query,
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "body": body,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    return event


def test_handler_routes_and_sets_cookies(facade: Facade) -> None:
    from urllib.parse import urlencode

    handle = make_handler(facade.authorization)
    result = handle(_event("GET /authorize", query=urlencode(authorize_params())), FakeContext())
    assert result["statusCode"] == 302 and result["cookies"][0].startswith("__Host-mcpkit_txn=")
    cookie = result["cookies"][0].split(";")[0]
    state = query_of(result["headers"]["Location"])["state"]
    page = handle(_event("GET /oauth/callback", query=f"code=c&state={state}", cookies=[cookie]), FakeContext())
    assert page["statusCode"] == 200
    csrf = page["body"].split('name=csrf value="')[1].split('"')[0]
    done = handle(_event("POST /consent", cookies=[cookie], body=f"csrf={csrf}&decision=approve"), FakeContext())
    assert done["statusCode"] == 302 and "code=" in done["headers"]["Location"]


def test_handler_rejects_repeated_query_parameters(facade: Facade) -> None:
    from urllib.parse import urlencode

    query = urlencode(authorize_params()) + "&scope=notes:read"
    result = make_handler(facade.authorization)(_event("GET /authorize", query=query), FakeContext())
    assert result["statusCode"] == 400 and "Location" not in result["headers"]


def test_handler_answers_503_with_retry_after_on_outage(facade: Facade) -> None:
    from urllib.parse import urlencode

    facade.resolver.fail = True
    result = make_handler(facade.authorization)(
        _event("GET /authorize", query=urlencode(authorize_params())), FakeContext()
    )
    assert result["statusCode"] == 503 and result["headers"]["Retry-After"]


def test_handler_unknown_route_is_404(facade: Facade) -> None:
    assert make_handler(facade.authorization)(_event("GET /nope"), FakeContext())["statusCode"] == 404


# --------------------------------------------------------------------------- hostile input: a page, never a 500
def _cookie_and_state(facade: Facade) -> tuple[str, str]:
    from urllib.parse import urlencode

    result = make_handler(facade.authorization)(
        _event("GET /authorize", query=urlencode(authorize_params())), FakeContext()
    )
    return result["cookies"][0].split(";")[0], query_of(result["headers"]["Location"])["state"]


@pytest.mark.parametrize(
    ("route", "query", "cookie", "body", "b64"),
    [
        # state: non-ASCII (hmac.compare_digest raised TypeError on non-ASCII str), lone surrogate
        ("GET /oauth/callback", "code=c&state=%C3%A9", "{cookie}", "", False),
        ("GET /oauth/callback", "code=c&state=\u00e9", "{cookie}", "", False),
        ("GET /oauth/callback", "code=c&state=\ud800", "{cookie}", "", False),
        ("GET /oauth/callback", "code=\udfff&state={state}", "{cookie}", "", False),
        # the cookie: non-ASCII MAC or id, lone surrogates
        ("GET /oauth/callback", "code=c&state={state}", "__Host-mcpkit_txn={state}.\u00e9\u00e9", "", False),
        ("GET /oauth/callback", "code=c&state={state}", "__Host-mcpkit_txn=\u00e9.abc", "", False),
        ("GET /oauth/callback", "code=c&state={state}", "__Host-mcpkit_txn=\ud800.\udfff", "", False),
        ("POST /consent", "", "__Host-mcpkit_txn={state}.\u00e9", "csrf=x&decision=approve", False),
        # the consent form: lone surrogate, non-ASCII, non-UTF-8 bytes, invalid base64
        ("POST /consent", "", "{cookie}", "csrf=\ud800&decision=approve", False),
        ("POST /consent", "", "{cookie}", "csrf=%C3%A9&decision=approve", False),
        ("POST /consent", "", "{cookie}", "Y3NyZj3/", True),
        ("POST /consent", "", "{cookie}", "!!not base64", True),
        # /authorize: lone surrogates never reach a redirect (they could not be URL-encoded)
        ("GET /authorize", "client_id=\ud800&redirect_uri=x", "", "", False),
        ("GET /authorize", "{authorize}&state=\ud800", "", "", False),
        ("GET /authorize", "{authorize}&code_challenge=\u00e9", "", "", False),
    ],
)
def test_hostile_input_gets_an_error_page(
    facade: Facade, route: str, query: str, cookie: str, body: str, b64: bool
) -> None:
    from urllib.parse import urlencode

    cookie_value, state = _cookie_and_state(facade)
    authorize = urlencode(authorize_params(state=None, code_challenge=None))
    if "code_challenge" not in query:
        authorize = urlencode(authorize_params(state=None))
    fill = {"cookie": cookie_value, "state": state, "authorize": authorize}
    event = _event(
        route,
        query=query.format(**fill),
        cookies=[cookie.format(**fill)] if cookie else None,
        body=body,
    )
    event["isBase64Encoded"] = b64
    result = make_handler(facade.authorization)(event, FakeContext())
    if route == "GET /authorize" and "code_challenge" in query:
        # A verified redirect URI: the error goes back to the client (RFC 6749 section 4.1.2.1).
        assert result["statusCode"] == 302
        assert query_of(result["headers"]["Location"])["error"] == "invalid_request"
        return
    assert result["statusCode"] == 400, result["body"]
    assert result["headers"]["Content-Type"].startswith("text/html") and "Location" not in result["headers"]
    assert not facade.codes.items
