"""Taking access back in bulk: every grant of a user, or of a client, for the management plane.

The person's connected-agents page, the admin CLI and deprovisioning all end access the same
way: find the grants through the grants table's indexes (``grant_index``), then revoke each
one through the one ``GrantRevoker`` (grant marked revoked, chain head revoked, Cognito's
refresh token revoked), and forget the remembered consents, so that the next authorization
of the same agent shows the consent page again (RFC 6749 section 10.2: consent is not to be
assumed after the person took access back).

Every step is idempotent: a call that fails half way (``DependencyError``, 503) is retried
as a whole and finishes what is left, because the revoker derives its work from the stored
grant, and deleting a consent that is gone is a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from functions.core.platform.audit import Actor
from functions.core.platform.topology import IndexSpec
from functions.core.state.consent import Consent, ConsentRepository
from functions.core.state.grant_index import DynamoGrantIndex
from functions.core.state.grants import Grant
from functions.core.state.revocation import GrantRevoker


@dataclass(frozen=True)
class Revoked:
    """What a bulk revocation did: the grants it ended now, and the consents it forgot."""

    grant_ids: tuple[str, ...]
    consents_forgotten: int


class GrantAdministration:
    """Lists and revokes grants by user and by client (index reads, strongly consistent revocations)."""

    def __init__(
        self,
        *,
        index: DynamoGrantIndex,
        revoker: GrantRevoker,
        consents: ConsentRepository,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index, self._revoker, self._consents, self._clock = index, revoker, consents, clock

    def require(self, index: IndexSpec) -> None:
        """Raise ``IndexNotDeployed`` unless the deployment has ``index``; call it before a side effect."""
        self._index.require(index)

    def active_grants_of_user(self, sub: str) -> list[Grant]:
        """The user's grants that authorize now (``active``, not expired), newest first.

        Eventually consistent (an index read). Raises ``DependencyError`` when DynamoDB fails.
        """
        now = self._clock()
        grants = [g for g in self._index.grants_of_user(sub) if g.is_active(now)]
        return sorted(grants, key=lambda g: g.created_at, reverse=True)

    def active_grants_of_client(self, client_id: str) -> list[Grant]:
        """The client's grants that authorize now, newest first; eventually consistent. Raises ``DependencyError``."""
        now = self._clock()
        grants = [g for g in self._index.grants_of_client(client_id) if g.is_active(now)]
        return sorted(grants, key=lambda g: g.created_at, reverse=True)

    def revoke_grant(self, grant: Grant, *, actor: Actor, reason: str) -> None:
        """Revoke one grant and forget its user's consent for its client.

        ``grant`` as listed (the revoker re-reads it strongly consistently). Raises
        ``DependencyError`` (503, safe to retry) when DynamoDB, KMS or Cognito fails; then the
        grant may be revoked already and the retry finishes the rest.
        """
        self._revoker.revoke(grant.grant_id, reason, forget_consent=True, must_finish=True, actor=actor)

    def revoke_user(self, sub: str, *, actor: Actor, reason: str) -> Revoked:
        """Revoke every pending or active grant of ``sub`` and forget all their consents.

        Raises ``DependencyError`` as :meth:`revoke_grant`; a retry finishes the rest.
        """
        return self._revoke_all(
            self._index.grants_of_user(sub), self._index.consents_of_user(sub), actor=actor, reason=reason
        )

    def revoke_client(self, client_id: str, *, actor: Actor, reason: str) -> Revoked:
        """Revoke every pending or active grant of ``client_id`` and forget every consent given to it.

        Raises ``DependencyError`` as :meth:`revoke_grant`; a retry finishes the rest.
        """
        return self._revoke_all(
            self._index.grants_of_client(client_id),
            self._index.consents_of_client(client_id),
            actor=actor,
            reason=reason,
        )

    def _revoke_all(self, grants: list[Grant], consents: list[Consent], *, actor: Actor, reason: str) -> Revoked:
        # Grants first: a consent forgotten while its grant still authorized would be the
        # weaker order if the call failed in between (the retry lists the same grants again).
        # Already revoked grants go through the revoker too: the index does not show whether a
        # revocation's upstream step is still pending (a 503 half way), and the revoker finishes
        # only what is left, from a strongly consistent read.
        ending = [g for g in grants if g.status != "revoked"]
        for grant in grants:
            self._revoker.revoke(grant.grant_id, reason, forget_consent=True, must_finish=True, actor=actor)
        for consent in consents:
            self._consents.delete(consent.sub, consent.client_id)
        return Revoked(tuple(g.grant_id for g in ending), len(consents))
