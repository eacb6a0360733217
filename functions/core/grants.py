"""Grants: the kit's own revocation state for Cognito access tokens.

A Cognito access token stays cryptographically valid until it expires, even after its
refresh token is revoked (Cognito docs, "Revoking tokens"). So the MCP endpoint does not
trust the JWT alone: the grant behind it, found by the token's ``origin_jti`` (the claim
linking an access token to the refresh-token session it came from), must exist and be
active. Revoking a grant therefore stops its access tokens within ``GRANT_CACHE_SECONDS``.

Item layout: see docs/storage-schema.md (``GRANT#<origin_jti>`` in the grants table).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from functions.core import aws
from functions.core.ddb import ConditionFailed, dependency_call, from_item, to_item
from functions.core.errors import DependencyError

GrantStatus = Literal["active", "revoked"]
GRANT_PREFIX: Final = "GRANT#"
RT_PREFIX: Final = "RT#"
CONSENT_PREFIX: Final = "CONSENT#"


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

    def is_active(self, now: float) -> bool:
        return self.status == "active" and now < self.expires_at


class GrantRepository(Protocol):
    def get(self, grant_id: str) -> Grant | None: ...

    def create(self, grant: Grant) -> None:
        """Store a new grant; raises ``ConditionFailed`` if the id exists."""
        ...

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        """Mark revoked; True if this call changed an active grant."""
        ...


class GrantStore(GrantRepository, Protocol):
    """What the facade (authorization and token functions) needs on top of the MCP reads."""

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None: ...


class InMemoryGrantRepository:
    """Test double with the same semantics as the DynamoDB implementation."""

    def __init__(self) -> None:
        self.items: dict[str, Grant] = {}
        self.reads = 0

    def get(self, grant_id: str) -> Grant | None:
        self.reads += 1
        return self.items.get(grant_id)

    def create(self, grant: Grant) -> None:
        if grant.grant_id in self.items:
            raise ConditionFailed("create grant")
        self.items[grant.grant_id] = grant

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        grant = self.items.get(grant_id)
        if grant is None or grant.status != "active":
            return False
        self.items[grant_id] = replace(grant, status="revoked", revoked_at=now, revoked_reason=reason)
        return True

    def touch(self, grant_id: str, now: int, upstream_refresh: bytes | None = None) -> None:
        grant = self.items.get(grant_id)
        if grant is None or grant.status != "active":
            raise ConditionFailed("touch grant")
        self.items[grant_id] = replace(
            grant, last_used_at=now, upstream_refresh=upstream_refresh or grant.upstream_refresh
        )


class DynamoGrantRepository:
    def __init__(self, table: str, client: Any = None) -> None:
        self._table = table
        self._client = client

    @property
    def _ddb(self) -> Any:
        return self._client or aws.dynamodb()

    def get(self, grant_id: str) -> Grant | None:
        with dependency_call("read grant"):
            # Strongly consistent: a revocation must be visible on the next uncached read.
            resp = self._ddb.get_item(
                TableName=self._table, Key={"pk": {"S": GRANT_PREFIX + grant_id}}, ConsistentRead=True
            )
        item = resp.get("Item")
        return None if item is None else _grant_from(from_item(item))

    def create(self, grant: Grant) -> None:
        with dependency_call("create grant"):
            self._ddb.put_item(
                TableName=self._table,
                Item=to_item(_grant_to(grant)),
                ConditionExpression="attribute_not_exists(pk)",
            )

    def revoke(self, grant_id: str, reason: str, now: int) -> bool:
        try:
            with dependency_call("revoke grant"):
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": GRANT_PREFIX + grant_id}},
                    UpdateExpression="SET #s = :revoked, revoked_at = :now, revoked_reason = :why",
                    ConditionExpression="attribute_exists(pk) AND #s = :active",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":revoked": {"S": "revoked"},
                        ":active": {"S": "active"},
                        ":now": {"N": str(now)},
                        ":why": {"S": reason},
                    },
                )
        except ConditionFailed:
            return False
        return True

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


def _grant_to(grant: Grant) -> dict[str, Any]:
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
    }


def _grant_from(item: dict[str, Any]) -> Grant:
    return Grant(
        grant_id=str(item["grant_id"]),
        sub=str(item["sub"]),
        username=str(item.get("username", "")),
        email=str(item.get("email", "")),
        client_id=str(item["client_id"]),
        scopes=frozenset(str(s) for s in item.get("scopes", [])),
        status="revoked" if item.get("status") != "active" else "active",
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        revoked_at=int(item["revoked_at"]) if "revoked_at" in item else None,
        revoked_reason=str(item["revoked_reason"]) if "revoked_reason" in item else None,
        last_used_at=int(item["last_used_at"]) if "last_used_at" in item else None,
        upstream_refresh=bytes(item["upstream_refresh"]) if "upstream_refresh" in item else None,
    )


class CachedGrants:
    """Per-container read-through cache of grants.

    An entry lives at most ``ttl_seconds`` (GRANT_CACHE_SECONDS): that bounds how long a
    revoked grant's tokens keep working. Misses are cached too, so a flood of valid JWTs
    without a grant cannot turn into a flood of DynamoDB reads; that is safe because a grant
    is always written before its first access token is handed out.
    """

    MAX_ENTRIES: Final = 4096

    def __init__(self, repo: GrantRepository, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
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


# --------------------------------------------------------------------------- refresh tokens
RefreshStatus = Literal["active", "rotated"]


@dataclass(frozen=True)
class RefreshToken:
    """A kit refresh token (``RT#<sha256>``); the token itself is never stored."""

    token_hash: str
    grant_id: str
    client_id: str
    created_at: int
    expires_at: int
    status: RefreshStatus = "active"
    rotated_at: int | None = None

    def is_live(self, now: float) -> bool:
        return now < self.expires_at


class RefreshTokenRepository(Protocol):
    def create(self, token: RefreshToken) -> None: ...

    def get(self, token_hash: str) -> RefreshToken | None: ...

    def rotate(self, old_hash: str, new: RefreshToken, now: int) -> None:
        """Atomically mark ``old_hash`` rotated (if active) and store ``new``; else ``ConditionFailed``."""
        ...


class InMemoryRefreshTokenRepository:
    def __init__(self) -> None:
        self.items: dict[str, RefreshToken] = {}
        self._lock = threading.Lock()

    def create(self, token: RefreshToken) -> None:
        with self._lock:
            if token.token_hash in self.items:
                raise ConditionFailed("create refresh token")
            self.items[token.token_hash] = token

    def get(self, token_hash: str) -> RefreshToken | None:
        return self.items.get(token_hash)

    def rotate(self, old_hash: str, new: RefreshToken, now: int) -> None:
        with self._lock:
            old = self.items.get(old_hash)
            if old is None or old.status != "active" or new.token_hash in self.items:
                raise ConditionFailed("rotate refresh token")
            self.items[old_hash] = replace(old, status="rotated", rotated_at=now)
            self.items[new.token_hash] = new


def _rt_item(token: RefreshToken) -> dict[str, Any]:
    return {
        "pk": RT_PREFIX + token.token_hash,
        "kind": "refresh_token",
        "grant_id": token.grant_id,
        "client_id": token.client_id,
        "status": token.status,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "rotated_at": token.rotated_at,
        "ttl": token.expires_at,
    }


class _DynamoTable:
    def __init__(self, table: str, client: Any = None) -> None:
        self._table = table
        self._client = client

    @property
    def _ddb(self) -> Any:
        return self._client or aws.dynamodb()


class DynamoRefreshTokenRepository(_DynamoTable):
    def create(self, token: RefreshToken) -> None:
        with dependency_call("create refresh token"):
            self._ddb.put_item(
                TableName=self._table, Item=to_item(_rt_item(token)), ConditionExpression="attribute_not_exists(pk)"
            )

    def get(self, token_hash: str) -> RefreshToken | None:
        with dependency_call("read refresh token"):
            resp = self._ddb.get_item(
                TableName=self._table, Key={"pk": {"S": RT_PREFIX + token_hash}}, ConsistentRead=True
            )
        raw = resp.get("Item")
        if raw is None:
            return None
        item = from_item(raw)
        return RefreshToken(
            token_hash=token_hash,
            grant_id=str(item["grant_id"]),
            client_id=str(item["client_id"]),
            created_at=int(item["created_at"]),
            expires_at=int(item["expires_at"]),
            status="active" if item.get("status") == "active" else "rotated",
            rotated_at=int(item["rotated_at"]) if "rotated_at" in item else None,
        )

    def rotate(self, old_hash: str, new: RefreshToken, now: int) -> None:
        # OAuth 2.1 section 4.3.1: one transaction, so the old token is spent exactly when the
        # new one exists; of N concurrent refreshes with one token exactly one wins.
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": RT_PREFIX + old_hash}},
                            "UpdateExpression": "SET #s = :rotated, rotated_at = :now",
                            "ConditionExpression": "attribute_exists(pk) AND #s = :active",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {
                                ":rotated": {"S": "rotated"},
                                ":active": {"S": "active"},
                                ":now": {"N": str(now)},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(_rt_item(new)),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                    raise ConditionFailed("rotate refresh token") from exc
            raise DependencyError(f"rotate refresh token failed: {exc.response.get('Error', {}).get('Code')}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"rotate refresh token failed: {exc.__class__.__name__}") from exc


# --------------------------------------------------------------------------- remembered consent
@dataclass(frozen=True)
class Consent:
    sub: str
    client_id: str
    scopes: frozenset[str]
    created_at: int
    last_used_at: int
    expires_at: int  # last use + GRANT_LIFETIME_DAYS; also the TTL

    def covers(self, scopes: Iterable[str], now: float) -> bool:
        return now < self.expires_at and set(scopes) <= self.scopes


def consent_key(sub: str, client_id: str) -> str:
    # CIMD client ids are long URLs: the key holds their hash (docs/storage-schema.md).
    return f"{CONSENT_PREFIX}{sub}#{hashlib.sha256(client_id.encode()).hexdigest()}"


class ConsentRepository(Protocol):
    def get(self, sub: str, client_id: str) -> Consent | None: ...

    def put(self, consent: Consent) -> None: ...

    def delete(self, sub: str, client_id: str) -> None: ...


class InMemoryConsentRepository:
    def __init__(self) -> None:
        self.items: dict[str, Consent] = {}

    def get(self, sub: str, client_id: str) -> Consent | None:
        return self.items.get(consent_key(sub, client_id))

    def put(self, consent: Consent) -> None:
        self.items[consent_key(consent.sub, consent.client_id)] = consent

    def delete(self, sub: str, client_id: str) -> None:
        self.items.pop(consent_key(sub, client_id), None)


class DynamoConsentRepository(_DynamoTable):
    def get(self, sub: str, client_id: str) -> Consent | None:
        with dependency_call("read consent"):
            resp = self._ddb.get_item(
                TableName=self._table, Key={"pk": {"S": consent_key(sub, client_id)}}, ConsistentRead=True
            )
        raw = resp.get("Item")
        if raw is None:
            return None
        item = from_item(raw)
        if item.get("sub") != sub or item.get("client_id") != client_id:
            return None  # a hash collision would be astronomically unlikely; never trust it anyway
        return Consent(
            sub=sub,
            client_id=client_id,
            scopes=frozenset(str(s) for s in item.get("scopes", [])),
            created_at=int(item["created_at"]),
            last_used_at=int(item["last_used_at"]),
            expires_at=int(item["ttl"]),
        )

    def put(self, consent: Consent) -> None:
        item = {
            "pk": consent_key(consent.sub, consent.client_id),
            "kind": "consent",
            "sub": consent.sub,
            "client_id": consent.client_id,
            "scopes": sorted(consent.scopes),
            "created_at": consent.created_at,
            "last_used_at": consent.last_used_at,
            "ttl": consent.expires_at,
        }
        with dependency_call("save consent"):
            self._ddb.put_item(TableName=self._table, Item=to_item(item))

    def delete(self, sub: str, client_id: str) -> None:
        with dependency_call("delete consent"):
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": consent_key(sub, client_id)}})
