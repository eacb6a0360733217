"""Error shapes, in one place: OAuth JSON errors and the MCP bearer-token challenges.

* OAuth endpoint errors: RFC 6749 section 5.2 (token), RFC 7591 section 3.2.2
  (registration), RFC 7009 section 2.2.1 (revocation), RFC 8707 section 2 (invalid_target).
* Resource-server challenges: RFC 6750 section 3 (``WWW-Authenticate: Bearer ...``),
  RFC 9728 section 5.1 (``resource_metadata``), MCP authorization spec 2025-11-25
  "Scope Selection Strategy" and "Step-Up Authorization Flow" (``scope``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final, Literal

from functions.core.platform.metrics import count

OAuthErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "invalid_scope",
    "invalid_target",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "unsupported_token_type",
]

BearerErrorCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]

JSON_HEADERS: Final = {"Content-Type": "application/json", "Cache-Control": "no-store"}
RETRY_AFTER_SECONDS: Final = 5


@dataclass
class OAuthError(Exception):
    """An OAuth error answered as JSON ``{"error": ..., "error_description": ...}``."""

    error: OAuthErrorCode
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class DependencyError(Exception):
    """A dependency (DynamoDB, Cognito, JWKS) failed. Answer 503 + Retry-After, never allow."""


def _quote(value: str) -> str:
    # RFC 7235 quoted-string: escape backslash and double quote.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(
    *,
    resource_metadata: str,
    scope: list[str] | None = None,
    error: BearerErrorCode | None = None,
    description: str | None = None,
) -> str:
    """Build ``WWW-Authenticate: Bearer ...`` for the MCP endpoint.

    RFC 6750 section 3.1: a request without credentials gets no error code, so ``error``
    is only set when a token was presented (or for ``insufficient_scope``).
    """
    params: list[tuple[str, str]] = []
    if error is not None:
        params.append(("error", error))
        if description:
            params.append(("error_description", description))
    if scope:
        params.append(("scope", " ".join(scope)))
    params.append(("resource_metadata", resource_metadata))
    return "Bearer " + ", ".join(f"{k}={_quote(v)}" for k, v in params)


@dataclass(frozen=True)
class HttpAnswer:
    """A framework-neutral HTTP answer; each handler adapts it to its own response type."""

    status: int
    body: str
    headers: dict[str, str]


def oauth_error_answer(err: OAuthError) -> HttpAnswer:
    return HttpAnswer(err.status, json.dumps(err.body()), {**JSON_HEADERS, **err.headers})


def unavailable_answer(description: str = "a dependency is unavailable, retry later") -> HttpAnswer:
    """503 + ``Retry-After`` (RFC 9110 section 15.6.4) with an OAuth-shaped body; counts ``DependencyUnavailable``."""
    count("DependencyUnavailable")
    body = {"error": "temporarily_unavailable", "error_description": description}
    return HttpAnswer(503, json.dumps(body), {**JSON_HEADERS, "Retry-After": str(RETRY_AFTER_SECONDS)})


def challenge_answer(
    status: Literal[401, 403],
    *,
    resource_metadata: str,
    scope: list[str],
    error: BearerErrorCode | None,
    description: str,
) -> HttpAnswer:
    body: dict[str, str] = {"error": error or "invalid_request", "error_description": description}
    if error is None:
        body = {"error": "unauthorized", "error_description": description}
    header = bearer_challenge(
        resource_metadata=resource_metadata,
        scope=scope,
        error=error,
        description=description if error else None,
    )
    return HttpAnswer(status, json.dumps(body), {**JSON_HEADERS, "WWW-Authenticate": header})
