"""Bearer-token authentication of MCP requests (the resource-server side of OAuth).

Order matters: the JWT is verified first (cheap, offline once the keys are held, rejects
forgeries without any DynamoDB read), then the grant behind it is looked up, because a Cognito
access token keeps verifying after revocation and only the kit's grant state can say it was
revoked. The one exception is a container's first token, whose verification must fetch the
JWKS: its grant is read ahead, in parallel (:class:`GrantReadAhead`), and used only through
the grant cache once the token verified.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

from mcp_types import DEFAULT_NEGOTIATED_VERSION
from mcp_types.version import is_version_at_least

from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier, TokenRejected
from functions.core.oauth import scopes as catalogue
from functions.core.platform.errors import DependencyError, challenge_answer, unavailable_answer
from functions.core.platform.http import Answer
from functions.core.platform.metrics import count
from functions.core.platform.observability import logger
from functions.core.platform.routes import PRM_MCP_PATH
from functions.core.platform.settings import McpSettings
from functions.core.state.grants import CachedGrants, Grant
from functions.mcp_server.principal import Principal

_BEARER: Final = "bearer "
# The first revision whose clients accumulate scopes across step-ups themselves.
ACCUMULATING_REVISION: Final = "2026-07-28"


def step_up_scopes(needed: frozenset[str], held: frozenset[str], protocol_version: str | None) -> frozenset[str]:
    """The ``scope`` of a 403 ``insufficient_scope`` challenge, by protocol revision.

    ``protocol_version`` is the request's ``MCP-Protocol-Version`` header; absent means the
    transport spec's default revision (2025-03-26). Up to 2025-11-25 ("Step-Up Authorization
    Flow") clients re-authorize with exactly the challenge's scope, so it names the scopes
    already held as well, or the step-up would drop them. From 2026-07-28 clients keep the
    union themselves (SEP-2350), and the challenge names only what the operation needs
    (RFC 6750 section 3.1: "the scope necessary to access the requested resource").
    """
    revision = protocol_version or DEFAULT_NEGOTIATED_VERSION
    if is_version_at_least(revision, ACCUMULATING_REVISION):
        return needed
    return needed | held


@dataclass(frozen=True)
class Denied:
    """A refused request: the ``answer`` to send (401, or 503 on an outage) and a ``reason`` safe to log."""

    answer: Answer
    reason: str


class GrantReadAhead:
    """A grant read started in a thread while the container's first token verification fetches the JWKS.

    The two are independent network round trips (Cognito's JWKS, DynamoDB's grant and client),
    so a cold or just-restored container pays one, not both, before its first answer. The grant
    id comes from the token *before* it is verified: :meth:`result` is taken only once the token
    verified and named that same grant; otherwise the read is left to finish unused (it reads,
    never writes, and happens at most once per container: only while no JWKS was ever fetched).
    The read only fills the grant cache; :meth:`result` asks the cache, so the answer is never
    older than ``GRANT_CACHE_SECONDS`` however long the verification took (a stale or missing
    entry is read again, a failed read-ahead is retried there and its error is that request's).

    Raises ``RuntimeError`` when no thread can be started (the caller then reads in line).
    """

    def __init__(self, grants: CachedGrants, grant_id: str) -> None:
        self.grant_id = grant_id
        self._grants = grants
        self._thread = threading.Thread(target=self._read, name="grant-read-ahead", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._grants.get(self.grant_id)
        except DependencyError:
            return  # result() reads again, and a second failure is that request's 503

    def result(self) -> Grant | None:
        """The grant (None: unknown) as ``CachedGrants.get`` gives it; raises its ``DependencyError``.

        Waits for the read ahead first (bounded by the DynamoDB client's timeouts).
        """
        self._thread.join()
        return self._grants.get(self.grant_id)


class McpAuthenticator:
    """The resource server's bearer check of ``/mcp`` (RFC 6750, RFC 9728, MCP authorization spec).

    Verifies the Cognito access token, then requires an active grant behind it (``grants``: a per-container
    cache, ``GRANT_CACHE_SECONDS`` monotonic), and derives the caller's effective scopes.
    """

    def __init__(self, settings: McpSettings, verifier: CognitoAccessTokenVerifier, grants: CachedGrants) -> None:
        self._verifier = verifier
        self._grants = grants
        self._resource_server_id = settings.resource_server_id
        self._ceilings = settings.scope_group_ceilings
        self._gateway_client_id = settings.gateway_client_id
        self.resource_metadata_url = settings.base_url + PRM_MCP_PATH
        # MCP spec 2025-11-25 "Scope Selection Strategy": the 401 challenge names the scopes
        # a client should request; offline_access is never listed.
        self.default_scopes = list(catalogue.default_scopes())
        # One grant read ahead per container (GrantReadAhead): while the JWKS cannot be fetched,
        # tokens keep arriving unverified, and each must not cost a DynamoDB read. None without a
        # grant cache (GRANT_CACHE_SECONDS=0): a read ahead could never be used.
        self._read_ahead_left = grants.ttl_seconds > 0

    def challenge(self, reason: str, *, presented: bool) -> Denied:
        """401: RFC 6750 section 3.1 sets ``error`` only when a token was presented."""
        return Denied(
            challenge_answer(
                401,
                resource_metadata=self.resource_metadata_url,
                scope=self.default_scopes,
                error="invalid_token" if presented else None,
                description=reason if presented else "authorization required",
            ),
            reason,
        )

    def insufficient_scope(self, scope: frozenset[str], tools: list[str]) -> Answer:
        """403 step-up naming ``scope`` (see :func:`step_up_scopes`) for the ``tools`` refused."""
        return challenge_answer(
            403,
            resource_metadata=self.resource_metadata_url,
            scope=catalogue.order(scope),
            error="insufficient_scope",
            description=f"tool {', '.join(tools)} requires more scopes",
        )

    def _read_ahead(self, token: str) -> GrantReadAhead | None:
        """This container's one :class:`GrantReadAhead`, for its first token while no JWKS was fetched."""
        grant_id = self._verifier.unverified_grant_id(token) if self._read_ahead_left else None
        if grant_id is None:
            return None
        self._read_ahead_left = False
        try:
            return GrantReadAhead(self._grants, grant_id)
        except RuntimeError:  # no thread to be had: read in line, after verifying
            return None

    def authenticate(self, authorization: str | None) -> Principal | Denied:
        """The caller behind an ``Authorization`` header value (None when absent); never raises.

        No bearer token: 401 without ``error``; a token that fails verification (RFC 6750 section 3.1) or whose
        grant (``origin_jti``) is unknown, revoked, expired or another user's: 401 ``invalid_token``, with
        ``resource_metadata`` (RFC 9728 section 5.1). ``DependencyError`` (JWKS or DynamoDB): ``Denied`` with
        a 503 and ``Retry-After``. Effective scopes: token scopes ∩ granted scopes, within the group ceilings
        of the token's groups. Each 401 counts one ``AuthenticationFailures`` metric by reason.
        """
        if not authorization or not authorization.lower().startswith(_BEARER):
            # No bearer credentials at all (absent, or another scheme).
            count("AuthenticationFailures", reason="no_token")
            return self.challenge("no bearer token", presented=False)
        token = authorization[len(_BEARER) :].strip()
        try:
            ahead = self._read_ahead(token)
            access = self._verifier.verify(token)
            if ahead is not None and ahead.grant_id == access.origin_jti:
                grant = ahead.result()
            else:
                grant = self._grants.get(access.origin_jti)
        except TokenRejected as exc:
            logger.info("bearer token rejected", extra={"reason": exc.reason})
            count("AuthenticationFailures", reason=exc.reason)
            return self.challenge(exc.description, presented=True)
        except DependencyError as exc:
            # Fail closed but honestly: an outage is 503 + Retry-After, never an allow.
            logger.warning("authentication dependency failed", extra={"detail": str(exc)})
            return Denied(unavailable_answer(), "dependency")
        if grant is None or not grant.is_active(time.time()) or grant.sub != access.sub:
            logger.info("grant inactive", extra={"reason": "no_grant" if grant is None else grant.status})
            count("AuthenticationFailures", reason="grant_inactive")
            return self.challenge("the authorization behind this token was revoked or is unknown", presented=True)
        token_scopes = catalogue.kit_scopes_from_cognito(self._resource_server_id, access.scopes)
        # Group ceilings again, from the groups in *this* token: the grant recorded what the
        # user could grant at consent; a user removed from a group loses the scope with the
        # next access token (minutes), not when the grant expires (days).
        allowed = frozenset(catalogue.within_ceilings(token_scopes & grant.scopes, access.groups, self._ceilings))
        return Principal(
            sub=access.sub,
            username=access.username or grant.username,
            email=grant.email,
            client_id=grant.client_id,
            gateway_client_id=access.client_id,
            scopes=allowed,
            grant_id=grant.grant_id,
            client_name=grant.client_name,
        )
