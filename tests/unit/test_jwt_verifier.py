"""Cognito access-token verification: one test per rejection reason."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jwt

from functions.core.cognito.jwks import JwksCache, fetch_jwks
from functions.core.cognito.jwt_verifier import (
    MAX_TOKEN_LENGTH,
    CognitoAccessTokenVerifier,
    TokenRejected,
)
from functions.core.platform.errors import DependencyError
from tests.helpers import (
    GATEWAY_CLIENT,
    MCP_URL,
    FakeJwks,
    SigningKey,
    access_claims,
    make_key,
    mcp_settings,
    mint,
)

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
    assert f"{MCP_URL}/notes:read" in token.scopes
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
    # A token that does carry an audience must name this resource (RFC 8707 section 2)...
    rejected(mint(KEY, access_claims(aud="https://other.example/api")), "wrong_audience", resource_binding=False)
    rejected(mint(KEY, access_claims(aud=["https://other.example/api"])), "wrong_audience", resource_binding=False)
    assert verifier(resource_binding=False).verify(mint(KEY, access_claims()))  # its own aud: accepted
    # ...lost: one without aud minted for another resource server of the same pool through the
    # same gateway client is accepted, which is why the gateway client must never serve another app.


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


# --------------------------------------------------------------------------- JWKS outages


def test_failed_fetch_is_an_outage_and_not_an_attempt() -> None:
    # The first fetch fails: 503, and the very next request after recovery verifies
    # (the failure did not start the one-refetch-per-minute window).
    jwks, clock = FakeJwks([KEY.public_jwk], fail=True), Clock()
    v = verifier(jwks, clock)
    for _ in range(3):
        with pytest.raises(DependencyError):
            v.verify(mint(KEY, access_claims()))
    jwks.fail = False
    assert v.verify(mint(KEY, access_claims())).sub == "sub-alice"


def test_refetch_failure_for_rotated_kid_is_an_outage() -> None:
    # Keys are cached; a token with a new kid needs a refetch, which fails: 503, never
    # invalid_token. Once JWKS is back (same minute) the new key verifies at once.
    new = make_key("kid-new")
    jwks, clock = FakeJwks([KEY.public_jwk]), Clock()
    v = verifier(jwks, clock)
    v.verify(mint(KEY, access_claims()))
    clock.now += 61
    jwks.keys, jwks.fail = [KEY.public_jwk, new.public_jwk], True
    with pytest.raises(DependencyError):
        v.verify(mint(new, access_claims()))
    assert v.verify(mint(KEY, access_claims())).sub == "sub-alice"  # cached keys keep working
    jwks.fail = False
    assert v.verify(mint(new, access_claims())).sub == "sub-alice"


def test_forged_kids_cannot_hammer_jwks_after_recovery() -> None:
    jwks, clock = FakeJwks([KEY.public_jwk], fail=True), Clock()
    v = verifier(jwks, clock)
    bogus = mint(make_key("forged"), access_claims())
    with pytest.raises(DependencyError):
        v.verify(bogus)
    jwks.fail = False
    for _ in range(20):
        with pytest.raises(TokenRejected) as info:
            v.verify(bogus)
        assert info.value.reason == "unknown_kid"
    assert jwks.calls == 2  # one failed, one successful fetch; the rest were rate-limited


# --------------------------------------------------------------------------- malformed JWKS keys


def _without(member: str) -> dict[str, object]:
    return {k: v for k, v in KEY.public_jwk.items() if k != member}


# The weak key under test (RFC 7518 section 3.3 forbids it for RS256).
SHORT = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()  # noqa: S505


def _b64int(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


BROKEN_KEYS = {
    "no n": _without("n"),
    "no e": _without("e"),
    "n not base64url": dict(KEY.public_jwk, n="!!not base64!!"),
    "n empty": dict(KEY.public_jwk, n=""),
    "n not a string": dict(KEY.public_jwk, n=12345),
    "e not a string": dict(KEY.public_jwk, e=["AQAB"]),
    "e zero": dict(KEY.public_jwk, e="AA"),
    "e not below n": dict(KEY.public_jwk, n="AQAB", e="AQAB"),
    "1024-bit key": dict(KEY.public_jwk, n=_b64int(SHORT.n), e=_b64int(SHORT.e)),
    "kty EC": dict(KEY.public_jwk, kty="EC"),
    "no kty": _without("kty"),
    "alg RS512": dict(KEY.public_jwk, alg="RS512"),
    "use enc": dict(KEY.public_jwk, use="enc"),
    "key_ops sign only": dict(KEY.public_jwk, key_ops=["sign"]),
    "no kid": _without("kid"),
    "kid not a string": dict(KEY.public_jwk, kid=7),
    "not an object": "kid-1",
}


@pytest.mark.parametrize("entry", BROKEN_KEYS.values(), ids=BROKEN_KEYS.keys())
def test_jwks_with_only_an_unusable_key_is_an_outage(entry: object) -> None:
    jwks = FakeJwks([entry])  # type: ignore[list-item]
    v = verifier(jwks)
    with pytest.raises(DependencyError):
        v.verify(mint(KEY, access_claims()))
    # Not counted as an attempt: once the issuer publishes a good key, the next request verifies.
    jwks.keys = [KEY.public_jwk]
    assert v.verify(mint(KEY, access_claims())).sub == "sub-alice"


@pytest.mark.parametrize("entry", BROKEN_KEYS.values(), ids=BROKEN_KEYS.keys())
def test_unusable_key_is_skipped_beside_good_ones(entry: object, caplog: pytest.LogCaptureFixture) -> None:
    other = make_key("kid-other")
    broken = dict(entry, kid="kid-other") if isinstance(entry, dict) and isinstance(entry.get("kid"), str) else entry
    v = verifier(FakeJwks([broken, KEY.public_jwk]))  # type: ignore[list-item]
    assert v.verify(mint(KEY, access_claims())).sub == "sub-alice"
    with pytest.raises(TokenRejected) as info:
        v.verify(mint(other, access_claims()))
    assert info.value.reason == "unknown_kid"
    assert any("ignoring" in r.getMessage() for r in caplog.records)  # the skipped key is logged ...
    logged = " ".join(str(vars(r)) for r in caplog.records)
    assert (
        KEY.public_jwk["n"][:32] not in logged and KEY.public_jwk["n"][-32:] not in logged
    )  # ... without key material


# --------------------------------------------------------------------------- fetch_jwks over loopback


class _JwksServer:
    """A loopback HTTP server answering every GET with a fixed status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        answer = (status, body)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(answer[0])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer[1])))
                self.end_headers()
                self.wfile.write(answer[1])

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_fetch_jwks_reads_a_good_document() -> None:
    with _JwksServer(200, json.dumps({"keys": [KEY.public_jwk]}).encode()) as url:
        assert fetch_jwks(url)["keys"] == [KEY.public_jwk]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"keys": []}'),
        (404, b"not found"),
        (204, b""),
        (200, b"<html>garbage</html>"),
        (200, b'{"keys": "not a list"}'),
        (200, b"[]"),
        (200, b"[" * 50_000),
        (200, b'{"keys": [' + b'{"kty": "RSA"},' * 5000 + b"{}]}"),  # over the size cap
    ],
    ids=["500", "404", "204", "not json", "keys not a list", "not an object", "deeply nested", "too large"],
)
def test_fetch_jwks_failures_are_outages(status: int, body: bytes) -> None:
    with _JwksServer(status, body) as url, pytest.raises(DependencyError):
        fetch_jwks(url)


