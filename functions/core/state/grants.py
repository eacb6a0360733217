"""Grants: the kit's own revocation state for Cognito access tokens.

A Cognito access token stays cryptographically valid until it expires, even after its
refresh token is revoked (Cognito docs, "Revoking tokens"). So the MCP endpoint does not
trust the JWT alone: the grant behind it, found by the token's ``origin_jti`` (the claim
linking an access token to the refresh-token session it came from), must exist and be
active. Revoking a grant therefore stops its access tokens within ``GRANT_CACHE_SECONDS``.

Item layout: see docs/storage-schema.md (``GRANT#<origin_jti>`` in the grants table). The
grants table's other items have their own modules: kit refresh tokens
(functions/core/state/refresh_tokens.py) and remembered consent (functions/core/state/consent.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from functions.core.platform.ddb import DynamoTable, dependency_call
from functions.core.platform.items import ItemKind, stored

# pending: recorded at consent, until its code is redeemed (expires with the code);
# active: redeemed, lives GRANT_LIFETIME_DAYS; revoked: ended (docs/storage-schema.md).
GrantStatus = Literal["pending", "active", "revoked"]
GRANT_PREFIX: Final = "GRANT#"


@dataclass(frozen=True)
class Grant:
    """One approved authorization (one Cognito sign-in session); times in epoch seconds.

    ``expires_at`` is also the item's TTL. An unknown stored ``status`` reads as revoked
    (fail closed); absent ``username``/``email``/``client_name`` read as "" (schema version 2
    grants carry no ``client_name``).
    """

    grant_id: str = stored()  # the upstream session's origin_jti
    sub: str = stored()
    client_id: str = stored()  # the (virtual) OAuth client the user authorized
    scopes: frozenset[str] = stored(omit_empty=True, absent=frozenset())  # kit scope names of the current session
    created_at: int = stored()
    expires_at: int = stored()
    status: GrantStatus = stored("active", unknown="revoked")
    username: str = stored("", omit_empty=True)
    email: str = stored("", omit_empty=True)
    revoked_at: int | None = stored(None)
    revoked_reason: str | None = stored(None)
    last_used_at: int | None = stored(None)
    # Cognito's refresh token for this session: KMS ciphertext bound to the grant
    # (context {"kit": "upstream-token", "grant": grant_id}); never plaintext.
    upstream_refresh: bytes | None = stored(None)
    # SHA-256 of the newest kit refresh token of the grant (the chain head), which a
    # revocation marks revoked; None before the code is redeemed.
    refresh_head: str | None = stored(None)
    # The client's self-declared, unverified ``client_name`` (RFC 7591 section 2) when the
    # grant was approved, as ``metadata.bounded_client_name`` leaves it; "" when it declared
    # none, and on grants of schema version 2 (shown as the client id).
    client_name: str = stored("", omit_empty=True)

    def is_active(self, now: float) -> bool:
        """Active and not expired at ``now`` (epoch seconds)."""
        return self.status == "active" and now < self.expires_at

    @property
    def upstream_revocation_pending(self) -> bool:
        """Revoked, but Cognito's refresh token was not yet revoked (its ciphertext is still held)."""
        return self.status == "revoked" and self.upstream_refresh is not None


class GrantReader(Protocol):
    """What the MCP function needs: the grant behind an access token's ``origin_jti``."""

    def get(self, grant_id: str) -> Grant | None:
        """The grant, or None if unknown; ``DependencyError`` when the lookup fails."""
        ...


class GrantRepository(GrantReader, Protocol):
    """Grants for the token function: create, revoke (RFC 7009), forget Cognito's token; ``now`` in epoch s.

    ``get`` is a strongly consistent read; every failure to reach storage is ``DependencyError`` (503).
    """

    def create(self, grant: Grant) -> None:
        """Store a new grant; raises ``ConditionFailed`` if the id (Cognito's ``origin_jti``) exists."""
        ...

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        """Mark a pending or active grant revoked at ``now`` with ``reason`` (one conditional write).

        True if this call changed it; False when it is unknown or already revoked (never raises for that).
        """
        ...

    def forget_upstream(self, grant_id: str) -> None:
        """Drop a revoked grant's Cognito refresh token once Cognito revoked it (idempotent)."""
        ...


