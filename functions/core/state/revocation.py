"""Ending a grant, so that a retry always finishes what a failed attempt started.

A revocation has several effects, each in its own dependency call: the grant is marked
revoked (the conditional write ``/mcp`` relies on), the grant's newest refresh token (its
chain head) is marked revoked, the remembered consent may be forgotten, and Cognito's
refresh token is revoked upstream and then dropped from the grant. Each effect is
idempotent and derived from the stored grant, not from whether this call changed it: a
request that failed half way (503) and is retried finds the grant already revoked and still
performs whatever is left, notably the upstream revocation, whose pending state is the
ciphertext still held by the revoked grant (docs/storage-schema.md, grant states).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoOAuth
from functions.core.cognito.token_cipher import CiphertextRejected, TokenCipher, grant_context
from functions.core.platform.audit import Actor, audit, party_fields
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger
from functions.core.state.consent import ConsentRepository
from functions.core.state.grants import Grant, GrantStore
from functions.core.state.refresh_tokens import RefreshTokenRepository


class GrantRevoker:
    """Revokes grants, for every caller.

    /revoke (RFC 7009), refresh-token reuse and code replay detection (OAuth 2.1 section
    4.3.1, RFC 6749 section 4.1.2), and the management plane (the person, the admin CLI,
    deprovisioning). Each revocation that changes a grant writes one ``grant.revoked`` audit
    event naming its actor.
    """

    def __init__(
        self,
        *,
        grants: GrantStore,
        refresh_tokens: RefreshTokenRepository,
        consents: ConsentRepository,
        cipher: TokenCipher,
        cognito: CognitoOAuth,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._grants, self._rts, self._consents = grants, refresh_tokens, consents
        self._cipher, self._cognito, self._clock = cipher, cognito, clock

    def revoke(
        self,
        grant_id: str,
        reason: str,
        *,
        forget_consent: bool = False,
        upstream_alive: bool = True,
        must_finish: bool = False,
        actor: Actor = "system",
    ) -> Grant | None:
        """Revoke ``grant_id`` and finish every effect of its revocation; the grant as first read
        (before this call revoked it), or None when it is unknown.

        ``forget_consent``: also delete the remembered consent (refresh-token reuse).
        ``upstream_alive``: False when Cognito already ended the session (nothing to revoke there).
        ``must_finish``: the caller reports the revocation (RFC 7009 section 2.2), so a failed
        upstream revocation raises ``DependencyError`` (503; the retry finishes it); otherwise
        it is logged and left pending on the grant. DynamoDB failures always raise.
        ``actor``: who caused it, for the audit event (``client`` at /revoke, ``user``, ``admin``,
        ``system`` for detection and deprovisioning).
        """
        found = grant = self._grants.get(grant_id)
        if grant is None:
            return None
        now = int(self._clock())
        if grant.status != "revoked":
            if self._grants.revoke(grant_id, reason, now):
                audit("grant.revoked", actor=actor, reason=reason, **party_fields(grant))
            # Read again: once the grant is revoked no rotation can commit (each one is
            # conditional on an active grant), so this chain head is the last one.
            grant = self._grants.get(grant_id)
            if grant is None:
                return found
        if forget_consent:
            # A stolen refresh token must not be able to re-authorize silently later.
            self._consents.delete(grant.sub, grant.client_id)
        if grant.refresh_head is not None:
            self._rts.mark_revoked(grant.refresh_head, now)
        if grant.upstream_revocation_pending:
            self._finish_upstream(grant, upstream_alive=upstream_alive, must_finish=must_finish)
        return found

    def _finish_upstream(self, grant: Grant, *, upstream_alive: bool, must_finish: bool) -> None:
        try:
            refresh = self._decrypt(grant) if upstream_alive else None
            if refresh is not None:
                self._cognito.revoke(refresh)
        except CognitoInvalidGrant:
            pass  # Cognito no longer knows the token: nothing is left to revoke there
        except DependencyError as exc:
            if must_finish:
                raise
            # The kit's grant is revoked (that is what /mcp checks); the ciphertext stays on
            # the grant, so the next revocation request for it finishes this.
            logger.warning("upstream revocation pending", extra={"detail": exc.__class__.__name__})
            return
        self._grants.forget_upstream(grant.grant_id)

    def _decrypt(self, grant: Grant) -> str | None:
        if grant.upstream_refresh is None:
            return None
        try:
            return self._cipher.decrypt(grant.upstream_refresh, grant_context(grant.grant_id)).decode()
        except (CiphertextRejected, UnicodeDecodeError):
            logger.warning("upstream token of a grant did not decrypt", extra={"grant_id": grant.grant_id})
            return None
