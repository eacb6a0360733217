"""Error shapes, in one place: OAuth JSON errors, the MCP bearer-token challenges, and the
one mapping of a failed request to its answer (``answer_for_error``).

* OAuth endpoint errors: RFC 6749 section 5.2 (token), section 4.1.2.1 (authorization),
  RFC 7591 section 3.2.2 (registration), RFC 7009 section 2.2.1 (revocation), RFC 8707
  section 2 (invalid_target), RFC 6750 section 3.1 (invalid_token, RFC 7592 section 2).
* Resource-server challenges: RFC 6750 section 3 (``WWW-Authenticate: Bearer ...``),
  RFC 9728 section 5.1 (``resource_metadata``), MCP authorization spec 2025-11-25
  "Scope Selection Strategy" and "Step-Up Authorization Flow" (``scope``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from functions.core.platform.http import Answer, RequestRejected
from functions.core.platform.metrics import count
from functions.core.platform.observability import logger

# RFC 6749 section 5.2, RFC 8707 section 2 (invalid_target), RFC 7009 section 2.2.1
# (unsupported_token_type), RFC 6749 section 4.1.2.1 (temporarily_unavailable, for 503).
TokenErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "unsupported_token_type",
    "temporarily_unavailable",
]
# RFC 6749 section 4.1.2.1, RFC 8707 section 2 (invalid_target).
AuthorizeErrorCode = Literal[
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "invalid_target",
]
# RFC 7591 section 3.2.2; RFC 7592 section 2 answers a bad registration access token with
# RFC 6750 section 3.1 invalid_token. invalid_request (no registration endpoint, 404),
# access_denied (403) and temporarily_unavailable (429, 503) are the kit's refusals.
RegistrationErrorCode = Literal[
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "invalid_software_statement",
    "unapproved_software_statement",
    "invalid_request",
    "access_denied",
    "temporarily_unavailable",
    "invalid_token",
]
OAuthErrorCode = TokenErrorCode | AuthorizeErrorCode | RegistrationErrorCode

BearerErrorCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]

JSON_HEADERS: Final = {"Content-Type": "application/json", "Cache-Control": "no-store"}
RETRY_AFTER_SECONDS: Final = 5


@dataclass
class OAuthError(Exception):
    """An OAuth error answered as JSON ``{"error": ..., "error_description": ...}``.

    ``status`` is the HTTP status (400 unless the RFC says otherwise), ``headers`` extra
    response headers (``WWW-Authenticate``, ``Retry-After``). Endpoints raise the subclass
    whose ``error`` codes their RFC registers (``TokenError``, ``RegistrationError``).
    """

    error: OAuthErrorCode
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, str]:
        """The RFC 6749 section 5.2 JSON members."""
        return {"error": self.error, "error_description": self.description}


@dataclass
class TokenError(OAuthError):
    """An error of ``/token`` or ``/revoke`` (RFC 6749 section 5.2, RFC 7009 section 2.2.1)."""

    error: TokenErrorCode


@dataclass
class RegistrationError(OAuthError):
    """An error of ``/register`` and ``/register/{client_id}`` (RFC 7591 s3.2.2, RFC 7592 s2)."""

    error: RegistrationErrorCode


class DependencyError(Exception):
    """A dependency (DynamoDB, Cognito, JWKS) failed. Answer 503 + Retry-After, never allow."""


def _quote(value: str) -> str:
    # RFC 7235 quoted-string: escape backslash and double quote.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# RFC 6750 section 3: the challenge's error_description "MUST NOT include characters outside the
# set %x20-21 / %x23-5B / %x5D-7E". A description naming a tool (whose name the app chose: non-ASCII,
# a quote) keeps its shape with "?" in their place, and the header stays encodable (Latin-1)
# instead of failing the answer with a 500. The JSON body keeps the description as it is.
_DESCRIPTION_CHARS: Final = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def description_text(description: str) -> str:
    """``description`` with every character RFC 6750 section 3 forbids in ``error_description`` replaced by ``?``."""
    return "".join(ch if ch in _DESCRIPTION_CHARS else "?" for ch in description)


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
            params.append(("error_description", description_text(description)))
    if scope:
        params.append(("scope", " ".join(scope)))
    params.append(("resource_metadata", resource_metadata))
    return "Bearer " + ", ".join(f"{k}={_quote(v)}" for k, v in params)


def oauth_error_answer(err: OAuthError) -> Answer:
    """The JSON answer of an ``OAuthError``: its status, body and headers, never cached."""
    return Answer(err.status, json.dumps(err.body()), {**JSON_HEADERS, **err.headers})


def unavailable_answer(description: str = "a dependency is unavailable, retry later") -> Answer:
    """503 ``temporarily_unavailable`` with ``Retry-After`` (seconds, RFC 9110 section 15.6.4): the
    retry is safe; counts ``DependencyUnavailable``."""
    count("DependencyUnavailable")
    body = {"error": "temporarily_unavailable", "error_description": description}
    return Answer(503, json.dumps(body), {**JSON_HEADERS, "Retry-After": str(RETRY_AFTER_SECONDS)})


def answer_for_error(
    exc: OAuthError | RequestRejected | DependencyError, *, unavailable: Callable[[], Answer]
) -> Answer:
    """The one mapping of a refused or failed request to its answer.

    ``OAuthError``: its JSON error. ``RequestRejected`` (unreadable parameters, RFC 6749
    section 3.1): 400 ``invalid_request``. ``DependencyError``: ``unavailable()`` (a 503 with
    ``Retry-After``): fail closed, never a 500 and never an allow. ``unavailable`` is called
    only for a ``DependencyError``: building a 503 counts ``DependencyUnavailable``, which a
    refusal must not. Nothing here logs a token: descriptions and dependency messages never
    carry one.
    """
    if isinstance(exc, DependencyError):
        logger.warning("dependency failed", extra={"detail": str(exc)})
        return unavailable()
    if isinstance(exc, RequestRejected):
        exc = OAuthError("invalid_request", str(exc))
    logger.info("request refused", extra={"error": exc.error})
    return oauth_error_answer(exc)


def challenge_answer(
    status: Literal[401, 403],
    *,
    resource_metadata: str,
    scope: list[str],
    error: BearerErrorCode | None,
    description: str,
) -> Answer:
    """The MCP endpoint's 401/403 with ``WWW-Authenticate: Bearer ...``.

    The header carries ``error`` only when a token was presented (RFC 6750 section 3.1);
    the JSON body always names a registered code: ``invalid_token`` for a request without
    credentials (RFC 6750 section 3.1), else ``error``.
    """
    body = {"error": error or "invalid_token", "error_description": description}
    header = bearer_challenge(
        resource_metadata=resource_metadata,
        scope=scope,
        error=error,
        description=description if error else None,
    )
    return Answer(status, json.dumps(body), {**JSON_HEADERS, "WWW-Authenticate": header})