def test_fetch_jwks_connection_refused_is_an_outage() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DependencyError):
        fetch_jwks(f"http://127.0.0.1:{port}/jwks.json")


def test_fetch_jwks_timeout_is_an_outage() -> None:
    with socket.socket() as s:  # listens, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(DependencyError):
            fetch_jwks(f"http://127.0.0.1:{s.getsockname()[1]}/jwks.json", timeout=0.2)


# --------------------------------------------------------------------------- token shape and claims


def _signed(header: bytes, payload: bytes, key: SigningKey = KEY) -> str:
    enc = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    signing_input = f"{enc(header)}.{enc(payload)}"
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{enc(signature)}"


def test_signed_claims_that_are_not_a_json_object() -> None:
    header = json.dumps({"alg": "RS256", "kid": KEY.kid}).encode()
    rejected(_signed(header, b"not json"), "malformed")
    rejected(_signed(header, b"[1, 2]"), "malformed")


def test_header_that_is_not_an_object() -> None:
    rejected(_signed(b'["RS256"]', json.dumps(access_claims()).encode()), "malformed")


def test_critical_header_parameters_refused() -> None:
    header = json.dumps({"alg": "RS256", "kid": KEY.kid, "crit": ["exp"], "exp": 1}).encode()
    rejected(_signed(header, json.dumps(access_claims()).encode()), "malformed")


