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
import http.client
import json
import math
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal

from jose import jwk
from jose.backends.base import Key
from jose.exceptions import JOSEError

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
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
# RFC 8725 section 3.1: the verifier fixes the algorithm; ``alg`` in the header is not trusted.
ALGORITHM: Final = "RS256"
# RFC 7518 section 3.3: a key of 2048 bits or larger MUST be used with RS256.
MIN_RSA_BITS: Final = 2048
# FIPS 186-5 section 5.4 (a): an RSA public exponent is odd with 2**16 < e < 2**256. This
# refuses e = 1 (the "signature" is the padded digest itself, forgeable by anyone) and small
# exponents; Cognito publishes e = 65537 ("AQAB").
MIN_RSA_EXPONENT: Final = 2**16 + 1
MAX_RSA_EXPONENT_BITS: Final = 256
# RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 section 3.3); python-rsa names it so.
RS256_HASH: Final = "SHA-256"
# Keys are trusted for at most this long after the fetch that published them; the next
# request after that fetches the JWKS again, so a key Cognito withdrew stops verifying
# within a day even on a container that never sees an unknown kid.
JWKS_MAX_AGE_SECONDS: Final = 24 * 3600
JWKS_TIMEOUT_SECONDS: Final = 3.0
JWKS_MAX_BYTES: Final = 64 * 1024
MAX_KID_LENGTH: Final = 256
# Verified tokens remembered per container (about 1.5 KB each).
VERIFIED_CACHE_SIZE: Final = 1024


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


@cache
def tls_context() -> ssl.SSLContext:
    """The container's one verifying TLS context for HTTPS fetches (certificates and host names).

    Loading the system CA store costs 100-150 ms with OpenSSL 3. ``urlopen``'s default opener
    would build its context at the first fetch (even of a plain-http URL), inside a request;
    the handler builds this one during init, which SnapStart snapshots.
    """
    return ssl.create_default_context()


def _open(request: urllib.request.Request, timeout: float) -> Any:
    if request.type == "https":
        return urllib.request.urlopen(request, timeout=timeout, context=tls_context())  # noqa: S310
    # Plain HTTP (the local stack on loopback): no TLS context is built; a redirect is not
    # followed (its target would be fetched without checks), so it fails as a non-200.
    return _PLAIN_HTTP.open(request, timeout=timeout)


def _plain_http_opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    return opener


_PLAIN_HTTP: Final = _plain_http_opener()


def fetch_jwks(url: str, *, timeout: float = JWKS_TIMEOUT_SECONDS) -> Mapping[str, Any]:
    """GET the JWKS document (stdlib only: no HTTP client import on the cold path).

    Returns the parsed document, a JSON object with a ``keys`` array (RFC 7517 section 5).
    Raises ``DependencyError`` for anything else: connection refused or reset, timeout
    (``timeout`` seconds, per socket operation), any status but 200, a body over
    ``JWKS_MAX_BYTES``, or a body that is not such a JSON object.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (https/loopback URL from settings)
    try:
        with _open(request, timeout) as resp:
            if resp.status != 200:
                raise DependencyError(f"JWKS answered HTTP {resp.status}")
            raw = resp.read(JWKS_MAX_BYTES + 1)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
        # HTTPError (non-2xx) is a URLError; a truncated or garbled response is an HTTPException.
        raise DependencyError(f"JWKS fetch failed: {exc.__class__.__name__}") from exc
    if len(raw) > JWKS_MAX_BYTES:
        raise DependencyError("JWKS document too large")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DependencyError("JWKS document is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise DependencyError("JWKS document has no keys")
    return doc


def build_key(entry: object) -> tuple[str, Key] | None:
    """``(kid, verification key)`` for a usable RS256 signing JWK, else ``None`` (logged).

    Usable (RFC 7517 section 4, RFC 7518 sections 3.3 and 6.3.1): an object with
    ``kty`` RSA, a non-empty string ``kid``, ``use`` absent or ``sig``, ``alg`` absent or
    RS256, ``key_ops`` absent or containing ``verify``, and base64url ``n`` and ``e`` that
    make an RSA public key of at least 2048 bits. Only the ``kid`` is logged, never key material.
    """
    if not isinstance(entry, dict):
        logger.warning("ignoring JWKS entry that is not an object")
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        logger.warning("ignoring JWKS key without a usable kid")
        return None
    problem = _unusable(entry)
    if problem is None:
        try:
            return kid, jwk.construct(entry, algorithm=ALGORITHM)
        except (JOSEError, ValueError, TypeError):
            problem = "key cannot be built"
    logger.warning("ignoring unusable JWKS key", extra={"kid": kid[:64], "problem": problem})
    return None


def _unusable(entry: Mapping[str, Any]) -> str | None:
    if entry.get("kty") != "RSA":
        return "kty is not RSA"
    if entry.get("use", "sig") != "sig":
        return "use is not sig"
    if entry.get("alg", ALGORITHM) != ALGORITHM:
        return "alg is not RS256"
    ops = entry.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return "key_ops does not allow verify"
    for member in ("n", "e"):
        value = entry.get(member)
        if not isinstance(value, str) or not _B64URL.fullmatch(value.rstrip("=")):
            return f"{member} is missing or not base64url"
    try:
        modulus = int.from_bytes(_segment(entry["n"].rstrip("=")), "big")
        exponent = int.from_bytes(_segment(entry["e"].rstrip("=")), "big")
    except binascii.Error:
        return "n or e is not base64url"
    if modulus.bit_length() < MIN_RSA_BITS:
        return "key shorter than 2048 bits"
    if exponent % 2 == 0 or exponent < MIN_RSA_EXPONENT or exponent.bit_length() > MAX_RSA_EXPONENT_BITS:
        return "public exponent is not an odd number in (2**16, 2**256)"
    return None


def verify_rs256(key: Key, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is an RS256 signature of ``message`` under ``key``, whatever the backend.

    RS256 is RSASSA-PKCS1-v1_5 with SHA-256 and nothing else (RFC 7518 section 3.3). The
    cryptography backend verifies with the key's fixed hash; python-jose's pure-Python ``rsa``
    backend (used when ``cryptography`` is not installed, as in the token and authorization
    functions) lets ``rsa.pkcs1.verify`` take the hash from the signature's DigestInfo, so
    MD5, SHA-1 or SHA-512 signatures would pass: there the hash it found must be SHA-256.
    """
    if type(key).__module__ == "jose.backends.rsa_backend":
        import rsa  # python-jose's own dependency for that backend

        public = getattr(key, "_prepared_key", None)
        if not isinstance(public, rsa.PublicKey):
            return False
        try:
            return bool(rsa.pkcs1.verify(message, signature, public) == RS256_HASH)
        except rsa.pkcs1.VerificationError:
            return False
    return bool(key.verify(message, signature))