class GrantStore(GrantRepository, Protocol):
    """What the facade (authorization and token functions) needs on top of the MCP reads."""

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None:
        """Record a use at ``now`` (epoch s) and a rotated upstream refresh token; ``ConditionFailed`` unless active.

        ``upstream_refresh``: Cognito's new refresh token as KMS ciphertext (``token_cipher.grant_context``), or
        None to keep the stored one.
        """
        ...


class DynamoGrantRepository(DynamoTable):
    """``GrantStore`` on DynamoDB (``GRANT#`` items, docs/storage-schema.md)."""

    def get(self, grant_id: str) -> Grant | None:
        """The grant (strongly consistent: a revocation is visible on the next uncached read)."""
        item = self._get(GRANT_PREFIX + grant_id, "read grant")
        return None if item is None else GRANTS.from_item(item)

    def create(self, grant: Grant) -> None:
        """Put the ``GRANT#`` item, conditional on its absence (``ConditionFailed``)."""
        self._put_new(GRANTS.to_item(grant), "create grant")

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        """Conditional update ``status IN (active, pending)`` -> revoked; False when it fails."""
        return self._update_if(
            GRANT_PREFIX + grant_id,
            "revoke grant",
            UpdateExpression="SET #s = :revoked, revoked_at = :now, revoked_reason = :why",
            ConditionExpression="attribute_exists(pk) AND #s IN (:active, :pending)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":revoked": {"S": "revoked"},
                ":active": {"S": "active"},
                ":pending": {"S": "pending"},
                ":now": {"N": str(now)},
                ":why": {"S": reason},
            },
        )

    def forget_upstream(self, grant_id: str) -> None:
        """``REMOVE upstream_refresh``, conditional on ``status = revoked``."""
        # A failed condition: gone meanwhile (TTL), nothing left to forget.
        self._update_if(
            GRANT_PREFIX + grant_id,
            "forget upstream token",
            UpdateExpression="REMOVE upstream_refresh",
            ConditionExpression="attribute_exists(pk) AND #s = :revoked",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":revoked": {"S": "revoked"}},
        )

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None:
        """``last_used_at`` (and a rotated upstream refresh token); ``ConditionFailed`` unless active."""
        update = "SET last_used_at = :now"
        values: dict[str, Any] = {":now": {"N": str(now)}, ":active": {"S": "active"}}
        if upstream_refresh is not None:
            update += ", upstream_refresh = :up"
            values[":up"] = {"B": upstream_refresh}
        with dependency_call("touch grant"):
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": GRANT_PREFIX + grant_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND #s = :active",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )


GRANTS: Final = ItemKind(Grant, kind="grant", key=lambda g: GRANT_PREFIX + g.grant_id, ttl_of="expires_at")


class CachedGrants:
    """Per-container read-through cache of grants.

    An entry lives at most ``ttl_seconds`` (GRANT_CACHE_SECONDS): that bounds how long a
    revoked grant's tokens keep working. Misses are cached too, so a flood of valid JWTs
    without a grant cannot turn into a flood of DynamoDB reads; that is safe because a grant
    is always written before its first access token is handed out.
    """

    MAX_ENTRIES: Final = 4096

    def __init__(self, repo: GrantReader, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._repo = repo
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, Grant | None]] = {}
        self._lock = threading.Lock()

    @property
    def ttl_seconds(self) -> float:
        """How long (monotonic seconds) an answer is kept; 0: every ``get`` reads."""
        return self._ttl

    def get(self, grant_id: str) -> Grant | None:
        """The grant as read at most ``ttl_seconds`` (monotonic) ago; ``DependencyError`` on a failed read."""
        now = self._clock()
        if self._ttl > 0:
            hit = self._entries.get(grant_id)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        grant = self._repo.get(grant_id)
        if self._ttl > 0:
            with self._lock:
                newer = self._entries.get(grant_id)
                if newer is not None and newer[0] > now:
                    # A read that started later already answered (a grant read ahead that finished
                    # late, or a concurrent request): the older answer must not replace it, or a
                    # revocation this container has seen could be undone.
                    return grant
                if len(self._entries) >= self.MAX_ENTRIES:
                    # Drop the oldest insertion; dicts keep insertion order.
                    self._entries.pop(next(iter(self._entries)))
                self._entries.pop(grant_id, None)
                self._entries[grant_id] = (now, grant)
        return grant
