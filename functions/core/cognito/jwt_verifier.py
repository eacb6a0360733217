"""Verification of Cognito access tokens presented at the MCP endpoint.

Cognito signs access tokens with RS256 and publishes its keys at the user pool's JWKS URL.
A resource server must check signature, issuer, token type, the app client, audience when a
resource was bound (RFC 8707 / RFC 9068 section 4 style), and expiry. Every failure is a
typed ``TokenRejected`` so the caller answers 401 ``invalid_token`` (RFC 6750 section 3.1);
a JWKS outage (refused, timeout, non-200, garbage, no usable key) is a ``DependencyError``
(503 + Retry-After), never an allow and never ``invalid_token``.

Cost on a warm container: the token is parsed once (three base64url decodes, two
``json.loads``), the signature is checked with a python-jose key object built once per
JWKS key, and the registered claims are checked explicitly (the same checks python-jose's
``jwt.decode`` made, with the same outcomes): about 2x one raw RSA-2048 verify. A token
seen before is answered from a bounded cache after its expiry and key are checked again.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from jose.backends.base import Key

from functions.core.cognito.jwks import ALGORITHM, MAX_KID_LENGTH, JwksCache, b64url_decode, verify_rs256
from functions.core.platform.settings import CognitoSettings

RejectReason = Literal[
    "malformed",
    "oversized",
    "unsupported_alg",
    "unknown_kid",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_token_use",
    "wrong_client",
    "wrong_audience",
    "missing_claim",
]

# Cognito access tokens are ~1 KB; groups and scopes can grow them. Anything far beyond
# is not a Cognito token and is refused before any parsing (resource exhaustion).
MAX_TOKEN_LENGTH: Final = 8192
# Matched with fullmatch: "$" would also accept a trailing newline.
_JWS_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Verified tokens remembered per container (about 1.5 KB each).
VERIFIED_CACHE_SIZE: Final = 1024


class TokenRejected(Exception):
    """The token is not a live access token of the gateway client (401 ``invalid_token``, RFC 6750 section 3.1).

    ``reason`` is a fixed code safe to log; ``description`` never contains the token.
    """

    def __init__(self, reason: RejectReason, description: str) -> None:
        super().__init__(description)
        self.reason: RejectReason = reason
        self.description = description


@dataclass(frozen=True)
class AccessToken:
    """The verified claims the kit uses."""

    sub: str
    username: str
    client_id: str
    scopes: tuple[str, ...]
    origin_jti: str
    jti: str
    exp: int
    groups: tuple[str, ...]


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(part).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        # UnicodeDecodeError and JSONDecodeError are ValueErrors.
        raise TokenRejected("malformed", f"token {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected("malformed", f"token {what} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> int | None:
    """RFC 7519 section 2 NumericDate, truncated to seconds as python-jose does."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRejected("missing_claim", f"token claim {name} is not a NumericDate")
    return int(value)


def _compact_parts(token: str) -> tuple[str, str, str]:
    """Header, payload and signature of a compact JWS (RFC 7515 section 7.1), still encoded.

    Raises ``TokenRejected``: ``oversized`` past ``MAX_TOKEN_LENGTH`` (checked before anything
    else is done with it), ``malformed`` unless it is three base64url parts.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected("oversized", "token too large")
    if not _JWS_SHAPE.fullmatch(token):
        raise TokenRejected("malformed", "token is not a compact JWS")
    header, payload, signature = token.split(".")
    return header, payload, signature


def jwks_for(settings: CognitoSettings) -> JwksCache:
    """The per-container key cache for the pool's JWKS URL (``settings.jwks_url``)."""
    return JwksCache(settings.jwks_url, min_refresh_seconds=settings.jwks_min_refresh_seconds)


