"""The facade's upstream: Amazon Cognito's hosted OAuth endpoints, the gateway client's
secret, and KMS encryption of the Cognito tokens the kit keeps server-side.

* The gateway client secret is read with ``DescribeUserPoolClient`` once per container and
  never stored (docs/storage-schema.md, "Derived, not stored"); the cookie key and the key of
  the kit's PKCE verifier towards Cognito are derived from it, and so is each kit refresh
  token's successor.
* ``CognitoOAuthClient`` talks to ``/oauth2/token`` and ``/oauth2/revoke`` with the stdlib
  (no HTTP client import on the cold path) and short timeouts: a network failure is a
  ``DependencyError`` (503), an ``invalid_grant`` is ``UpstreamInvalidGrant``.
* ``KmsTokenCipher`` encrypts upstream tokens with an encryption context binding each
  ciphertext to its item, so a ciphertext copied to another item does not decrypt.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.platform import aws
from functions.core.platform.crypto import derive_key, mac
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings

COOKIE_KEY_LABEL: Final = "mcp-kit/cookie/v1"
UPSTREAM_PKCE_LABEL: Final = "mcp-kit/upstream-pkce/v1"
REFRESH_SUCCESSOR_LABEL: Final = "mcp-kit/refresh-successor/v1"
HTTP_TIMEOUT_SECONDS: Final = 5.0
MAX_RESPONSE_BYTES: Final = 64 * 1024
TOKEN_PATH: Final = "/oauth2/token"
REVOKE_PATH: Final = "/oauth2/revoke"
AUTHORIZE_PATH: Final = "/oauth2/authorize"


# --------------------------------------------------------------------------- gateway secret
class SecretSource(Protocol):
    def get(self) -> str: ...

    def invalidate(self) -> None: ...


class StaticSecret:
    """A fixed secret (tests)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def get(self) -> str:
        return self._secret

    def invalidate(self) -> None:
        return None


