"""Kit authorization codes (``CODE#<sha256(code)>`` in the artefacts table).

Issued on consent, at most ``CODE_LIFETIME_SECONDS``, single use (RFC 6749 section 4.1.2,
OAuth 2.1 section 4.1.3): the redemption is one DynamoDB transaction conditional on the
code being unused, which also activates its grant and stores its first refresh token, so
of N concurrent redemptions exactly one wins. TTL only cleans up: readers check
``expires_at`` themselves. Item layout: docs/storage-schema.md (artefacts table), declared
once by ``AuthorizationCode`` and ``CODES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

from functions.core.platform.ddb import ConditionFailed, DynamoTable, to_item, transact
from functions.core.platform.items import ItemKind, stored
from functions.core.state.grants import GRANT_PREFIX
from functions.core.state.refresh_tokens import REFRESH_TOKENS, GrantInactive, RefreshToken

CODE_PREFIX: Final = "CODE#"
CODE_LIFETIME_SECONDS: Final = 60  # RFC 6749 section 4.1.2: short-lived, 10 minutes maximum; the kit uses 60 s


@dataclass(frozen=True)
class AuthorizationCode:
    """A kit authorization code as stored: never the code itself, only its SHA-256 (hex).

    Times are epoch seconds. ``upstream_access`` is KMS ciphertext of Cognito's access token
    (context ``{"kit": "upstream-token", "grant": grant_id}``).
    """

    code_hash: str = stored(key_only=True)
    client_id: str = stored()
    redirect_uri: str = stored()
    code_challenge: str = stored()
    resource: str = stored()
    scopes: tuple[str, ...] = stored(absent=())
    grant_id: str = stored()
    upstream_access: bytes = stored()
    access_expires_at: int = stored()
    created_at: int = stored()
    expires_at: int = stored()
    used_at: int | None = stored(None)
    # Set by the redemption: until ``retry_until`` the same client's identical request is a
    # retry and gets the same answer; ``answer`` is KMS ciphertext of that answer's refresh
    # token (context ``code_answer_context``), None for clients without refresh tokens.
    retry_until: int | None = stored(None)
    answer: bytes | None = stored(None)

    def is_live(self, now: float) -> bool:
        """Whether the code has not expired at ``now`` (epoch seconds)."""
        return now < self.expires_at


CODES: Final = ItemKind(AuthorizationCode, kind="code", key=lambda c: CODE_PREFIX + c.code_hash, ttl_of="expires_at")


def code_answer_context(code_hash: str) -> dict[str, str]:
    """KMS encryption context of a redeemed code's stored answer: bound to its item."""
    return {"kit": "code-answer", "code": code_hash}


class CodeSpent(ConditionFailed):
    """The code was redeemed already (or is gone): the redemption wrote nothing."""


@dataclass(frozen=True)
class Redemption:
    """What redeeming a code writes, all in one transaction (RFC 6749 section 4.1.2).

    The code gets ``used_at``, ``retry_until`` and ``answer`` (epoch seconds, ciphertext); its
    pending grant becomes active until ``grant_expires_at`` with ``refresh_token`` (if any) as
    its chain head, and that refresh token is stored.
    """

    used_at: int
    retry_until: int
    answer: bytes | None
    grant_expires_at: int
    refresh_token: RefreshToken | None


class AuthorizationCodeRepository(Protocol):
    """Kit authorization codes (RFC 6749 section 4.1.2); every failure to reach storage is ``DependencyError``."""

    def create(self, code: AuthorizationCode) -> None:
        """Store a new code; ``ConditionFailed`` if its hash exists."""
        ...

    def get(self, code_hash: str) -> AuthorizationCode | None:
        """The code by its SHA-256 hex (strongly consistent), used or not, or None."""
        ...

    def redeem(self, code: AuthorizationCode, redemption: Redemption) -> None:
        """Spend ``code`` and activate its grant with ``redemption``: one conditional transaction.

        ``CodeSpent`` when it was redeemed already, ``GrantInactive`` when its grant is not
        pending or active (revoked, expired); nothing is written then.
        """
        ...


class LinkedTables(DynamoTable):
    """An artefacts-table repository whose transactions also write the grants table."""

    def __init__(self, table: str, client: Any = None, *, grants_table: str) -> None:
        """``grants_table``: where a redemption or an approval writes its grant items."""
        super().__init__(table, client)
        self._grants_table = grants_table


class DynamoAuthorizationCodeRepository(LinkedTables):
    """``AuthorizationCodeRepository`` on DynamoDB (``CODE#`` items, docs/storage-schema.md)."""

    def create(self, code: AuthorizationCode) -> None:
        """Put the ``CODE#`` item, conditional on its absence (``ConditionFailed``)."""
        self._put_new(CODES.to_item(code), "create code")

    def get(self, code_hash: str) -> AuthorizationCode | None:
        """The code by its SHA-256 hex (strongly consistent read), or None."""
        item = self._get(CODE_PREFIX + code_hash, "read code")
        return None if item is None else CODES.from_item(item, code_hash=code_hash)

    def redeem(self, code: AuthorizationCode, redemption: Redemption) -> None:
        """One ``TransactWriteItems``: spend the code, activate its grant, put its refresh token."""
        # RFC 6749 section 4.1.2 / OAuth 2.1 section 4.1.3: single use, enforced by the write
        # itself; the code is spent exactly when its grant is active and its refresh token exists.
        now, rt = redemption.used_at, redemption.refresh_token
        code_values: dict[str, Any] = {
            ":now": now,
            ":until": redemption.retry_until,
            ":ttl": max(code.expires_at, redemption.retry_until),
        }
        code_set = "SET used_at = :now, retry_until = :until, #ttl = :ttl"
        if redemption.answer is not None:
            code_set += ", answer = :answer"
            code_values[":answer"] = redemption.answer
        grant_values: dict[str, Any] = {
            ":active": "active",
            ":pending": "pending",
            ":now": now,
            ":expires": redemption.grant_expires_at,
        }
        grant_set = "SET #s = :active, expires_at = :expires, #ttl = :expires, last_used_at = :now"
        if rt is not None:
            grant_set += ", refresh_head = :head"
            grant_values[":head"] = rt.token_hash
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": CODE_PREFIX + code.code_hash}},
                    "UpdateExpression": code_set,
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(used_at)",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": to_item(code_values),
                }
            },
            {
                "Update": {
                    "TableName": self._grants_table,
                    "Key": {"pk": {"S": GRANT_PREFIX + code.grant_id}},
                    "UpdateExpression": grant_set,
                    "ConditionExpression": "attribute_exists(pk) AND #s IN (:pending, :active) AND expires_at > :now",
                    "ExpressionAttributeNames": {"#s": "status", "#ttl": "ttl"},
                    "ExpressionAttributeValues": to_item(grant_values),
                }
            },
        ]
        if rt is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._grants_table,
                        "Item": REFRESH_TOKENS.to_item(rt),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        transact(self._ddb, items, "redeem code", [(0, CodeSpent), (1, GrantInactive)])