class CognitoAccessTokenVerifier:
    """Verifies Cognito access tokens issued to the gateway client: RS256 signature (JWKS), ``iss``,
    ``token_use``, ``client_id``, ``aud`` when resource binding is on, ``exp``/``nbf`` against the
    clock in epoch seconds with leeway (RFC 7519 section 4.1)."""

    def __init__(
        self,
        settings: CognitoSettings,
        jwks: JwksCache | None = None,
        clock: Callable[[], float] = time.time,
        verified_cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        self._issuer = settings.cognito_issuer
        self._client_id = settings.gateway_client_id
        self._audience = settings.mcp_url
        self._audience_required = settings.resource_binding
        self._leeway = settings.token_leeway_seconds
        self._jwks = jwks or jwks_for(settings)
        self._clock = clock
        # Exact token string -> (claims, kid, key that verified it). A client presents the same
        # access token on every request of a session; its signature and claims cannot change.
        self._verified: dict[str, tuple[AccessToken, str, Key]] = {}
        self._verified_max = verified_cache_size
        self._verified_lock = threading.Lock()

    def verify(self, token: str) -> AccessToken:
        """Verify a compact JWS access token (RFC 7515 section 5.2, RFC 7519 section 7.2).

        Raises ``TokenRejected`` (answer 401 ``invalid_token``) for any token that is not a
        live access token of the kit's gateway client, ``DependencyError`` (answer 503) when
        the JWKS needed to decide cannot be had.

        A token verified before is answered from a bounded per-container cache, after the
        checks that depend on time or on the key set: ``exp`` (with leeway) again, and the key
        that verified it must still be the JWKS key for its ``kid``.
        """
        hit = self._verified.get(token)
        if hit is not None:
            access, kid, key = hit
            if self._jwks.current(kid) is key:
                if access.exp < int(self._clock()) - self._leeway:
                    raise TokenRejected("expired", "token expired")
                return access
        verified = self._verify_uncached(token)
        if self._verified_max > 0:
            with self._verified_lock:
                while len(self._verified) >= self._verified_max:
                    self._verified.pop(next(iter(self._verified)))  # oldest first (insertion order)
                self._verified[token] = verified
        return verified[0]

    def unverified_grant_id(self, token: str) -> str | None:
        """The ``origin_jti`` claim of ``token`` read WITHOUT verifying it, only while no JWKS was ever fetched.

        For a container's first verification, which must fetch the JWKS first: the caller may
        start reading that grant in parallel with the fetch. Nothing read this way may be used
        unless ``verify`` then accepts the token and returns the same ``origin_jti``. ``None``
        when the keys are already held (verifying is then microseconds: read after it) or the
        token is not even shaped like a compact JWS with that claim.
        """
        if self._jwks.ever_fetched:
            return None
        try:
            claims = _json_object(_compact_parts(token)[1], "claims")
        except TokenRejected:
            return None
        origin_jti = claims.get("origin_jti")
        return origin_jti if isinstance(origin_jti, str) and origin_jti else None

    def _verify_uncached(self, token: str) -> tuple[AccessToken, str, Key]:
        encoded_header, encoded_claims, encoded_signature = _compact_parts(token)
        header = _json_object(encoded_header, "header")
        if header.get("alg") != ALGORITHM:
            raise TokenRejected("unsupported_alg", "token algorithm not accepted")
        if "crit" in header:
            # RFC 7515 section 4.1.11: extensions this verifier does not understand must be refused.
            raise TokenRejected("malformed", "token has critical header parameters")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise TokenRejected("malformed", "token has no key id")
        key = self._jwks.get(kid)
        if key is None:
            raise TokenRejected("unknown_kid", "token signed with an unknown key")
        try:
            signature = b64url_decode(encoded_signature)
        except binascii.Error:
            raise TokenRejected("malformed", "token signature is not base64url") from None
        # RFC 7515 section 5.2 step 8: the signing input is the encoded header and payload as sent.
        if not verify_rs256(key, f"{encoded_header}.{encoded_claims}".encode("ascii"), signature):
            raise TokenRejected("bad_signature", "token signature invalid")
        claims = _json_object(encoded_claims, "claims")
        self._check_registered(claims)
        return self._check_claims(claims), kid, key

    def _check_registered(self, claims: Mapping[str, Any]) -> None:
        """RFC 7519 section 4.1: exp, iat, iss and sub required; exp and nbf with leeway."""
        exp, iat = _numeric_date(claims, "exp"), _numeric_date(claims, "iat")
        if exp is None or iat is None or "iss" not in claims or "sub" not in claims:
            raise TokenRejected("missing_claim", "token lacks exp, iat, iss or sub")
        now = int(self._clock())
        if exp < now - self._leeway:
            raise TokenRejected("expired", "token expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise TokenRejected("not_yet_valid", "token not yet valid")
        if claims["iss"] != self._issuer:
            raise TokenRejected("wrong_issuer", "token issuer not accepted")

    def _check_claims(self, claims: dict[str, Any]) -> AccessToken:
        # Cognito ID tokens are signed by the same key: only access tokens are bearer tokens here.
        if claims.get("token_use") != "access":
            raise TokenRejected("wrong_token_use", "not an access token")
        # Only tokens minted for the kit's gateway app client (other app clients of the pool
        # must not reach the MCP server).
        if claims.get("client_id") != self._client_id:
            raise TokenRejected("wrong_client", "token issued to another client")
        aud = claims.get("aud")
        if aud is not None or self._audience_required:
            # RFC 8707 section 2 + MCP spec "Token Audience Binding": a token must have been
            # issued for this resource; Cognito sets aud to the bound resource. Without resource
            # binding (COGNITO_RESOURCE_BINDING=false: Lite plan or classic hosted UI) Cognito's
            # access tokens carry no aud, but one that does must still name this resource.
            audiences = aud if isinstance(aud, list) else [aud]
            if self._audience not in audiences:
                raise TokenRejected("wrong_audience", "token not issued for this resource")
        # Without resource binding, what stands in for aud: the issuer (this pool), client_id (the
        # kit's own gateway client, which no other application may use), the scopes under the
        # resource-server prefix <B>/mcp (the MCP function reads no others) and the grant behind
        # origin_jti, which only this kit writes. What is lost: a token without aud minted for
        # another resource server of the same pool through the same gateway client would be
        # accepted, so the gateway client must never be shared (README, "Use an existing user pool").
        sub, origin_jti, jti = claims.get("sub"), claims.get("origin_jti"), claims.get("jti")
        if not (isinstance(sub, str) and isinstance(origin_jti, str) and origin_jti and isinstance(jti, str)):
            raise TokenRejected("missing_claim", "token lacks sub, jti or origin_jti")
        scope = claims.get("scope", "")
        groups = claims.get("cognito:groups", [])
        return AccessToken(
            sub=sub,
            username=str(claims.get("username", "")),
            client_id=self._client_id,
            scopes=tuple(scope.split()) if isinstance(scope, str) else (),
            origin_jti=origin_jti,
            jti=jti,
            exp=int(claims["exp"]),
            groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
        )
