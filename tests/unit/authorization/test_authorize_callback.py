"""GET /oauth/callback: bound to the browser's transaction, the upstream Cognito exchange, what it
stores, and the group ceilings that bound what a user may grant."""

from __future__ import annotations

import json

import pytest

from functions.core.cognito.gateway_secret import StaticSecret, gateway_pkce_verifier
from functions.core.cognito.token_cipher import txn_context
from functions.core.platform.crypto import sha256_hex
from functions.core.platform.errors import DependencyError
from tests.facade_fakes import (
    GATEWAY_SECRET,
    PUBLIC_REDIRECT,
    Facade,
    User,
    approve_page,
    callback,
    query_of,
    start,
    to_consent_page,
)
from tests.helpers import BASE_URL


# --------------------------------------------------------------------------- callback binding
@pytest.mark.parametrize("cookie", [None, "", "garbage", "abc.def"])
def test_callback_without_a_valid_cookie_is_a_page(facade: Facade, cookie: str | None) -> None:
    started = start(facade)
    answer = facade.authorization().callback({"code": "c", "state": started.txn_id}, cookie)
    assert answer.status == 400 and "Location" not in answer.headers
    assert not facade.cognito.exchanged  # the code was not even exchanged


def test_callback_state_must_equal_the_cookie_transaction(facade: Facade) -> None:
    first, second = start(facade), start(facade)
    answer = facade.authorization().callback({"code": "c", "state": second.txn_id}, first.cookie)
    assert answer.status == 400 and not facade.cognito.exchanged


def test_forged_cookie_mac_is_refused(facade: Facade) -> None:
    started = start(facade)
    forged = started.txn_id + ".AAAA"
    assert facade.authorization().callback({"code": "c", "state": started.txn_id}, forged).status == 400


def test_expired_transaction_is_refused(facade: Facade) -> None:
    started = start(facade)
    facade.clock.now += 601
    assert callback(facade, started).status == 400
    assert not facade.cognito.exchanged


def test_replayed_callback_is_refused(facade: Facade) -> None:
    started = start(facade)
    assert callback(facade, started).status == 200
    assert callback(facade, started).status == 400
    assert len(facade.cognito.exchanged) == 1


def test_cognito_error_redirects_access_denied(facade: Facade) -> None:
    started = start(facade)
    answer = facade.authorization().callback({"error": "access_denied", "state": started.txn_id}, started.cookie)
    query = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(PUBLIC_REDIRECT)
    assert (query["error"], query["state"], query["iss"]) == ("access_denied", "client-state", BASE_URL)
    assert facade.txns.items[started.txn_id].status == "decided"


def test_code_exchange_uses_callback_url_and_the_derived_verifier(facade: Facade) -> None:
    started = start(facade)
    callback(facade, started, code="the-code")
    ((code, redirect_uri, verifier),) = facade.cognito.exchanged
    assert (code, redirect_uri) == ("the-code", BASE_URL + "/oauth/callback")
    assert verifier == gateway_pkce_verifier(StaticSecret(GATEWAY_SECRET), started.txn_id)


def test_upstream_invalid_grant_asks_cognito_once_more_then_redirects_access_denied(facade: Facade) -> None:
    # Cognito's code is single use: a callback retried after a 503 finds it spent. The kit
    # restarts the upstream leg once (same transaction, same PKCE), then gives up.
    started = start(facade)
    facade.cognito.invalid_grant = True
    again = callback(facade, started)
    assert again.status == 302
    upstream = query_of(again.headers["Location"])
    assert upstream["state"] == started.txn_id + ".1"
    assert upstream["code_challenge"] == started.upstream["code_challenge"]
    last = facade.authorization().callback({"code": "c2", "state": upstream["state"]}, started.cookie)
    assert query_of(last.headers["Location"])["error"] == "access_denied"


def test_upstream_outage_propagates_as_dependency_error(facade: Facade) -> None:
    started = start(facade)
    facade.cognito.fail = True
    with pytest.raises(DependencyError):
        callback(facade, started)


@pytest.mark.parametrize(
    ("access", "id_token"),
    [
        ({"aud": "https://other.example/mcp"}, {}),  # access token not for this resource
        ({"client_id": "another-app"}, {}),
        ({}, {"sub": "someone-else"}),  # ID token of another user
        ({}, {"aud": "another-app"}),
        ({}, {"iss": "https://evil.example"}),
    ],
)
def test_tokens_that_do_not_add_up_end_in_server_error(facade: Facade, access: dict, id_token: dict) -> None:
    facade.cognito.access_overrides, facade.cognito.id_token_overrides = access, id_token
    started = start(facade)
    query = query_of(callback(facade, started).headers["Location"])
    assert query["error"] == "server_error"
    assert facade.cognito.revoked  # Cognito's session is let go
    assert facade.txns.items[started.txn_id].status == "decided"


def test_callback_stores_user_and_encrypted_upstream_tokens(facade: Facade) -> None:
    started, _ = to_consent_page(facade)
    txn = facade.txns.items[started.txn_id]
    assert txn.status == "authenticated"
    assert (txn.sub, txn.username, txn.email, txn.groups) == ("sub-alice", "alice", "alice@example.com", ("editors",))
    assert txn.origin_jti and txn.csrf_hash
    (refresh,) = facade.cognito.sessions
    assert txn.upstream_tokens is not None and refresh.encode() not in txn.upstream_tokens
    blob = json.loads(facade.cipher.decrypt(txn.upstream_tokens, txn_context(started.txn_id)))
    assert blob["refresh_token"] == refresh


# --------------------------------------------------------------------------- ceilings
def test_scope_ceilings_limit_what_a_user_may_grant() -> None:
    facade = Facade()
    facade.cognito.user = User(sub="sub-bob", username="bob", email="bob@example.com", groups=())
    started, page = to_consent_page(facade)
    assert facade.txns.items[started.txn_id].allowed_scopes == ("notes:read",)
    assert "Not available to your account" in page.body and "notes:write" in page.body
    query = approve_page(facade, started, page)
    assert facade.codes.items[sha256_hex(query["code"])].scopes == ("notes:read",)


def test_nothing_grantable_is_access_denied() -> None:
    facade = Facade()
    facade.cognito.user = User(sub="sub-bob", username="bob", groups=())
    started = start(facade, scope="notes:write")
    query = query_of(callback(facade, started).headers["Location"])
    assert query["error"] == "access_denied"
    assert facade.cognito.revoked
