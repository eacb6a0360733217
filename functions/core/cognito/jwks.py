"""The Cognito user pool's JSON Web Key Set: fetching it, building verification keys, RS256.

A resource server verifies Cognito's RS256 signatures with the keys the pool publishes at its
JWKS URL (RFC 7517). This module owns that key material: the HTTPS fetch (bounded in time and
size), which published keys are usable (RFC 7518 section 3.3, FIPS 186-5 section 5.4), the
RS256 check itself whatever python-jose backend is installed, and the per-container cache with
its refetch rules. A JWKS that cannot be had is a ``DependencyError`` (503 + Retry-After),
never a rejected token. ``functions.core.cognito.jwt_verifier`` uses it to verify access tokens.
"""

from __future__ import annotations

import binascii
import http.client
import json
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Final

from jose import jwk
from jose.backends.base import Key
from jose.exceptions import JOSEError

from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger

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
# RFC 8725 section 3.1: the verifier fixes the algorithm; ``alg`` in the header is not trusted.
ALGORITHM: Final = "RS256"
# Lambda's defined runtime environment variable naming how the environment was initialized
# ("on-demand", "provisioned-concurrency", "snap-start", ...). The prefetch runs only in the
# inits known not to be snapshotted: an unknown value (a future kind of init) does not prefetch.
INITIALIZATION_TYPE: Final = "AWS_LAMBDA_INITIALIZATION_TYPE"
PREFETCH_INITIALIZATION_TYPES: Final = frozenset({"on-demand", "provisioned-concurrency"})
# The base64url alphabet (RFC 4648 section 5), unpadded.
B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


def b64url_decode(part: str) -> bytes:
    """Base64url without padding (RFC 7515 section 2); ``binascii.Error`` if impossible.

    ``part`` has already matched the base64url alphabet (checked by the caller), so the translated
    text holds only standard base64 characters.
    """
    return binascii.a2b_base64(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4))


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
        if not isinstance(value, str) or not B64URL.fullmatch(value.rstrip("=")):
            return f"{member} is missing or not base64url"
    try:
        modulus = int.from_bytes(b64url_decode(entry["n"].rstrip("=")), "big")
        exponent = int.from_bytes(b64url_decode(entry["e"].rstrip("=")), "big")
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

    def prefetch(self) -> threading.Thread:
        """Start fetching the JWKS now, in a daemon thread; returns the thread.

        For a cold start: the fetch (a network round trip, 30-80 ms to Cognito over TLS) runs
        while the function's init imports its code, so the first request finds its keys built
        instead of fetching them. The fetch holds no lock: a request never waits for it (a
        request arriving before it finished fetches for itself, as without a prefetch, so a
        slow or unreachable JWKS, or an environment frozen mid-fetch, delays nothing). Its keys
        are installed, under the lock, only if no request has installed fresher ones. A failed
        prefetch changes nothing (logged at WARNING): the first request fetches as it would
        have, and its failure is that request's 503.
        """
        thread = threading.Thread(target=self._prefetch, name="jwks-prefetch", daemon=True)
        thread.start()
        return thread

    def _prefetch(self) -> None:
        started = self._clock()
        try:
            keys = self._load()
        except DependencyError as exc:
            logger.warning("JWKS prefetch failed; the first request fetches again", extra={"reason": str(exc)})
            return
        with self._lock:
            if self._last_success is None or self._last_success < started:
                self._keys, self._last_success = keys, started

    @property
    def ever_fetched(self) -> bool:
        """Whether a JWKS fetch ever succeeded in this container (False: the next verify fetches).

        A property, not a call: it asks the cache's state and never reaches the JWKS.
        """
        return self._last_success is not None

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


def prefetch_on_cold_start(jwks: JwksCache, environ: Mapping[str, str] = os.environ) -> threading.Thread | None:
    """Start this cold start's JWKS fetch (:meth:`JwksCache.prefetch`), or ``None`` where it must not run.

    Only in an on-demand or provisioned-concurrency Lambda init (not outside Lambda: tests,
    ``make dev``, tools importing a handler). Not in a SnapStart init (the kit's default for
    the MCP function): the snapshot may be restored days later, and the cache measures a key's
    age on the monotonic clock, which does not count the time a snapshot waits, so keys from
    the snapshot could outlive ``JWKS_MAX_AGE_SECONDS``; there the first request after a
    restore fetches them. Nor in any init type this code does not know.
    """
    if environ.get(INITIALIZATION_TYPE) not in PREFETCH_INITIALIZATION_TYPES:
        return None
    return jwks.prefetch()
