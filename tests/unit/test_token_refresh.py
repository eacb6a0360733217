"""POST /token (refresh_token: rotation, reuse detection, upstream refresh), POST /revoke, and the
handler's shape (no-store everywhere, CORS, 401/503)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from jose import jwt

from functions.core.cognito.token_cipher import grant_context
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.errors import DependencyError
from functions.token.api import make_handler
from tests.facade_fakes import Facade, FakeResolver, approve, facade_settings, public_client
from tests.helpers import FakeContext
from tests.unit.test_token import basic, code_form, conf_code, conf_facade, exchange, refused


@pytest.fixture
def facade() -> Facade:
    return Facade()


def refresh_form(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": "public-agent", **extra}


def refresh(facade: Facade, token: str, **extra: str) -> dict[str, Any]:
    return facade.token().token(refresh_form(token, **extra), "")


def grant_of(facade: Facade) -> Any:
    (grant,) = facade.grants.items.values()
    return grant


# --------------------------------------------------------------------------- refresh
def test_refresh_rotates_and_returns_a_new_access_token(facade: Facade) -> None:
    first = exchange(facade)
    facade.clock.now += 5
    second = refresh(facade, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert jwt.get_unverified_claims(second["access_token"])["origin_jti"] == grant_of(facade).grant_id
    assert (second["token_type"], second["scope"]) == ("Bearer", "notes:read notes:write")
    assert "id_token" not in second
    old = facade.rts.items[sha256_hex(first["refresh_token"])]
    assert old.status == "rotated" and old.rotated_at is not None
    assert facade.rts.items[sha256_hex(second["refresh_token"])].status == "active"
    assert grant_of(facade).last_used_at == int(facade.clock.now)


def test_reuse_of_a_rotated_token_revokes_the_whole_grant(facade: Facade) -> None:
    first = exchange(facade)
    second = refresh(facade, first["refresh_token"])
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds + 1  # after the reuse grace
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    grant = grant_of(facade)
    assert grant.status == "revoked" and grant.revoked_reason == "refresh_reuse"
    assert facade.consents.get(grant.sub, grant.client_id) is None  # consent forgotten
    assert facade.cognito.revoked and not facade.cognito.sessions  # upstream revoked
    assert grant.upstream_refresh is None  # revoked at Cognito, so no longer held
    # The chain head is marked revoked (it was "active" with no index by grant to find it).
    assert grant.refresh_head == sha256_hex(second["refresh_token"])
    assert facade.rts.items[grant.refresh_head].status == "revoked"
    refused(lambda: refresh(facade, second["refresh_token"]), "invalid_grant")  # the live one dies too
    assert grant_of(facade).revoked_reason == "refresh_reuse"  # and revokes nothing more


def test_an_upstream_revocation_left_pending_by_reuse_is_finished_later(facade: Facade) -> None:
    # Cognito is down when reuse is detected: the kit's grant is revoked (that is what /mcp
    # checks, and the answer stays invalid_grant), Cognito's token stays pending on the
    # grant, and the next revocation request for the grant revokes it.
    first = exchange(facade)
    refresh(facade, first["refresh_token"])
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds + 1
    facade.cognito.fail = True
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")  # Cognito: best effort
    assert grant_of(facade).status == "revoked" and grant_of(facade).upstream_revocation_pending
    facade.cognito.fail = False
    facade.token().revoke({"token": first["refresh_token"], "client_id": "public-agent"}, "")
    assert facade.cognito.revoked and grant_of(facade).upstream_refresh is None


@pytest.mark.parametrize("grace", [0, 30])
def test_losing_a_rotation_race_is_never_theft(grace: int) -> None:
    facade = Facade(settings=facade_settings(refresh_reuse_grace_seconds=grace))
    first = exchange(facade)
    rt = facade.rts.items[sha256_hex(first["refresh_token"])]
    original_get = facade.rts.get
    winner = refresh(facade, first["refresh_token"])
    # The loser read the token while it was still active, then lost the conditional write.
    facade.rts.get = lambda h: rt if h == rt.token_hash else original_get(h)  # type: ignore[method-assign]
    if grace == 0:
        refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    else:
        assert refresh(facade, first["refresh_token"])["access_token"]  # a grace pair
    assert grant_of(facade).status == "active" and not facade.cognito.revoked
    facade.rts.get = original_get  # type: ignore[method-assign]
    assert refresh(facade, winner["refresh_token"])["access_token"]  # the winner's pair works


def test_refresh_token_of_another_client(facade: Facade) -> None:
    facade.resolver.clients["other-agent"] = public_client(client_id="other-agent")
    first = exchange(facade)
    form = refresh_form(first["refresh_token"], client_id="other-agent")
    refused(lambda: facade.token().token(form, ""), "invalid_grant")
    assert grant_of(facade).status == "active"  # not reuse: just not yours


def test_unknown_missing_and_expired_refresh_tokens(facade: Facade) -> None:
    first = exchange(facade)
    refused(lambda: refresh(facade, "nope"), "invalid_grant")
    refused(
        lambda: facade.token().token({"grant_type": "refresh_token", "client_id": "public-agent"}, ""),
        "invalid_request",
    )
    facade.clock.now = grant_of(facade).expires_at + 1
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")


def test_refresh_of_a_revoked_grant(facade: Facade) -> None:
    first = exchange(facade)
    facade.grants.revoke(grant_of(facade).grant_id, "test", 1)
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    assert facade.cognito.refreshes == 0


def test_scope_may_narrow_but_not_widen() -> None:
    facade = Facade()
    facade.cognito.user = replace(facade.cognito.user, groups=())  # bob-like: read only
    first = exchange(facade)
    refused(lambda: refresh(facade, first["refresh_token"], scope="notes:read notes:write"), "invalid_scope")
    # Values the kit does not serve are ignored, as at /authorize (RFC 6749 section 3.3).
    assert refresh(facade, first["refresh_token"], scope="admin offline_access")["scope"] == "notes:read"


def test_refresh_with_a_narrower_scope_answers_that_scope(facade: Facade) -> None:
    first = exchange(facade)
    assert first["scope"] == "notes:read notes:write"
    assert facade.rts.items[sha256_hex(first["refresh_token"])].scopes == {"notes:read", "notes:write"}
    narrowed = refresh(facade, first["refresh_token"], scope="notes:read")
    # RFC 6749 sections 5.1 and 6: never more than was requested.
    assert narrowed["scope"] == "notes:read"
    # RFC 6749 section 6: the new refresh token's scope is identical to the presented one's,
    # so omitting scope next time means the scope originally granted.
    successor = facade.rts.items[sha256_hex(narrowed["refresh_token"])]
    assert successor.scopes == {"notes:read", "notes:write"}
    again = refresh(facade, narrowed["refresh_token"])
    assert again["scope"] == "notes:read notes:write"
    # Narrowing never allows widening beyond the refresh token's scope.
    third = refresh(facade, again["refresh_token"], scope="notes:read admin")
    assert third["scope"] == "notes:read"
    assert grant_of(facade).status == "active"


def test_refresh_token_scope_bounds_the_request_even_below_the_grant(facade: Facade) -> None:
    # A refresh token carries its own scope (RFC 6749 section 6); an item without one (written
    # before the attribute existed) falls back to the grant's.
    first = exchange(facade)
    key = sha256_hex(first["refresh_token"])
    facade.rts.items[key] = replace(facade.rts.items[key], scopes=frozenset({"notes:read"}))
    refused(lambda: refresh(facade, first["refresh_token"], scope="notes:write"), "invalid_scope")
    assert refresh(facade, first["refresh_token"])["scope"] == "notes:read"
    second = exchange(facade)
    key = sha256_hex(second["refresh_token"])
    facade.rts.items[key] = replace(facade.rts.items[key], scopes=None)
    assert refresh(facade, second["refresh_token"])["scope"] == "notes:read notes:write"


def test_refresh_resource_must_be_the_mcp_url(facade: Facade) -> None:
    first = exchange(facade)
    refused(lambda: refresh(facade, first["refresh_token"], resource="https://other.example/mcp"), "invalid_target")
    second = refresh(facade, first["refresh_token"], resource=facade.settings.mcp_url)
    # RFC 3986 section 6.2: the same resource, spelled differently, is the same resource.
    third = refresh(facade, second["refresh_token"], resource="HTTPS://MCP.EXAMPLE.COM:443/mcp/")
    assert third["access_token"]


def test_cognito_invalid_grant_revokes_the_grant(facade: Facade) -> None:
    first = exchange(facade)
    facade.cognito.sessions.clear()  # Cognito ended the session
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")
    assert grant_of(facade).status == "revoked"


def test_cognito_outage_leaves_the_refresh_token_usable(facade: Facade) -> None:
    first = exchange(facade)
    facade.cognito.fail = True
    with pytest.raises(DependencyError):
        refresh(facade, first["refresh_token"])
    assert facade.rts.items[sha256_hex(first["refresh_token"])].status == "active"
    facade.cognito.fail = False
    assert refresh(facade, first["refresh_token"])["access_token"]


def test_rotated_cognito_refresh_token_is_kept_encrypted(facade: Facade) -> None:
    first = exchange(facade)
    facade.cognito.rotate = True
    refresh(facade, first["refresh_token"])
    grant = grant_of(facade)
    (current,) = facade.cognito.sessions
    assert facade.cipher.decrypt(grant.upstream_refresh, grant_context(grant.grant_id)).decode() == current


def test_refreshed_token_of_another_session_fails_closed(facade: Facade) -> None:
    first = exchange(facade)
    facade.cognito.access_overrides = {"origin_jti": "another-session"}
    with pytest.raises(DependencyError):
        refresh(facade, first["refresh_token"])
    assert facade.rts.items[sha256_hex(first["refresh_token"])].status == "active"


# --------------------------------------------------------------------------- revoke (RFC 7009)
def test_revoking_a_refresh_token_revokes_the_grant_and_upstream(facade: Facade) -> None:
    first = exchange(facade)
    facade.token().revoke({"token": first["refresh_token"], "client_id": "public-agent"}, "")
    assert grant_of(facade).status == "revoked" and facade.cognito.revoked
    refused(lambda: refresh(facade, first["refresh_token"]), "invalid_grant")


def test_revoking_an_access_token_revokes_its_grant(facade: Facade) -> None:
    first = exchange(facade)
    form = {"token": first["access_token"], "token_type_hint": "access_token", "client_id": "public-agent"}
    facade.token().revoke(form, "")
    assert grant_of(facade).status == "revoked"


@pytest.mark.parametrize("token", ["unknown-opaque", "a.b.c", "x" * 9000])
def test_unknown_tokens_are_fine(facade: Facade, token: str) -> None:
    exchange(facade)
    facade.token().revoke({"token": token, "client_id": "public-agent"}, "")
    assert grant_of(facade).status == "active"


def test_tokens_of_another_client_are_refused(facade: Facade) -> None:
    facade.resolver.clients["other-agent"] = public_client(client_id="other-agent")
    first = exchange(facade)
    for token in (first["refresh_token"], first["access_token"]):
        refused(lambda t=token: facade.token().revoke({"token": t, "client_id": "other-agent"}, ""), "invalid_grant")
    assert grant_of(facade).status == "active"


def test_revoke_needs_client_authentication_and_a_token() -> None:
    facade = conf_facade()
    code = conf_code(facade)
    body = facade.token().token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://agent.example.org/cb",
            "code_verifier": "v" * 43 + "-verifier",
        },
        basic("conf-agent", "s3cret"),
    )
    refused(
        lambda: facade.token().revoke({"token": body["refresh_token"]}, basic("conf-agent", "bad")),
        "invalid_client",
        401,
    )
    refused(lambda: facade.token().revoke({}, basic("conf-agent", "s3cret")), "invalid_request")
    assert grant_of(facade).status == "active"


def test_upstream_outage_is_503_and_the_retry_finishes_the_revocation(facade: Facade) -> None:
    # RFC 7009 section 2.2: 200 means revoked, upstream included; never claim what was not done.
    first = exchange(facade)
    form = {"token": first["refresh_token"], "client_id": "public-agent"}
    facade.cognito.fail = True
    with pytest.raises(DependencyError):
        facade.token().revoke(form, "")
    assert grant_of(facade).status == "revoked" and grant_of(facade).upstream_revocation_pending
    facade.cognito.fail = False
    facade.token().revoke(form, "")
    (upstream,) = facade.cognito.revoked
    assert upstream.startswith("cognito-rt-") and grant_of(facade).upstream_refresh is None


# --------------------------------------------------------------------------- handler shape
def event(route: str, form: dict[str, str] | str | None = None, **headers: str) -> dict[str, Any]:
    body = form if isinstance(form, str) else urlencode(form or {})
    return {
        "routeKey": route,
        "headers": {"content-type": "application/x-www-form-urlencoded", **headers},
        "body": body,
        "isBase64Encoded": False,
    }


def assert_no_store(result: dict[str, Any]) -> None:
    assert result["headers"]["Cache-Control"] == "no-store"
    assert result["headers"]["Pragma"] == "no-cache"
    assert result["headers"]["Access-Control-Allow-Origin"] == "*"


def test_every_token_answer_is_no_store(facade: Facade) -> None:
    handle = make_handler(facade.token)
    code = approve(facade)["code"]
    ok = handle(event("POST /token", code_form(code)), FakeContext())
    assert ok["statusCode"] == 200 and ok["headers"]["Content-Type"] == "application/json"
    bad = handle(event("POST /token", code_form(code, code_verifier="w" * 43)), FakeContext())
    assert bad["statusCode"] == 400 and '"invalid_grant"' in bad["body"]
    revoke = handle(event("POST /revoke", {"token": "x", "client_id": "public-agent"}), FakeContext())
    assert revoke["statusCode"] == 200 and revoke["body"] == ""
    for result in (ok, bad, revoke):
        assert_no_store(result)


def test_invalid_client_answer_has_basic_challenge(facade: Facade) -> None:
    result = make_handler(facade.token)(
        event("POST /token", {"grant_type": "authorization_code"}, authorization="Basic Zm9vOmJhcg=="), FakeContext()
    )
    assert result["statusCode"] == 401 and result["headers"]["WWW-Authenticate"].startswith("Basic")
    assert_no_store(result)


def test_outage_is_503_with_retry_after_and_no_store(facade: Facade) -> None:
    facade.resolver.fail = True
    result = make_handler(facade.token)(
        event("POST /token", {"grant_type": "authorization_code", "client_id": "a"}), FakeContext()
    )
    assert result["statusCode"] == 503 and result["headers"]["Retry-After"]
    assert_no_store(result)


@pytest.mark.parametrize(
    "ev",
    [
        {"routeKey": "POST /token", "headers": {"content-type": "application/json"}, "body": "{}"},
        event("POST /token", "grant_type=a&grant_type=b"),
        {
            "routeKey": "POST /token",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "body": "!!notbase64",
            "isBase64Encoded": True,
        },
    ],
)
def test_malformed_requests_are_invalid_request(facade: Facade, ev: dict[str, Any]) -> None:
    result = make_handler(facade.token)(ev, FakeContext())
    assert result["statusCode"] == 400 and '"invalid_request"' in result["body"]
    assert_no_store(result)


def _b64(raw: bytes) -> str:
    import base64

    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic \u00e9",  # non-ASCII: base64.b64decode raised ValueError (a 500 before)
        "Basic \ud800",  # a lone surrogate
        "Basic !!!not-base64",
        "Basic Zm9v",  # base64 of "foo": no colon
        _b64(b"\xff\xfe:\xfd"),  # not UTF-8
        _b64("conf-agent:\u00e9".encode()),  # a non-ASCII secret is a mismatch, not an exception
        _b64(b"conf-agent:%ED%A0%80"),  # a percent-encoded lone surrogate
    ],
)
@pytest.mark.parametrize("route", ["POST /token", "POST /revoke"])
def test_malformed_basic_credentials_are_invalid_client(route: str, authorization: str) -> None:
    facade = conf_facade()
    form = {"grant_type": "authorization_code", "token": "x"}
    result = make_handler(facade.token)(event(route, form, authorization=authorization), FakeContext())
    assert result["statusCode"] == 401, result["body"]
    assert '"invalid_client"' in result["body"] and result["headers"]["WWW-Authenticate"].startswith("Basic")
    assert_no_store(result)


@pytest.mark.parametrize(
    ("body", "b64", "error"),
    [
        ("grant_type=refresh_token&client_id=\ud800", False, "invalid_request"),  # lone surrogate in the body
        ("grant_type=refresh_token&client_id=public-agent&refresh_token=\u00e9", False, "invalid_grant"),
        ("grant_type=refresh_token&client_id=public-agent&refresh_token=%ED%A0%80", False, "invalid_grant"),
        ("grant_type=refresh_token&client_id=%C3%A9", False, "invalid_client"),
        (
            "grant_type=authorization_code&client_id=public-agent&code=c&redirect_uri=x&code_verifier=\u00e9",
            False,
            "invalid_grant",
        ),
        ("Z3JhbnRfdHlwZT3/", True, "invalid_request"),  # base64 of non-UTF-8 bytes
        ("!!not base64", True, "invalid_request"),
    ],
)
def test_hostile_token_bodies_get_oauth_errors(facade: Facade, body: str, b64: bool, error: str) -> None:
    ev = event("POST /token", body)
    ev["isBase64Encoded"] = b64
    result = make_handler(facade.token)(ev, FakeContext())
    assert 400 <= result["statusCode"] < 500 and f'"{error}"' in result["body"], result["body"]
    assert_no_store(result)


@pytest.mark.parametrize("token", ["\u00e9", "\u00e9.\u00e9.\u00e9", "%ED%A0%80"])
def test_hostile_revocation_tokens_are_fine(facade: Facade, token: str) -> None:
    result = make_handler(facade.token)(
        event("POST /revoke", {"token": token, "client_id": "public-agent"}), FakeContext()
    )
    assert result["statusCode"] == 200


@pytest.mark.parametrize("route", ["OPTIONS /token", "OPTIONS /revoke"])
def test_cors_preflight(facade: Facade, route: str) -> None:
    result = make_handler(facade.token)({"routeKey": route, "headers": {}}, FakeContext())
    assert result["statusCode"] == 204
    headers = result["headers"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]


def test_client_without_refresh_grant_type_cannot_refresh() -> None:
    facade = Facade(resolver=FakeResolver(public_client(grant_types=("authorization_code",))))
    refused(lambda: refresh(facade, "whatever"), "unauthorized_client")
