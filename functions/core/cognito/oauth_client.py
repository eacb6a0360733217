"""Cognito's hosted OAuth endpoints, called as the kit's confidential gateway client.

``CognitoOAuthClient`` talks to ``/oauth2/token`` and ``/oauth2/revoke`` with the stdlib (no
HTTP client import on the cold path) and short timeouts: a network failure is a
``DependencyError`` (503, safe to retry), an ``invalid_grant`` is ``CognitoInvalidGrant``.
``authorize_url`` builds the browser redirect to ``/oauth2/authorize``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from functions.core.cognito.gateway_secret import SecretSource
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings

HTTP_TIMEOUT_SECONDS: Final = 5.0
MAX_RESPONSE_BYTES: Final = 64 * 1024
TOKEN_PATH: Final = "/oauth2/token"
REVOKE_PATH: Final = "/oauth2/revoke"
AUTHORIZE_PATH: Final = "/oauth2/authorize"


@dataclass(frozen=True)
class CognitoTokens:
    """A Cognito token response (RFC 6749 section 5.1); ``expires_in`` in seconds from now."""

    access_token: str
    expires_in: int
    id_token: str | None = None
    refresh_token: str | None = None


class CognitoInvalidGrant(Exception):
    """Cognito answered ``invalid_grant``: the code or refresh token is not (or no longer) valid."""


class CognitoOAuth(Protocol):
    """Cognito's token and revocation endpoints, as the confidential gateway client uses them.

    Every call authenticates with the gateway client's secret (``client_secret_basic``). A failure that is
    not Cognito's ``invalid_grant`` (unreachable, timeout, any other error, an answer that is not a usable
    token response) is ``DependencyError``: 503, safe to retry.
    """

    def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> CognitoTokens:
        """Redeem Cognito's authorization ``code`` (RFC 6749 section 4.1.3) with the kit's PKCE ``verifier``.

        ``redirect_uri`` is the kit's callback URL, as sent to ``/oauth2/authorize``. The answer holds a
        refresh token. ``CognitoInvalidGrant`` when the code is spent or wrong (it is single use), else
        ``DependencyError``.
        """
        ...

    def refresh(self, refresh_token: str) -> CognitoTokens:
        """New Cognito tokens for a Cognito refresh token (RFC 6749 section 6); maybe without a new refresh token.

        ``CognitoInvalidGrant`` when Cognito no longer knows the token (revoked, expired, user signed out
        globally), else ``DependencyError``.
        """
        ...

    def revoke(self, refresh_token: str) -> None:
        """Revoke a Cognito refresh token (RFC 7009 section 2.1) and so end its sign-in session at Cognito.

        Access tokens minted from it still verify as JWTs: the kit's grant state is what refuses them at /mcp.
        Returns once Cognito confirmed it; ``CognitoInvalidGrant`` or ``DependencyError`` when it did not happen.
        """
        ...


class CognitoOAuthClient:
    """Cognito's ``/oauth2/token`` and ``/oauth2/revoke`` as the confidential gateway client."""

    def __init__(self, domain_url: str, client_id: str, secret: SecretSource) -> None:
        self._domain = domain_url.rstrip("/")
        self._client_id = client_id
        self._secret = secret

    def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> CognitoTokens:
        """Redeem Cognito's code (RFC 6749 section 4.1.3, RFC 7636 section 4.5); the answer must hold a refresh token.

        Raises ``CognitoInvalidGrant`` (code spent or wrong) or ``DependencyError`` (503).
        """
        body = self._post(
            TOKEN_PATH,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier},
        )
        return _tokens(body, require_refresh=True)

    def refresh(self, refresh_token: str) -> CognitoTokens:
        """Refresh at Cognito (RFC 6749 section 6); ``CognitoInvalidGrant`` or ``DependencyError``."""
        body = self._post(TOKEN_PATH, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        return _tokens(body, require_refresh=False)

    def revoke(self, refresh_token: str) -> None:
        """Revoke Cognito's refresh token (RFC 7009 section 2.1); ``CognitoInvalidGrant`` or ``DependencyError``."""
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
            raise CognitoInvalidGrant(path) from None
        if error == "invalid_client":
            # The secret was probably rotated: read it again next time. Still a 503 now.
            self._secret.invalidate()
        logger.warning("Cognito refused a request", extra={"path": path, "status": exc.code, "error": error})
        raise DependencyError(f"Cognito {path} answered {exc.code} {error}") from None


def _tokens(body: Mapping[str, Any], *, require_refresh: bool) -> CognitoTokens:
    access, expires_in = body.get("access_token"), body.get("expires_in", 3600)
    refresh, id_token = body.get("refresh_token"), body.get("id_token")
    if not isinstance(access, str) or not access or not isinstance(expires_in, int) or expires_in <= 0:
        raise DependencyError("Cognito token answer lacks access_token or expires_in")
    if require_refresh and not (isinstance(refresh, str) and refresh):
        raise DependencyError("Cognito token answer lacks refresh_token")
    return CognitoTokens(
        access_token=access,
        expires_in=expires_in,
        id_token=id_token if isinstance(id_token, str) else None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )


def authorize_url(settings: FacadeSettings, params: Mapping[str, str]) -> str:
    """Cognito's ``/oauth2/authorize`` URL with ``params`` as its query (RFC 6749 section 4.1.1)."""
    return settings.cognito_domain_url + AUTHORIZE_PATH + "?" + urllib.parse.urlencode(params)