def test_not_before_in_the_future() -> None:
    now = int(time.time())
    rejected(mint(KEY, access_claims(nbf=now + 600)), "not_yet_valid")
    assert verifier().verify(mint(KEY, access_claims(nbf=now + 3))).sub == "sub-alice"  # within leeway


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "sub"])
def test_required_registered_claims(claim: str) -> None:
    rejected(mint(KEY, {k: v for k, v in access_claims().items() if k != claim}), "missing_claim")


@pytest.mark.parametrize("value", ["soon", True, None, [1], float("inf")], ids=repr)
def test_exp_must_be_a_numeric_date(value: object) -> None:
    header = json.dumps({"alg": "RS256", "kid": KEY.kid}).encode()
    claims = dict(access_claims(), exp=value)
    rejected(_signed(header, json.dumps(claims).encode()), "missing_claim")


def test_jti_must_be_a_string() -> None:
    rejected(mint(KEY, access_claims(jti=42)), "missing_claim")


def test_signature_not_base64url() -> None:
    head, body, _ = mint(KEY, access_claims()).split(".")
    rejected(f"{head}.{body}.A", "malformed")


# --------------------------------------------------------------------------- verified-token cache


def _cached_verifier(jwks: FakeJwks, jwks_clock: Clock, now: list[float], size: int = 16) -> CognitoAccessTokenVerifier:
    s = mcp_settings()
    cache = JwksCache(s.jwks_url, min_refresh_seconds=60, fetcher=jwks, clock=jwks_clock)
    return CognitoAccessTokenVerifier(s, cache, clock=lambda: now[0], verified_cache_size=size)


def test_repeated_token_still_expires() -> None:
    now = [time.time()]
    v = _cached_verifier(FakeJwks([KEY.public_jwk]), Clock(), now)
    token = mint(KEY, access_claims(exp=int(now[0]) + 100))
    assert v.verify(token).sub == "sub-alice"
    assert v.verify(token).sub == "sub-alice"  # answered from the cache
    now[0] += 100 + mcp_settings().token_leeway_seconds + 1
    with pytest.raises(TokenRejected) as info:
        v.verify(token)
    assert info.value.reason == "expired"


def test_repeated_token_needs_the_key_that_verified_it() -> None:
    # The issuer drops the key (rotation or compromise): a cached token is verified again and refused.
    jwks, jwks_clock, now = FakeJwks([KEY.public_jwk]), Clock(), [time.time()]
    v = _cached_verifier(jwks, jwks_clock, now)
    token = mint(KEY, access_claims())
    assert v.verify(token).sub == "sub-alice"
    new = make_key("kid-new")
    jwks.keys, jwks_clock.now = [new.public_jwk], jwks_clock.now + 61
    assert v.verify(mint(new, access_claims())).sub == "sub-alice"  # refetch: kid-1 is gone
    with pytest.raises(TokenRejected) as info:
        v.verify(token)
    assert info.value.reason == "unknown_kid"


def test_verified_token_cache_is_bounded_and_exact() -> None:
    now = [time.time()]
    v = _cached_verifier(FakeJwks([KEY.public_jwk]), Clock(), now, size=2)
    tokens = [mint(KEY, access_claims(jti=f"jti-{i}")) for i in range(3)]
    for token in tokens:
        v.verify(token)
    assert list(v._verified) == tokens[1:]  # the oldest was dropped
    head, body, sig = tokens[2].split(".")
    with pytest.raises(TokenRejected):
        v.verify(f"{head}.{body}.{sig[:-4]}AAAA")  # not the cached string: fully verified, refused
