"""Kit refresh tokens (``RT#<sha256>`` in the grants table), rotated on every use.

The opaque token handed to clients is never stored, only its SHA-256. Rotation is one
DynamoDB transaction: the old item goes ``active`` -> ``rotated`` and its successor is put,
so of N concurrent refreshes with one token exactly one wins (OAuth 2.1 section 4.3.1).
Item layout: docs/storage-schema.md (``RT#<sha256(refresh token)>``). The in-memory twin has
the same semantics (atomic under a lock) for unit tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.ddb import ConditionFailed, DynamoTable, to_item
from functions.core.errors import DependencyError

RT_PREFIX: Final = "RT#"

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
    # The scope of this refresh token (RFC 6749 section 6): the scope originally granted,
    # carried unchanged through every rotation ("the refresh token scope MUST be identical to
    # that of the refresh token included by the client in the request"). None: an item written
    # before this attribute existed, whose scope is the grant's.
    scopes: frozenset[str] | None = None

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
        "scopes": None if token.scopes is None else sorted(token.scopes),
        "ttl": token.expires_at,
    }


class DynamoRefreshTokenRepository(DynamoTable):
    def create(self, token: RefreshToken) -> None:
        self._put_new(_rt_item(token), "create refresh token")

    def get(self, token_hash: str) -> RefreshToken | None:
        item = self._get(RT_PREFIX + token_hash, "read refresh token")
        if item is None:
            return None
        return RefreshToken(
            token_hash=token_hash,
            grant_id=str(item["grant_id"]),
            client_id=str(item["client_id"]),
            created_at=int(item["created_at"]),
            expires_at=int(item["expires_at"]),
            status="active" if item.get("status") == "active" else "rotated",
            rotated_at=int(item["rotated_at"]) if "rotated_at" in item else None,
            scopes=frozenset(str(s) for s in item["scopes"]) if "scopes" in item else None,
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