class JwksCache:
    """Verification keys by ``kid``, built once per JWKS document and kept per container.

    An unknown ``kid`` triggers at most one refetch per ``min_refresh_seconds`` after a
    *successful* fetch: Cognito rotates keys rarely, so a flood of tokens with invented
    kids costs one HTTP call a minute, not one per request. A failed fetch (or a document
    without one usable key) is an outage: ``DependencyError``, not recorded as an attempt,
    so the first request after JWKS recovers fetches again and verifies.

    Keys expire ``JWKS_MAX_AGE_SECONDS`` after the fetch that published them; the next request
    fetches again and keeps only the keys Cognito still publishes. If that refetch fails the
    old keys are not served (fail closed): a key unconfirmed for a day may be one Cognito
    withdrew, so the request is a 503 whose retry verifies once the JWKS answers again.
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
        self._last_success: float | None = None
        self._lock = threading.Lock()

    def current(self, kid: str) -> Key | None:
        """The key now held for ``kid``, without fetching (``None`` if none or expired)."""
        return self._keys.get(kid) if self._fresh(self._clock()) else None

    def _fresh(self, now: float) -> bool:
        return self._last_success is not None and now - self._last_success < JWKS_MAX_AGE_SECONDS

    def get(self, kid: str) -> Key | None:
        """The key for ``kid``; ``None`` when a recent good JWKS lacks it. Raises ``DependencyError``."""
        key = self.current(kid)
        if key is not None:
            return key
        with self._lock:
            now = self._clock()
            if not self._fresh(now):
                self._keys = {}  # expired: none is served until a fetch confirms it
            key = self._keys.get(kid)
            if key is not None:
                return key
            if self._last_success is not None and now - self._last_success < self._min_refresh:
                return None  # a good JWKS lacked this kid moments ago: unknown, no refetch
            self._keys = self._load()
            self._last_success = now
            return self._keys.get(kid)

    def _load(self) -> dict[str, Key]:
        doc = self._fetch(self._url)
        keys: dict[str, Key] = {}
        for entry in doc["keys"]:
            built = build_key(entry)
            if built is not None:
                keys[built[0]] = built[1]
        if not keys:
            # Nothing could verify any token: the issuer's key set is broken, not the tokens.
            raise DependencyError("JWKS has no usable RS256 key")
        return keys


def _segment(part: str) -> bytes:
    """Base64url without padding (RFC 7515 section 2); ``binascii.Error`` if impossible.

    ``part`` has already matched the base64url alphabet (``_JWS_SHAPE``), so the translated
    text holds only standard base64 characters.
    """
    return binascii.a2b_base64(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4))


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(part).decode("utf-8"))
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


class CognitoAccessTokenVerifier:
    def __init__(
        self,
        settings: CognitoSettings,
        jwks: JwksCache | None = None,
        clock: Callable[[], float] = time.time,
        verified_cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        self._issuer = settings.cognito_issuer
        self._client_id = settings.gateway_client_id
        self._audience = settings.mcp_url if settings.resource_binding else None
        self._leeway = settings.token_leeway_seconds
        self._jwks = jwks or JwksCache(settings.jwks_url, min_refresh_seconds=settings.jwks_min_refresh_seconds)
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

    def _verify_uncached(self, token: str) -> tuple[AccessToken, str, Key]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("oversized", "token too large")
        if not _JWS_SHAPE.fullmatch(token):
            raise TokenRejected("malformed", "token is not a compact JWS")
        encoded_header, encoded_claims, encoded_signature = token.split(".")
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
            signature = _segment(encoded_signature)
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