class GatewaySecret:
    """The gateway app client's secret from ``DescribeUserPoolClient``, cached per container.

    ``invalidate`` drops it (Cognito answered invalid_client: the secret was rotated), so the
    next request reads the new one; the cache never outlives what it caches.
    """

    def __init__(self, user_pool_id: str, client_id: str, client: Any = None) -> None:
        self._pool, self._client_id, self._client = user_pool_id, client_id, client
        self._secret: str | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        secret = self._secret
        if secret is not None:
            return secret
        with self._lock:
            if self._secret is None:
                self._secret = self._fetch()
            return self._secret

    def invalidate(self) -> None:
        with self._lock:
            self._secret = None

    def _fetch(self) -> str:
        idp = self._client or aws.cognito_idp()
        try:
            resp = idp.describe_user_pool_client(UserPoolId=self._pool, ClientId=self._client_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise DependencyError(f"DescribeUserPoolClient failed: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"DescribeUserPoolClient failed: {exc.__class__.__name__}") from exc
        secret = resp.get("UserPoolClient", {}).get("ClientSecret")
        if not isinstance(secret, str) or not secret:
            # Fail closed: the gateway must be a confidential client (DESIGN.md).
            raise DependencyError("the gateway app client has no secret")
        return secret


_SECRETS: dict[tuple[str, str], GatewaySecret] = {}
_SECRETS_LOCK: Final = threading.Lock()


def gateway_secret(settings: FacadeSettings) -> GatewaySecret:
    """The per-container cached secret source for this pool's gateway client."""
    key = (settings.user_pool_id, settings.gateway_client_id)
    with _SECRETS_LOCK:
        if key not in _SECRETS:
            _SECRETS[key] = GatewaySecret(*key)
        return _SECRETS[key]


def cookie_key(secret: SecretSource) -> bytes:
    return derive_key(secret.get(), COOKIE_KEY_LABEL)


def upstream_verifier(secret: SecretSource, txn_id: str) -> str:
    """The kit's PKCE verifier towards Cognito for one transaction, derived, never stored.

    ``base64url(HMAC-SHA256(key, txn_id))`` is 43 characters of the RFC 7636 section 4.1
    alphabet: a valid verifier with 256 bits of entropy, recomputable at the callback.
    """
    return mac(derive_key(secret.get(), UPSTREAM_PKCE_LABEL), txn_id)


def refresh_successor(secret: SecretSource, refresh_token: str) -> str:
    """The kit refresh token that ``refresh_token`` rotates to, derived, never stored.

    ``base64url(HMAC-SHA256(key, refresh_token))``: 256 bits nobody without the gateway
    secret can compute, and the same on every presentation, so a retry inside the reuse
    grace gets the same successor instead of a new chain (RFC 9700 section 4.14.2).
    ``DependencyError`` when the secret cannot be read.
    """
    return mac(derive_key(secret.get(), REFRESH_SUCCESSOR_LABEL), refresh_token)


# --------------------------------------------------------------------------- Cognito OAuth
@dataclass(frozen=True)
class UpstreamTokens:
    access_token: str
    expires_in: int
    id_token: str | None = None
    refresh_token: str | None = None


class UpstreamInvalidGrant(Exception):
    """Cognito answered ``invalid_grant``: the code or refresh token is not (or no longer) valid."""


class CognitoOAuth(Protocol):
    def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> UpstreamTokens: ...

    def refresh(self, refresh_token: str) -> UpstreamTokens: ...

    def revoke(self, refresh_token: str) -> None: ...


class CognitoOAuthClient:
    """Cognito's ``/oauth2/token`` and ``/oauth2/revoke`` as the confidential gateway client."""

    def __init__(self, domain_url: str, client_id: str, secret: SecretSource) -> None:
        self._domain = domain_url.rstrip("/")
        self._client_id = client_id
        self._secret = secret

    def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> UpstreamTokens:
        # RFC 6749 section 4.1.3 + RFC 7636 section 4.5: the gateway secret and the kit's verifier.
        body = self._post(
            TOKEN_PATH,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier},
        )
        return _tokens(body, require_refresh=True)

    def refresh(self, refresh_token: str) -> UpstreamTokens:
        body = self._post(TOKEN_PATH, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        return _tokens(body, require_refresh=False)

    def revoke(self, refresh_token: str) -> None:
        self._post(REVOKE_PATH, {"token": refresh_token}, expect_json=False)

    def _post(self, path: str, form: Mapping[str, str], *, expect_json: bool = True) -> dict[str, Any]:
        # Cognito: "Basic Base64Encode(client_id:client_secret)" for clients with a secret.
        basic = base64.b64encode(f"{self._client_id}:{self._secret.get()}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 (https, or http on loopback: checked by settings)
            self._domain + path,
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Authorization": "Basic " + basic,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as resp:  # noqa: S310
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            self._raise_for(path, exc)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DependencyError(f"Cognito {path} unreachable: {exc.__class__.__name__}") from exc
        if not expect_json:
            return {}
        if len(raw) > MAX_RESPONSE_BYTES:
            raise DependencyError(f"Cognito {path} answer too large")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise DependencyError(f"Cognito {path} answer is not JSON") from exc
        if not isinstance(body, dict):
            raise DependencyError(f"Cognito {path} answer is not an object")
        return body

    def _raise_for(self, path: str, exc: urllib.error.HTTPError) -> Any:
        try:
            error = json.loads(exc.read(MAX_RESPONSE_BYTES)).get("error")
        except (ValueError, AttributeError, OSError):
            error = None
        finally:
            exc.close()
        if exc.code == 400 and error == "invalid_grant":
            raise UpstreamInvalidGrant(path) from None
        if error == "invalid_client":
            # The secret was probably rotated: read it again next time. Still a 503 now.
            self._secret.invalidate()
        logger.warning("Cognito refused a request", extra={"path": path, "status": exc.code, "error": error})
        raise DependencyError(f"Cognito {path} answered {exc.code} {error}") from None


def _tokens(body: Mapping[str, Any], *, require_refresh: bool) -> UpstreamTokens:
    access, expires_in = body.get("access_token"), body.get("expires_in", 3600)
    refresh, id_token = body.get("refresh_token"), body.get("id_token")
    if not isinstance(access, str) or not access or not isinstance(expires_in, int) or expires_in <= 0:
        raise DependencyError("Cognito token answer lacks access_token or expires_in")
    if require_refresh and not (isinstance(refresh, str) and refresh):
        raise DependencyError("Cognito token answer lacks refresh_token")
    return UpstreamTokens(
        access_token=access,
        expires_in=expires_in,
        id_token=id_token if isinstance(id_token, str) else None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )


def authorize_url(settings: FacadeSettings, params: Mapping[str, str]) -> str:
    return settings.cognito_domain_url + AUTHORIZE_PATH + "?" + urllib.parse.urlencode(params)


# --------------------------------------------------------------------------- KMS
class TokenCipher(Protocol):
    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes: ...

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes: ...


def txn_context(txn_id: str) -> dict[str, str]:
    return {"kit": "upstream-token", "txn": txn_id}


def grant_context(grant_id: str) -> dict[str, str]:
    return {"kit": "upstream-token", "grant": grant_id}


class CiphertextRejected(Exception):
    """KMS refused to decrypt (wrong context or tampered ciphertext): treat the item as invalid."""


class KmsTokenCipher:
    def __init__(self, key_id: str, client: Any = None) -> None:
        self._key_id, self._client = key_id, client

    @property
    def _kms(self) -> Any:
        return self._client or aws.kms()

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        try:
            resp = self._kms.encrypt(KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=dict(context))
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(f"KMS encrypt failed: {_code(exc)}") from exc
        return bytes(resp["CiphertextBlob"])

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        try:
            resp = self._kms.decrypt(KeyId=self._key_id, CiphertextBlob=ciphertext, EncryptionContext=dict(context))
        except ClientError as exc:
            if _code(exc) in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise CiphertextRejected(_code(exc)) from exc
            raise DependencyError(f"KMS decrypt failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"KMS decrypt failed: {_code(exc)}") from exc
        return bytes(resp["Plaintext"])


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return exc.__class__.__name__
