"""The gateway client's secret, and the keys and values the kit derives from it.

The gateway client is the one confidential Cognito app client the kit signs every person in
through. Its secret is read with ``DescribeUserPoolClient`` once per container and never
stored (docs/storage-schema.md, "Derived, not stored"); the cookie key, the kit's PKCE verifier
towards Cognito and each kit refresh token's successor are HMAC-derived from it, each under a
label of its own, so none can stand in for another.
"""

from __future__ import annotations

import threading
from typing import Any, Final, Protocol

from functions.core.platform import aws
from functions.core.platform.aws import aws_call
from functions.core.platform.crypto import derive_key, mac
from functions.core.platform.errors import DependencyError
from functions.core.platform.settings import FacadeSettings

# Derivation labels. Their values are part of what is derived (a changed label changes every
# derived value), so they stay as first released even where the constant's name changed.
COOKIE_KEY_LABEL: Final = "mcp-kit/cookie/v1"
GATEWAY_PKCE_LABEL: Final = "mcp-kit/upstream-pkce/v1"
REFRESH_SUCCESSOR_LABEL: Final = "mcp-kit/refresh-successor/v1"


class SecretSource(Protocol):
    """Where the gateway client's secret comes from."""

    def get(self) -> str:
        """The secret; ``DependencyError`` when it cannot be read (503, safe to retry)."""
        ...

    def invalidate(self) -> None:
        """Forget a cached secret, so the next ``get`` reads it again (after a rotation)."""
        ...


class StaticSecret:
    """A fixed secret (tests)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def get(self) -> str:
        """The fixed secret."""
        return self._secret

    def invalidate(self) -> None:
        """Nothing to forget."""
        return None


class GatewaySecret:
    """The gateway client's secret from ``DescribeUserPoolClient``, cached per container.

    ``invalidate`` drops it (Cognito answered invalid_client: the secret was rotated), so the
    next request reads the new one; the cache never outlives what it caches.
    """

    def __init__(self, user_pool_id: str, client_id: str, client: Any = None) -> None:
        self._pool, self._client_id, self._client = user_pool_id, client_id, client
        self._secret: str | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        """The cached secret, read once; ``DependencyError`` when Cognito cannot give it (fail closed)."""
        secret = self._secret
        if secret is not None:
            return secret
        with self._lock:
            if self._secret is None:
                self._secret = self._fetch()
            return self._secret

    def invalidate(self) -> None:
        """Drop the cached secret; the next ``get`` calls ``DescribeUserPoolClient`` again."""
        with self._lock:
            self._secret = None

    def _fetch(self) -> str:
        idp = self._client or aws.cognito_idp()
        with aws_call("DescribeUserPoolClient"):
            resp = idp.describe_user_pool_client(UserPoolId=self._pool, ClientId=self._client_id)
        secret = resp.get("UserPoolClient", {}).get("ClientSecret")
        if not isinstance(secret, str) or not secret:
            # Fail closed: the gateway client must be confidential (RFC 6749 section 2.1).
            raise DependencyError("the gateway client has no secret")
        return secret


_SECRETS: dict[tuple[str, str], GatewaySecret] = {}
_SECRETS_LOCK: Final = threading.Lock()


def gateway_secret(settings: FacadeSettings) -> GatewaySecret:
    """The per-container cached secret source for this pool's gateway client (one per pool and client)."""
    key = (settings.user_pool_id, settings.gateway_client_id)
    with _SECRETS_LOCK:
        if key not in _SECRETS:
            _SECRETS[key] = GatewaySecret(*key)
        return _SECRETS[key]


def cookie_key(secret: SecretSource) -> bytes:
    """The 32-byte key of the browser cookie's MAC; ``DependencyError`` when the secret cannot be read."""
    return derive_key(secret.get(), COOKIE_KEY_LABEL)


def gateway_pkce_verifier(secret: SecretSource, txn_id: str) -> str:
    """The gateway client's PKCE verifier towards Cognito for one transaction, derived, never stored.

    ``base64url(HMAC-SHA256(key, txn_id))`` is 43 characters of the RFC 7636 section 4.1
    alphabet: a valid verifier with 256 bits of entropy, recomputable at the callback.
    ``DependencyError`` when the secret cannot be read.
    """
    return mac(derive_key(secret.get(), GATEWAY_PKCE_LABEL), txn_id)


def refresh_successor(secret: SecretSource, refresh_token: str) -> str:
    """The kit refresh token that ``refresh_token`` rotates to, derived, never stored.

    ``base64url(HMAC-SHA256(key, refresh_token))``: 256 bits nobody without the gateway
    secret can compute, and the same on every presentation, so a retry inside the reuse
    grace gets the same successor instead of a new chain (RFC 9700 section 4.14.2).
    ``DependencyError`` when the secret cannot be read.
    """
    return mac(derive_key(secret.get(), REFRESH_SUCCESSOR_LABEL), refresh_token)
