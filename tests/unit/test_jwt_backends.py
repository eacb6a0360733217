"""RS256 means RSASSA-PKCS1-v1_5 with SHA-256 under every python-jose backend (RFC 7518
section 3.3), JWKS keys with a weak exponent are refused, and keys expire from the cache."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose.backends.rsa_backend import RSAKey as PyRsaKey

from functions.core.cognito import jwks
from functions.core.cognito.jwks import JWKS_MAX_AGE_SECONDS, JwksCache
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier, TokenRejected
from functions.core.platform.errors import DependencyError
from tests.helpers import FakeJwks, access_claims, make_key, mcp_settings, mint

KEY = make_key("kid-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed_with(digest: hashes.HashAlgorithm) -> str:
    """A token whose header says RS256, signed PKCS#1 v1.5 over ``digest`` of the signing input."""
    signing_input = (
        f"{_b64(json.dumps({'alg': 'RS256', 'kid': KEY.kid}).encode())}.{_b64(json.dumps(access_claims()).encode())}"
    )
    private = serialization.load_pem_private_key(KEY.private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return f"{signing_input}.{_b64(private.sign(signing_input.encode(), padding.PKCS1v15(), digest))}"


def _verifier(jwks: FakeJwks | None = None, clock: Clock | None = None) -> CognitoAccessTokenVerifier:
    s = mcp_settings()
    cache = JwksCache(
        s.jwks_url, min_refresh_seconds=60, fetcher=jwks or FakeJwks([KEY.public_jwk]), clock=clock or Clock()
    )
    return CognitoAccessTokenVerifier(s, cache)


@pytest.fixture
def rsa_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build every JWKS key with python-jose's pure-Python ``rsa`` backend (no cryptography)."""

    def construct(entry: dict[str, Any], algorithm: str) -> PyRsaKey:
        return PyRsaKey(entry, algorithm)

    monkeypatch.setattr(jwks.jwk, "construct", construct)


@pytest.mark.usefixtures("rsa_backend")
def test_rsa_backend_accepts_a_true_rs256_signature() -> None:
    assert _verifier().verify(_signed_with(hashes.SHA256())).sub == "sub-alice"


# The weak digests are the attack under test, never used to protect anything.
WRONG_DIGESTS = [hashes.SHA1(), hashes.MD5(), hashes.SHA512(), hashes.SHA384()]  # noqa: S303


@pytest.mark.usefixtures("rsa_backend")
@pytest.mark.parametrize("digest", WRONG_DIGESTS, ids=lambda d: d.name)
def test_rsa_backend_refuses_other_digests_as_rs256(digest: hashes.HashAlgorithm) -> None:
    with pytest.raises(TokenRejected) as info:
        _verifier().verify(_signed_with(digest))
    assert info.value.reason == "bad_signature"


@pytest.mark.parametrize("digest", WRONG_DIGESTS, ids=lambda d: d.name)
def test_cryptography_backend_refuses_other_digests_as_rs256(digest: hashes.HashAlgorithm) -> None:
    with pytest.raises(TokenRejected):
        _verifier().verify(_signed_with(digest))


def _with_exponent(e: int) -> dict[str, Any]:
    return dict(KEY.public_jwk, e=_b64(e.to_bytes((e.bit_length() + 7) // 8, "big")))


@pytest.mark.parametrize("e", [1, 3, 17, 65536, 65538, 2**256 + 1], ids=str)
def test_keys_with_a_weak_or_even_exponent_are_unusable(e: int) -> None:
    # FIPS 186-5 section 5.4: odd, 2**16 < e < 2**256. With e = 1 anyone forges signatures.
    assert jwks.build_key(_with_exponent(e)) is None
    with pytest.raises(DependencyError):  # no usable key: an outage, never an allow
        _verifier(FakeJwks([_with_exponent(e)])).verify(mint(KEY, access_claims()))


def test_the_usual_exponent_is_usable() -> None:
    assert jwks.build_key(_with_exponent(65537)) is not None


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"], ids=repr)
def test_a_token_with_trailing_whitespace_is_malformed(suffix: str) -> None:
    with pytest.raises(TokenRejected) as info:
        _verifier().verify(mint(KEY, access_claims()) + suffix)
    assert info.value.reason == "malformed"


def test_keys_expire_and_are_refetched() -> None:
    jwks, clock = FakeJwks([KEY.public_jwk]), Clock()
    v = _verifier(jwks, clock)
    token = mint(KEY, access_claims())
    v.verify(token)
    clock.now += JWKS_MAX_AGE_SECONDS - 1
    v.verify(token)
    assert jwks.calls == 1  # still fresh: no refetch
    clock.now += 1
    v.verify(token)  # expired: the next request fetches again, also for a token seen before
    assert jwks.calls == 2


def test_a_key_cognito_withdrew_stops_verifying_after_the_max_age() -> None:
    jwks, clock = FakeJwks([KEY.public_jwk]), Clock()
    v = _verifier(jwks, clock)
    token = mint(KEY, access_claims())
    v.verify(token)
    jwks.keys = [make_key("kid-2").public_jwk]
    clock.now += JWKS_MAX_AGE_SECONDS
    with pytest.raises(TokenRejected) as info:
        v.verify(token)
    assert info.value.reason == "unknown_kid"


def test_a_failed_refetch_of_expired_keys_is_an_outage_then_recovers() -> None:
    jwks, clock = FakeJwks([KEY.public_jwk]), Clock()
    v = _verifier(jwks, clock)
    token = mint(KEY, access_claims())
    v.verify(token)
    jwks.fail = True
    clock.now += JWKS_MAX_AGE_SECONDS
    with pytest.raises(DependencyError):  # fail closed: expired keys are not served
        v.verify(token)
    jwks.fail = False
    assert v.verify(token).sub == "sub-alice"  # the retry the 503 invites verifies
