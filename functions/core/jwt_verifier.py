"""Verification of Cognito access tokens presented at the MCP endpoint.

Cognito signs access tokens with RS256 and publishes its keys at the user pool's JWKS URL.
A resource server must check signature, issuer, token type, the app client, audience when a
resource was bound (RFC 8707 / RFC 9068 section 4 style), and expiry. Every failure is a
typed ``TokenRejected`` so the caller answers 401 ``invalid_token`` (RFC 6750 section 3.1);
a JWKS outage is a ``DependencyError`` (503), never an allow.

Cost on a warm container: one dict lookup for the key (built once per ``kid``) and one
python-jose decode, about 70 us.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from functions.core.errors import DependencyError
from functions.core.observability import logger
from functions.core.settings import CognitoSettings

RejectReason = Literal[
    "malformed",
    "oversized",
    "unsupported_alg",
    "unknown_kid",
    "bad_signature",
    "expired",
    "wrong_issuer",
    "wrong_token_use",
    "wrong_client",
    "wrong_audience",
    "missing_claim",
]

# Cognito access tokens are ~1 KB; groups and scopes can grow them. Anything far beyond
# is not a Cognito token and is refused before any parsing (resource exhaustion).
MAX_TOKEN_LENGTH: Final = 8192
_JWS_SHAPE: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
# RFC 8725 section 3.1: the verifier fixes the algorithm; ``alg`` in the header is not trusted.
ALGORITHM: Final = "RS256"
JWKS_TIMEOUT_SECONDS: Final = 3.0
JWKS_MAX_BYTES: Final = 64 * 1024


class TokenRejected(Exception):
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


JwksFetcher = Callable[[str], Mapping[str, Any]]


def fetch_jwks(url: str) -> Mapping[str, Any]:
    """GET the JWKS document (stdlib only: no HTTP client import on the cold path)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (https/loopback URL from settings)
    try:
        with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_SECONDS) as resp:  # noqa: S310
            raw = resp.read(JWKS_MAX_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DependencyError(f"JWKS fetch failed: {exc.__class__.__name__}") from exc
    if len(raw) > JWKS_MAX_BYTES:
        raise DependencyError("JWKS document too large")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise DependencyError("JWKS document is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise DependencyError("JWKS document has no keys")
    return doc


class JwksCache:
    """Signing keys by ``kid``, fetched once per container.

    An unknown ``kid`` triggers at most one refetch per ``min_refresh_seconds``: Cognito
    rotates keys rarely, so a flood of tokens with invented kids costs one HTTP call a
    minute, not one per request.
    """

    def __init__(
        self,
        url: str,
        *,
        min_refresh_seconds: float,
        fetcher: JwksFetcher = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._min_refresh = min_refresh_seconds
        self._fetch = fetcher
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._last_fetch: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def get(self, kid: str) -> Key | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = self._clock()
            if self._last_fetch is not None and now - self._last_fetch < self._min_refresh:
                return None  # rate-limited: treat as unknown
            self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        had_keys = bool(self._keys)
        self._last_fetch = now
        self.fetch_count += 1
        try:
            doc = self._fetch(self._url)
        except DependencyError:
            if had_keys:
                # Keep serving the keys we have; the unknown kid is simply unknown.
                logger.warning("JWKS refresh failed; keeping cached keys")
                return
            raise
        keys: dict[str, Key] = {}
        for entry in doc["keys"]:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
                continue
            try:
                keys[entry["kid"]] = jwk.construct(entry, algorithm=ALGORITHM)
            except JOSEError:
                logger.warning("ignoring malformed JWKS key", extra={"kid": entry["kid"][:64]})
        if not keys and not had_keys:
            raise DependencyError("JWKS has no usable RS256 keys")
        if keys:
            self._keys = keys


class CognitoAccessTokenVerifier:
    def __init__(self, settings: CognitoSettings, jwks: JwksCache | None = None) -> None:
        self._issuer = settings.cognito_issuer
        self._client_id = settings.gateway_client_id
        self._audience = settings.mcp_url if settings.resource_binding else None
        self._leeway = settings.token_leeway_seconds
        self._jwks = jwks or JwksCache(settings.jwks_url, min_refresh_seconds=settings.jwks_min_refresh_seconds)

    def verify(self, token: str) -> AccessToken:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("oversized", "token too large")
        if not _JWS_SHAPE.match(token):
            raise TokenRejected("malformed", "token is not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise TokenRejected("malformed", "token header is not valid JSON") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected("unsupported_alg", "token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise TokenRejected("malformed", "token has no key id")
        key = self._jwks.get(kid)
        if key is None:
            raise TokenRejected("unknown_kid", "token signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={
                    "verify_aud": False,  # checked below: Cognito access tokens carry aud only when bound
                    "verify_at_hash": False,
                    "require_exp": True,
                    "require_iat": True,
                    "require_iss": True,
                    "require_sub": True,
                    "leeway": self._leeway,
                },
            )
        except ExpiredSignatureError:
            raise TokenRejected("expired", "token expired") from None
        except JWTClaimsError as exc:
            if "issuer" in str(exc).lower():
                raise TokenRejected("wrong_issuer", "token issuer not accepted") from None
            raise TokenRejected("missing_claim", "token claims invalid") from None
        except JOSEError:
            raise TokenRejected("bad_signature", "token signature invalid") from None
        return self._check_claims(claims)

    def _check_claims(self, claims: dict[str, Any]) -> AccessToken:
        # Cognito ID tokens are signed by the same key: only access tokens are bearer tokens here.
        if claims.get("token_use") != "access":
            raise TokenRejected("wrong_token_use", "not an access token")
        # Only tokens minted for the kit's gateway app client (other app clients of the pool
        # must not reach the MCP server).
        if claims.get("client_id") != self._client_id:
            raise TokenRejected("wrong_client", "token issued to another client")
        if self._audience is not None:
            # RFC 8707 section 2 + MCP spec "Token Audience Binding": a token must have been
            # issued for this resource; Cognito sets aud to the bound resource.
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if self._audience not in audiences:
                raise TokenRejected("wrong_audience", "token not issued for this resource")
        # Without resource binding (COGNITO_RESOURCE_BINDING=false: Lite plan or classic hosted
        # UI), Cognito access tokens have no aud. What stands in for it: the issuer (this pool),
        # client_id (the kit's own gateway client, which no other application may use), the
        # scopes under the resource-server prefix <B>/mcp (the MCP function reads no others) and
        # the grant behind origin_jti, which only this kit writes. What is lost: a token minted
        # for another resource server of the same pool through the same gateway client would be
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
