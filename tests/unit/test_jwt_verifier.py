"""Cognito access-token verification: one test per rejection reason."""

from __future__ import annotations

import base64
import json
import time

import pytest
from jose import jwt

from functions.core.errors import DependencyError
from functions.core.jwt_verifier import MAX_TOKEN_LENGTH, CognitoAccessTokenVerifier, JwksCache, TokenRejected
from tests.helpers import GATEWAY_CLIENT, MCP_URL, FakeJwks, access_claims, make_key, mcp_settings, mint

KEY = make_key("kid-1")
OTHER = make_key("kid-1")  # same kid, different key material


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(jwks: FakeJwks | None = None, clock: Clock | None = None, **settings: object):
    fetcher = jwks or FakeJwks([KEY.public_jwk])
    s = mcp_settings(**settings)
    cache = JwksCache(s.jwks_url, min_refresh_seconds=60, fetcher=fetcher, clock=clock or Clock())
    return CognitoAccessTokenVerifier(s, cache)


def rejected(token: str, reason: str, **settings: object) -> None:
    with pytest.raises(TokenRejected) as info:
        verifier(**settings).verify(token)
    assert info.value.reason == reason


def test_valid_token_yields_claims() -> None:
    token = verifier().verify(mint(KEY, access_claims()))
    assert token.sub == "sub-alice"
    assert token.client_id == GATEWAY_CLIENT
    assert token.origin_jti == "origin-alice"
    assert f"{MCP_URL}/todos:read" in token.scopes
    assert token.groups == ("editors",)


def test_bad_signature() -> None:
    rejected(mint(OTHER, access_claims()), "bad_signature")


def test_tampered_payload() -> None:
    head, _, sig = mint(KEY, access_claims()).split(".")
    body = base64.urlsafe_b64encode(json.dumps(access_claims(sub="mallory")).encode()).rstrip(b"=").decode()
    rejected(f"{head}.{body}.{sig}", "bad_signature")


def test_alg_none() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"kid-1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(access_claims()).encode()).rstrip(b"=").decode()
    # A trailing empty signature is not even a well-formed JWS for us; give it a dummy one.
    rejected(f"{header}.{body}.AAAA", "unsupported_alg")


def test_hs256_signed_with_public_key() -> None:
    # The classic key-confusion attack: HMAC keyed with the RSA public key.
    public_pem = json.dumps(KEY.public_jwk)
    token = jwt.encode(access_claims(), public_pem, algorithm="HS256", headers={"kid": KEY.kid})
    rejected(token, "unsupported_alg")


def test_wrong_issuer() -> None:
    rejected(
        mint(KEY, access_claims(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other")), "wrong_issuer"
    )


def test_id_token_refused() -> None:
    rejected(mint(KEY, access_claims(token_use="id")), "wrong_token_use")


def test_wrong_client_id() -> None:
    rejected(mint(KEY, access_claims(client_id="another-app-client")), "wrong_client")


def test_wrong_audience() -> None:
    rejected(mint(KEY, access_claims(aud="https://other.example.com/mcp")), "wrong_audience")


def test_missing_audience_when_binding_on() -> None:
    rejected(mint(KEY, access_claims(aud=None)), "wrong_audience")


def test_audience_not_required_when_binding_off() -> None:
    token = verifier(resource_binding=False).verify(mint(KEY, access_claims(aud=None)))
    assert token.sub == "sub-alice"


def test_without_binding_issuer_and_gateway_client_stand_in_for_aud() -> None:
    """Lite plan / classic hosted UI: what still decides, and what is lost (README, existing pool)."""
    rejected(mint(KEY, access_claims(aud=None, client_id="another-app-client")), "wrong_client", resource_binding=False)
    other_pool = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"
    rejected(mint(KEY, access_claims(aud=None, iss=other_pool)), "wrong_issuer", resource_binding=False)
    rejected(mint(KEY, access_claims(aud=None, token_use="id")), "wrong_token_use", resource_binding=False)
    # Lost: a token of the same pool and gateway client bound to another resource is accepted,
    # which is why the gateway client must never serve another application.
    assert verifier(resource_binding=False).verify(mint(KEY, access_claims(aud="https://other.example/api")))


def test_expired() -> None:
    now = int(time.time())
    rejected(mint(KEY, access_claims(iat=now - 7200, exp=now - 60)), "expired")


def test_expiry_within_leeway_accepted() -> None:
    now = int(time.time())
    assert verifier().verify(mint(KEY, access_claims(exp=now - 3))).sub == "sub-alice"


def test_unknown_kid() -> None:
    rejected(mint(make_key("kid-2"), access_claims()), "unknown_kid")


def test_malformed() -> None:
    rejected("not-a-jwt", "malformed")
    rejected("a.b", "malformed")
    rejected("e30.e30.e30 ", "malformed")


def test_header_not_json() -> None:
    rejected("bm90anNvbg.e30.AAAA", "malformed")


def test_oversized_refused_before_parsing() -> None:
    rejected("a" * (MAX_TOKEN_LENGTH + 1), "oversized")


def test_missing_origin_jti() -> None:
    rejected(mint(KEY, access_claims(origin_jti=None)), "missing_claim")


def test_jwks_fetched_once_and_cached() -> None:
    jwks = FakeJwks([KEY.public_jwk])
    v = verifier(jwks)
    for _ in range(5):
        v.verify(mint(KEY, access_claims()))
    assert jwks.calls == 1


def test_unknown_kid_refetch_is_rate_limited() -> None:
    jwks, clock = FakeJwks([KEY.public_jwk]), Clock()
    v = verifier(jwks, clock)
    v.verify(mint(KEY, access_claims()))
    bogus = mint(make_key("bogus"), access_claims())
    with pytest.raises(TokenRejected):
        v.verify(bogus)
    assert jwks.calls == 1  # within the window of the initial fetch: no refetch at all
    clock.now += 61
    for _ in range(50):
        with pytest.raises(TokenRejected):
            v.verify(bogus)
    assert jwks.calls == 2  # one refetch for fifty bogus kids
    clock.now += 61
    with pytest.raises(TokenRejected):
        v.verify(bogus)
    assert jwks.calls == 3


def test_rotated_key_found_by_refetch() -> None:
    new = make_key("kid-new")
    jwks, clock = FakeJwks([KEY.public_jwk]), Clock()
    v = verifier(jwks, clock)
    v.verify(mint(KEY, access_claims()))
    jwks.keys = [KEY.public_jwk, new.public_jwk]
    clock.now += 61
    assert v.verify(mint(new, access_claims())).sub == "sub-alice"


def test_jwks_outage_is_a_dependency_error() -> None:
    with pytest.raises(DependencyError):
        verifier(FakeJwks([KEY.public_jwk], fail=True)).verify(mint(KEY, access_claims()))


def test_non_rs256_keys_in_jwks_are_ignored() -> None:
    bad = dict(KEY.public_jwk, alg="RS512")
    rejected_cache = verifier(FakeJwks([bad]))
    with pytest.raises(DependencyError):
        rejected_cache.verify(mint(KEY, access_claims()))
