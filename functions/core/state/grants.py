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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from functions.core.platform.ddb import ConditionFailed, DynamoTable, dependency_call

# pending: recorded at consent, until its code is redeemed (expires with the code);
# active: redeemed, lives GRANT_LIFETIME_DAYS; revoked: ended (docs/storage-schema.md).
GrantStatus = Literal["pending", "active", "revoked"]
GRANT_PREFIX: Final = "GRANT#"


@dataclass(frozen=True)
class Grant:
    grant_id: str  # the upstream session's origin_jti
    sub: str
    client_id: str  # the (virtual) OAuth client the user authorized
    scopes: frozenset[str]  # kit scope names the user granted
    created_at: int
    expires_at: int  # epoch seconds; also the DynamoDB TTL attribute
    status: GrantStatus = "active"
    username: str = ""
    email: str = ""
    revoked_at: int | None = None
    revoked_reason: str | None = None
    last_used_at: int | None = None
    # Cognito's refresh token for this session: KMS ciphertext bound to the grant
    # (context {"kit": "upstream-token", "grant": grant_id}); never plaintext.
    upstream_refresh: bytes | None = None
    # SHA-256 of the newest kit refresh token of the grant (the chain head), which a
    # revocation marks revoked; None before the code is redeemed.
    refresh_head: str | None = None

    def is_active(self, now: float) -> bool:
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
    def create(self, grant: Grant) -> None:
        """Store a new grant; raises ``ConditionFailed`` if the id exists."""
        ...

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        """Mark a pending or active grant revoked; True if this call changed it."""
        ...

    def forget_upstream(self, grant_id: str) -> None:
        """Drop a revoked grant's Cognito refresh token once Cognito revoked it (idempotent)."""
        ...


class GrantStore(GrantRepository, Protocol):
    """What the facade (authorization and token functions) needs on top of the MCP reads."""

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None: ...


class InMemoryGrantRepository:
    """Test double with the same semantics as the DynamoDB implementation."""

    def __init__(self) -> None:
        self.items: dict[str, Grant] = {}
        self.reads = 0
        # One lock for every in-memory repository linked to this one (refresh tokens, codes,
        # transactions): their multi-item writes are atomic like a DynamoDB transaction.
        self.lock = threading.RLock()

    def get(self, grant_id: str) -> Grant | None:
        # Under the lock: reads never see half of a transaction (DynamoDB: serializable).
        with self.lock:
            self.reads += 1
            return self.items.get(grant_id)

    def create(self, grant: Grant) -> None:
        with self.lock:
            if grant.grant_id in self.items:
                raise ConditionFailed("create grant")
            self.items[grant.grant_id] = grant

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        with self.lock:
            grant = self.items.get(grant_id)
            if grant is None or grant.status == "revoked":
                return False
            self.items[grant_id] = replace(grant, status="revoked", revoked_at=now, revoked_reason=reason)
            return True

    def forget_upstream(self, grant_id: str) -> None:
        with self.lock:
            grant = self.items.get(grant_id)
            if grant is not None and grant.status == "revoked":
                self.items[grant_id] = replace(grant, upstream_refresh=None)

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None:
        with self.lock:
            grant = self.items.get(grant_id)
            if grant is None or grant.status != "active":
                raise ConditionFailed("touch grant")
            self.items[grant_id] = replace(
                grant, last_used_at=now, upstream_refresh=upstream_refresh or grant.upstream_refresh
            )


class DynamoGrantRepository(DynamoTable):
    def get(self, grant_id: str) -> Grant | None:
        # Strongly consistent: a revocation must be visible on the next uncached read.
        item = self._get(GRANT_PREFIX + grant_id, "read grant")
        return None if item is None else grant_from_item(item)

    def create(self, grant: Grant) -> None:
        self._put_new(grant_item(grant), "create grant")

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
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


def grant_item(grant: Grant) -> dict[str, Any]:
    """The ``GRANT#`` item of ``grant`` (plain values; ``ddb.to_item`` drops the None ones)."""
    return {
        "pk": GRANT_PREFIX + grant.grant_id,
        "kind": "grant",
        "grant_id": grant.grant_id,
        "sub": grant.sub,
        "username": grant.username or None,
        "email": grant.email or None,
        "client_id": grant.client_id,
        "scopes": sorted(grant.scopes) or None,  # DynamoDB sets cannot be empty; lists can, but stay uniform
        "status": grant.status,
        "created_at": grant.created_at,
        "expires_at": grant.expires_at,
        "ttl": grant.expires_at,
        "revoked_at": grant.revoked_at,
        "revoked_reason": grant.revoked_reason,
        "last_used_at": grant.last_used_at,
        "upstream_refresh": grant.upstream_refresh,
        "refresh_head": grant.refresh_head,
    }


def grant_from_item(item: Mapping[str, Any]) -> Grant:
    """The ``Grant`` of a deserialized ``GRANT#`` item (or its projection in a grants-table index)."""
    return Grant(
        grant_id=str(item["grant_id"]),
        sub=str(item["sub"]),
        username=str(item.get("username", "")),
        email=str(item.get("email", "")),
        client_id=str(item["client_id"]),
        scopes=frozenset(str(s) for s in item.get("scopes", [])),
        # Unknown states read as revoked (fail closed).
        status=_STATES.get(str(item.get("status")), "revoked"),
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        revoked_at=int(item["revoked_at"]) if "revoked_at" in item else None,
        revoked_reason=str(item["revoked_reason"]) if "revoked_reason" in item else None,
        last_used_at=int(item["last_used_at"]) if "last_used_at" in item else None,
        upstream_refresh=bytes(item["upstream_refresh"]) if "upstream_refresh" in item else None,
        refresh_head=str(item["refresh_head"]) if "refresh_head" in item else None,
    )


_STATES: Final[dict[str, GrantStatus]] = {"pending": "pending", "active": "active", "revoked": "revoked"}


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

    def get(self, grant_id: str) -> Grant | None:
        now = self._clock()
        if self._ttl > 0:
            hit = self._entries.get(grant_id)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        grant = self._repo.get(grant_id)
        if self._ttl > 0:
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    # Drop the oldest insertion; dicts keep insertion order.
                    self._entries.pop(next(iter(self._entries)))
                self._entries.pop(grant_id, None)
                self._entries[grant_id] = (now, grant)
        return grant
