"""Kit refresh tokens (``RT#<sha256>`` in the grants table), rotated on every use.

The opaque token handed to clients is never stored, only its SHA-256. Rotation is one
DynamoDB transaction: the old item goes ``active`` -> ``rotated``, its successor is put, and
the grant records the refresh (its current session scope, last use, Cognito's rotated
refresh token) on condition that it is still active. Of N concurrent refreshes with one
token exactly one rotates it (OAuth 2.1 section 4.3.1).

Within a short grace (RFC 9700 section 4.14.2 allows such a window for retries of a lost
response and for parallel refreshes) a rotated token is answered again with the SAME
successor it was rotated to (the successor is derived from it, its hash is recorded as
``successor``) and only a new access token: the grace never forks the chain. That re-answer
is one conditional transaction too, bounded by ``grace_mints`` on the rotated item.
Item layout: docs/storage-schema.md (``RT#<sha256(refresh token)>``, ``GRANT#``), declared
once by ``RefreshToken`` and ``REFRESH_TOKENS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from functions.core.platform.ddb import ConditionFailed, DynamoTable, transact
from functions.core.platform.items import ItemKind, stored
from functions.core.state.grants import GRANT_PREFIX

RT_PREFIX: Final = "RT#"

# active -> rotated (exchanged) or revoked (its grant was revoked while it was the chain head).
RefreshStatus = Literal["active", "rotated", "revoked"]


class TokenSpent(ConditionFailed):
    """The presented refresh token can no longer mint: already rotated, or its grace is over or spent."""


class GrantInactive(ConditionFailed):
    """The grant behind the refresh token is missing or was revoked meanwhile."""


@dataclass(frozen=True)
class RefreshToken:
    """A kit refresh token (``RT#<sha256>``); the token itself is never stored. Times: epoch s.

    An unknown stored ``status`` reads as revoked (fail closed).
    """

    token_hash: str = stored(key_only=True)
    grant_id: str = stored()
    client_id: str = stored()
    created_at: int = stored()
    expires_at: int = stored()
    status: RefreshStatus = stored("active", unknown="revoked")
    rotated_at: int | None = stored(None)
    # The scope of this refresh token (RFC 6749 section 6): the scope originally granted,
    # carried unchanged through every rotation ("the refresh token scope MUST be identical to
    # that of the refresh token included by the client in the request"). None: an item written
    # before this attribute existed, whose scope is the grant's.
    scopes: frozenset[str] | None = stored(None)
    # Access tokens minted again from this token after its rotation, within the reuse grace.
    grace_mints: int = stored(0, omit_empty=True)
    # SHA-256 of the refresh token this one was rotated to (the chain's next link).
    successor: str | None = stored(None)

    def is_live(self, now: float) -> bool:
        """Not expired at ``now`` (epoch seconds)."""
        return now < self.expires_at


REFRESH_TOKENS: Final = ItemKind(
    RefreshToken, kind="refresh_token", key=lambda t: RT_PREFIX + t.token_hash, ttl_of="expires_at"
)


@dataclass(frozen=True)
class SessionUpdate:
    """What a refresh records on its grant, in the same transaction as the rotation.

    ``scopes`` is the scope of the grant's current session: the refresh request's (possibly
    narrowed, RFC 6749 section 6) scope, which /mcp intersects with every access token of
    the grant. ``upstream_refresh`` is Cognito's rotated refresh token (KMS ciphertext) or None.
    """

    grant_id: str
    scopes: frozenset[str]
    used_at: int
    upstream_refresh: bytes | None = None


class RefreshTokenRepository(Protocol):
    """Kit refresh tokens (OAuth 2.1 section 4.3.1); times are epoch seconds, storage failures ``DependencyError``."""

    def create(self, token: RefreshToken) -> None:
        """Store a new token; ``ConditionFailed`` if its hash exists."""
        ...

    def get(self, token_hash: str) -> RefreshToken | None:
        """The token by its SHA-256 hex (strongly consistent), whatever its status, or None."""
        ...

    def mark_revoked(self, token_hash: str, now: int) -> None:
        """Set an existing token's status to ``revoked`` (its grant was revoked); idempotent."""
        ...

    def rotate(self, old_hash: str, new: RefreshToken, now: int, session: SessionUpdate | None = None) -> None:
        """Atomically: ``old_hash`` active -> rotated, store ``new``, record ``session`` on its grant.

        Raises ``TokenSpent`` when the old token is not active, ``GrantInactive`` when the
        grant is not active; nothing is written then.
        """
        ...

    def reissue_in_grace(
        self, old_hash: str, *, successor: str, rotated_since: int, max_mints: int, session: SessionUpdate | None
    ) -> None:
        """Atomically: count one more re-answer of the rotated ``old_hash`` and record ``session``.

        Stores no new token: the answer carries the existing successor (SHA-256 ``successor``)
        again, so the grant's chain does not fork and its head is unchanged. Only while
        ``old_hash`` is rotated to ``successor``, ``rotated_at >= rotated_since`` (epoch
        seconds) and fewer than ``max_mints`` re-answers were counted; else ``TokenSpent``
        (or ``GrantInactive``), and nothing is written.
        """
        ...


class DynamoRefreshTokenRepository(DynamoTable):
    """``RefreshTokenRepository`` on DynamoDB (``RT#`` items, docs/storage-schema.md)."""

    def create(self, token: RefreshToken) -> None:
        """Put the ``RT#`` item, conditional on its absence (``ConditionFailed``)."""
        self._put_new(REFRESH_TOKENS.to_item(token), "create refresh token")

    def mark_revoked(self, token_hash: str, now: int) -> None:
        """Conditional update to ``revoked`` (``revoked_at`` kept if set); a gone item is left alone."""
        # A failed condition: gone (TTL), nothing to mark.
        self._update_if(
            RT_PREFIX + token_hash,
            "mark refresh token revoked",
            UpdateExpression="SET #s = :revoked, revoked_at = if_not_exists(revoked_at, :now)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":revoked": {"S": "revoked"}, ":now": {"N": str(now)}},
        )

    def get(self, token_hash: str) -> RefreshToken | None:
        """The token by its SHA-256 hex (strongly consistent read), or None."""
        item = self._get(RT_PREFIX + token_hash, "read refresh token")
        return None if item is None else REFRESH_TOKENS.from_item(item, token_hash=token_hash)

    def rotate(self, old_hash: str, new: RefreshToken, now: int, session: SessionUpdate | None = None) -> None:
        """One ``TransactWriteItems`` (see ``RefreshTokenRepository.rotate``)."""
        # OAuth 2.1 section 4.3.1: one transaction, so the old token is spent exactly when the
        # new one exists; of N concurrent refreshes with one token exactly one wins.
        self._transact(
            {
                "Key": {"pk": {"S": RT_PREFIX + old_hash}},
                "UpdateExpression": "SET #s = :rotated, rotated_at = :now, successor = :next",
                "ConditionExpression": "attribute_exists(pk) AND #s = :active",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":rotated": {"S": "rotated"},
                    ":active": {"S": "active"},
                    ":now": {"N": str(now)},
                    ":next": {"S": new.token_hash},
                },
            },
            new,
            session,
            "rotate refresh token",
        )

    def reissue_in_grace(
        self, old_hash: str, *, successor: str, rotated_since: int, max_mints: int, session: SessionUpdate | None
    ) -> None:
        """One ``TransactWriteItems`` (see ``RefreshTokenRepository.reissue_in_grace``)."""
        # RFC 9700 section 4.14.2: the grace is checked and counted by the same conditional
        # write that records the refresh, so parallel retries cannot exceed ``max_mints``.
        self._transact(
            {
                "Key": {"pk": {"S": RT_PREFIX + old_hash}},
                "UpdateExpression": "SET grace_mints = if_not_exists(grace_mints, :zero) + :one",
                "ConditionExpression": (
                    "attribute_exists(pk) AND #s = :rotated AND successor = :next AND rotated_at >= :since"
                    " AND (attribute_not_exists(grace_mints) OR grace_mints < :max)"
                ),
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":rotated": {"S": "rotated"},
                    ":next": {"S": successor},
                    ":since": {"N": str(rotated_since)},
                    ":max": {"N": str(max_mints)},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            },
            None,
            session,
            "reissue in grace",
        )

    def _transact(
        self, old_update: dict[str, Any], new: RefreshToken | None, session: SessionUpdate | None, what: str
    ) -> None:
        """The old token's update, ``new`` put (unless None), ``session`` on the grant: all or nothing."""
        items: list[dict[str, Any]] = [{"Update": {"TableName": self._table, **old_update}}]
        if new is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": REFRESH_TOKENS.to_item(new),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        if session is not None:
            head = None if new is None else new.token_hash
            items.append({"Update": {"TableName": self._table, **_session_update(session, head)}})
        losers: list[tuple[int, type[Exception]]] = [(0, TokenSpent), (1, TokenSpent)]
        if session is not None:
            losers.insert(0, (len(items) - 1, GrantInactive))
        transact(self._ddb, items, what, losers)


def _session_update(session: SessionUpdate, head: str | None) -> dict[str, Any]:
    """The grant's part of a refresh transaction (attributes of ``GRANT#``, docs/storage-schema.md).

    ``head``: the new chain head's hash, or None when the head does not move (a grace re-answer).
    """
    sets = ["last_used_at = :now"]
    values: dict[str, Any] = {":now": {"N": str(session.used_at)}, ":active": {"S": "active"}}
    if head is not None:
        sets.append("refresh_head = :head")
        values[":head"] = {"S": head}
    removes = ""
    if session.scopes:
        sets.append("scopes = :scopes")
        values[":scopes"] = {"L": [{"S": s} for s in sorted(session.scopes)]}
    else:
        removes = " REMOVE scopes"  # the grant item never holds an empty list
    if session.upstream_refresh is not None:
        sets.append("upstream_refresh = :up")
        values[":up"] = {"B": session.upstream_refresh}
    return {
        "Key": {"pk": {"S": GRANT_PREFIX + session.grant_id}},
        "UpdateExpression": "SET " + ", ".join(sets) + removes,
        "ConditionExpression": "attribute_exists(pk) AND #s = :active",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": values,
    }
