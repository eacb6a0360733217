"""POST /token: client authentication, the authorization_code grant, errors per RFC 6749 section 5.2."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from jose import jwt

from functions.core.platform.crypto import (
    PKCE_VERIFIER,
    derive_key,
    mac,
    mac_ok,
    pkce_matches,
    s256,
    same_bytes,
    same_hash,
    sha256_hex,
)
from functions.core.platform.ddb import ConditionFailed
from functions.core.platform.errors import OAuthError
from tests import facade_fakes
from tests.facade_fakes import (
    CONF_REDIRECT,
    PUBLIC_REDIRECT,
    VERIFIER,
    Facade,
    FakeResolver,
    approve,
    confidential_client,
    facade_settings,
    public_client,
)
from tests.helpers import MCP_URL

CHALLENGE_OF_VERIFIER = s256(VERIFIER)


@pytest.fixture
def facade() -> Facade:
    return Facade()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{quote(client_id)}:{quote(secret)}".encode()).decode()


def code_form(code: str, **overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PUBLIC_REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": "public-agent",
        "resource": MCP_URL,
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def exchange(facade: Facade, **overrides: str | None) -> dict[str, Any]:
    code = approve(facade)["code"]
    return facade.token().token(code_form(code, **overrides), "")


def refused(call: Any, error: str, status: int = 400) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        call()
    assert (info.value.error, info.value.status) == (error, status), info.value.description
    return info.value


# --------------------------------------------------------------------------- client authentication
def conf_facade(method: str = "client_secret_basic") -> Facade:
    return Facade(resolver=FakeResolver(public_client(), confidential_client(method)))


def conf_code(facade: Facade) -> str:
    return approve(facade, client_id="conf-agent", redirect_uri=CONF_REDIRECT)["code"]


def conf_form(code: str, **extra: str) -> dict[str, str]:
    return facade_fakes.code_form(code, redirect_uri=CONF_REDIRECT, **extra)


def test_client_secret_basic() -> None:
    facade = conf_facade()
    body = facade.token().token(conf_form(conf_code(facade)), basic("conf-agent", "s3cret"))
    assert body["token_type"] == "Bearer"


def test_basic_credentials_are_form_urlencoded() -> None:
    facade = Facade(resolver=FakeResolver(confidential_client(secret="a:b c%d")))
    body = facade.token().token(conf_form(conf_code(facade)), basic("conf-agent", "a:b c%d"))
    assert body["access_token"]


def test_wrong_basic_secret_is_401_with_basic_challenge() -> None:
    facade = conf_facade()
    err = refused(
        lambda: facade.token().token(conf_form(conf_code(facade)), basic("conf-agent", "nope")), "invalid_client", 401
    )
    assert err.headers["WWW-Authenticate"].startswith("Basic")


def test_client_secret_post() -> None:
    facade = conf_facade("client_secret_post")
    form = conf_form(conf_code(facade), client_id="conf-agent", client_secret="s3cret")
    assert facade.token().token(form, "")["access_token"]


@pytest.mark.parametrize(
    ("method", "how"),
    [
        ("client_secret_basic", "post"),  # registered basic, used post
        ("client_secret_post", "basic"),  # registered post, used basic
        ("client_secret_basic", "none"),  # no secret at all
        ("client_secret_post", "wrong-post"),
    ],
)
def test_client_must_authenticate_as_registered(method: str, how: str) -> None:
    facade = conf_facade(method)
    form, header = conf_form(conf_code(facade)), ""
    if how == "post":
        form |= {"client_id": "conf-agent", "client_secret": "s3cret"}
    elif how == "wrong-post":
        form |= {"client_id": "conf-agent", "client_secret": "wrong"}
    elif how == "basic":
        header = basic("conf-agent", "s3cret")
    else:
        form |= {"client_id": "conf-agent"}
    refused(lambda: facade.token().token(form, header), "invalid_client", 401)


def test_two_authentication_methods_are_invalid_request() -> None:
    facade = conf_facade()
    form = conf_form(conf_code(facade), client_secret="s3cret")
    refused(lambda: facade.token().token(form, basic("conf-agent", "s3cret")), "invalid_request")


def test_public_client_presenting_a_secret_is_refused(facade: Facade) -> None:
    code = approve(facade)["code"]
    refused(lambda: facade.token().token(code_form(code, client_secret="x"), ""), "invalid_client", 401)


@pytest.mark.parametrize("header", ["Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()])
def test_malformed_authorization_header_is_invalid_client(facade: Facade, header: str) -> None:
    refused(lambda: facade.token().token(code_form("x", client_id=None), header), "invalid_client", 401)


def test_unknown_or_missing_client_is_invalid_client(facade: Facade) -> None:
    refused(lambda: facade.token().token(code_form("x", client_id="ghost"), ""), "invalid_client", 401)
    refused(lambda: facade.token().token(code_form("x", client_id=None), ""), "invalid_client", 401)


def test_basic_id_must_match_form_client_id() -> None:
    facade = conf_facade()
    form = conf_form(conf_code(facade), client_id="public-agent")
    refused(lambda: facade.token().token(form, basic("conf-agent", "s3cret")), "invalid_client", 401)


# --------------------------------------------------------------------------- grant types
def test_grant_type_errors(facade: Facade) -> None:
    refused(lambda: facade.token().token({"client_id": "public-agent"}, ""), "invalid_request")
    refused(
        lambda: facade.token().token({"grant_type": "password", "client_id": "public-agent"}, ""),
        "unsupported_grant_type",
    )


def test_grant_type_not_registered_is_unauthorized_client() -> None:
    facade = Facade(resolver=FakeResolver(public_client(grant_types=("authorization_code",))))
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "public-agent"}
    refused(lambda: facade.token().token(form, ""), "unauthorized_client")


# --------------------------------------------------------------------------- authorization_code
def test_code_exchange_answer(facade: Facade) -> None:
    body = exchange(facade)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}  # no id_token
    claims = jwt.get_unverified_claims(body["access_token"])
    (grant,) = facade.grants.items.values()
    assert claims["origin_jti"] == grant.grant_id  # Cognito's JWT, untouched
    assert body["token_type"] == "Bearer" and 3500 < body["expires_in"] <= 3600
    assert body["scope"] == "notes:read notes:write"
    rt = facade.rts.items[sha256_hex(body["refresh_token"])]
    assert body["refresh_token"] not in facade.rts.items  # stored only hashed
    assert (rt.status, rt.client_id, rt.grant_id, rt.expires_at) == (
        "active",
        "public-agent",
        grant.grant_id,
        grant.expires_at,
    )
    (code,) = facade.codes.items.values()
    assert code.used_at is not None


def test_no_refresh_token_for_a_client_without_the_grant_type() -> None:
    facade = Facade(resolver=FakeResolver(public_client(grant_types=("authorization_code",))))
    assert "refresh_token" not in exchange(facade)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_verifier": None}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:9999/callback"}, "invalid_grant"),  # equal, not just matching
        ({"code_verifier": "w" * 43}, "invalid_grant"),  # PKCE
        ({"code_verifier": "short"}, "invalid_grant"),
        ({"resource": "https://other.example/mcp"}, "invalid_target"),
        ({"resource": MCP_URL + "//"}, "invalid_target"),
    ],
)
def test_code_checks(facade: Facade, overrides: dict, error: str) -> None:
    code = approve(facade)["code"]
    refused(lambda: facade.token().token(code_form(code, **overrides), ""), error)
    assert facade.codes.items[sha256_hex(code)].used_at is None  # a refused request changes nothing
    assert all(g.status == "pending" for g in facade.grants.items.values())


def test_resource_is_optional_at_the_token_endpoint(facade: Facade) -> None:
    assert exchange(facade, resource=None)["access_token"]


@pytest.mark.parametrize(
    "resource", [MCP_URL + "/", MCP_URL.upper().replace("/MCP", "/mcp"), "https://mcp.example.com:443/mcp"]
)
def test_resource_is_compared_normalised_at_the_token_endpoint(facade: Facade, resource: str) -> None:
    # RFC 8707 section 2.2 with RFC 3986 section 6.2: the same resource, spelled differently.
    assert exchange(facade, resource=resource)["access_token"]


def test_offline_access_and_openid_complete_the_flow_with_the_catalogue_scope(facade: Facade) -> None:
    code = approve(facade, scope="notes:read offline_access openid")["code"]
    body = facade.token().token(code_form(code), "")
    assert body["scope"] == "notes:read" and body["refresh_token"]  # RFC 6749 section 5.1


def test_unknown_code(facade: Facade) -> None:
    refused(lambda: facade.token().token(code_form("no-such-code"), ""), "invalid_grant")


def test_code_of_another_client_is_invalid_grant_and_not_consumed() -> None:
    facade = Facade(resolver=FakeResolver(public_client(), public_client(client_id="other-agent")))
    code = approve(facade)["code"]
    refused(lambda: facade.token().token(code_form(code, client_id="other-agent"), ""), "invalid_grant")
    assert facade.token().token(code_form(code), "")["access_token"]


def test_expired_code(facade: Facade) -> None:
    code = approve(facade)["code"]
    facade.clock.now += 61
    refused(lambda: facade.token().token(code_form(code), ""), "invalid_grant")


def test_a_grant_is_pending_until_its_code_is_redeemed_and_expires_with_it(facade: Facade) -> None:
    code = approve(facade)["code"]
    record = facade.codes.items[sha256_hex(code)]
    (pending,) = facade.grants.items.values()
    assert pending.status == "pending" and pending.expires_at == record.expires_at
    assert not pending.is_active(facade.clock.now)  # /mcp refuses it
    facade.token().token(code_form(code), "")
    (active,) = facade.grants.items.values()
    assert active.status == "active"
    assert active.expires_at == int(facade.clock.now) + facade.settings.grant_lifetime_days * 86400
    assert active.refresh_head is not None and active.refresh_head in facade.rts.items


@pytest.mark.parametrize(
    "replay",
    [
        {"code_verifier": "w" * 43},  # without the verifier: not the client (RFC 7636 section 1)
        {"redirect_uri": "http://127.0.0.1:9999/callback"},
    ],
)
def test_replayed_code_revokes_the_grant(facade: Facade, replay: dict[str, str]) -> None:
    code = approve(facade)["code"]
    first = facade.token().token(code_form(code), "")
    refused(lambda: facade.token().token(code_form(code, **replay), ""), "invalid_grant")
    (grant,) = facade.grants.items.values()
    assert grant.status == "revoked" and grant.revoked_reason == "code_replay"
    assert facade.cognito.revoked  # and Cognito's session
    assert facade.rts.items[sha256_hex(first["refresh_token"])].status == "revoked"  # the chain head too
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "public-agent"}
    refused(lambda: facade.token().token(form, ""), "invalid_grant")


def test_identical_retry_within_the_window_gets_the_same_answer(facade: Facade) -> None:
    # A lost answer or a 503 makes the client send the same request again: same client, same
    # redirect_uri, same PKCE verifier. That is a retry of the one redemption, not a replay.
    code = approve(facade)["code"]
    first = facade.token().token(code_form(code), "")
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds - 1
    again = facade.token().token(code_form(code), "")
    assert again["refresh_token"] == first["refresh_token"] and again["access_token"] == first["access_token"]
    assert again["expires_in"] < first["expires_in"] and again["scope"] == first["scope"]
    assert len(facade.rts.items) == 1 and grant_status(facade) == "active" and not facade.cognito.revoked
    # The stored answer is KMS ciphertext, never the token itself.
    record = facade.codes.items[sha256_hex(code)]
    assert record.answer is not None and first["refresh_token"].encode() not in record.answer


def test_identical_replay_after_the_window_revokes(facade: Facade) -> None:
    code = approve(facade)["code"]
    facade.token().token(code_form(code), "")
    facade.clock.now += facade.settings.refresh_reuse_grace_seconds
    refused(lambda: facade.token().token(code_form(code), ""), "invalid_grant")
    assert grant_status(facade) == "revoked"


def test_strict_mode_revokes_every_second_presentation() -> None:
    facade = Facade(settings=facade_settings(refresh_reuse_grace_seconds=0))
    code = approve(facade)["code"]
    facade.token().token(code_form(code), "")
    refused(lambda: facade.token().token(code_form(code), ""), "invalid_grant")
    assert grant_status(facade) == "revoked"


def test_losing_the_redemption_race_gets_the_winners_answer(facade: Facade) -> None:
    code = approve(facade)["code"]
    stale = facade.codes.items[sha256_hex(code)]
    won = facade.token().token(code_form(code), "")  # the winner, after our read
    original_get = facade.codes.get
    reads = iter([stale])  # our first read saw the code unused
    facade.codes.get = lambda h: next(reads, None) or original_get(h)  # type: ignore[method-assign]
    lost = facade.token().token(code_form(code), "")
    assert lost["refresh_token"] == won["refresh_token"] and grant_status(facade) == "active"


def grant_status(facade: Facade) -> str:
    (grant,) = facade.grants.items.values()
    return grant.status


def test_code_of_a_revoked_grant(facade: Facade) -> None:
    code = approve(facade)["code"]
    (grant,) = facade.grants.items.values()
    facade.grants.revoke(grant.grant_id, "test", 1)
    refused(lambda: facade.token().token(code_form(code), ""), "invalid_grant")


def test_code_whose_upstream_token_does_not_decrypt(facade: Facade) -> None:
    code = approve(facade)["code"]
    record = facade.codes.items[sha256_hex(code)]
    facade.codes.items[record.code_hash] = replace(record, grant_id="another-grant")
    facade.grants.items["another-grant"] = replace(next(iter(facade.grants.items.values())), grant_id="another-grant")
    refused(lambda: facade.token().token(code_form(code), ""), "invalid_grant")


def test_rotate_conflict_raises_condition_failed_in_memory(facade: Facade) -> None:
    body = exchange(facade)
    rt = facade.rts.items[sha256_hex(body["refresh_token"])]
    facade.rts.rotate(rt.token_hash, replace(rt, token_hash="new"), 1)
    with pytest.raises(ConditionFailed):
        facade.rts.rotate(rt.token_hash, replace(rt, token_hash="newer"), 2)


# --------------------------------------------------------------------------- constant-time comparisons on hostile input
@pytest.mark.parametrize("hostile", ["\u00e9", "\ud800", "a\udfffb", "\x00", "\U0001f600" * 50])
def test_constant_time_comparisons_never_raise(hostile: str) -> None:
    """hmac.compare_digest raises TypeError on non-ASCII str; every comparison is on bytes."""
    key = derive_key("root", "label")
    assert not same_hash(hostile, sha256_hex("secret"))
    assert not same_hash("secret", hostile)
    assert same_hash(hostile, sha256_hex(hostile))  # hashing is total, and injective
    assert not mac_ok(key, "txn", hostile)
    assert not mac_ok(key, hostile, mac(key, "txn"))
    assert mac_ok(key, hostile, mac(key, hostile))
    assert not pkce_matches(hostile, CHALLENGE_OF_VERIFIER)
    assert not pkce_matches(VERIFIER, hostile)
    # RFC 7636 section 4.1: the verifier's alphabet has no line break, not even a final one.
    assert not PKCE_VERIFIER.match(VERIFIER + "\n") and not pkce_matches(VERIFIER + "\n", CHALLENGE_OF_VERIFIER)
    assert not same_bytes(hostile, "txn") and same_bytes(hostile, hostile)
    assert sha256_hex("\ud800") != sha256_hex("\ufffd")
