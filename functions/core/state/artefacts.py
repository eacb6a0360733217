"""Short-lived authorization artefacts: pending transactions (``TXN#``) and kit codes (``CODE#``).

Every state change is a DynamoDB conditional write on the previous state (never
read-then-write), so of N concurrent requests exactly one wins; the losers get
``ConditionFailed``. TTL only cleans up: readers check ``expires_at`` themselves.
Item layout: docs/storage-schema.md (artefacts table). The in-memory twins
(functions/core/state/artefacts_memory.py) have the same semantics (atomic under a lock) for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from functions.core.platform.ddb import ConditionFailed, DynamoTable, dependency_call, to_item, transact
from functions.core.state.consent import Consent, consent_item
from functions.core.state.grants import GRANT_PREFIX, Grant, grant_item
from functions.core.state.refresh_tokens import GrantInactive, RefreshToken, refresh_token_item

TxnStatus = Literal["pending", "authenticated", "decided"]
TXN_PREFIX: Final = "TXN#"
CODE_PREFIX: Final = "CODE#"
TXN_LIFETIME_SECONDS: Final = 600  # at most 10 minutes, like the code it leads to (RFC 6749 section 4.1.2)
CODE_LIFETIME_SECONDS: Final = 60  # RFC 6749 section 4.1.2: short-lived, 10 minutes maximum; the kit uses 60 s


@dataclass(frozen=True)
class Txn:
    txn_id: str
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    resource: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int
    status: TxnStatus = "pending"
    # Set at the Cognito callback.
    sub: str | None = None
    username: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    origin_jti: str | None = None
    allowed_scopes: tuple[str, ...] = ()
    upstream_tokens: bytes | None = None  # KMS ciphertext, context {"kit": "upstream-token", "txn": id}
    csrf_hash: str | None = None

    def is_live(self, now: float) -> bool:
        return now < self.expires_at


@dataclass(frozen=True)
class CallbackResult:
    """What the callback learns and stores on the transaction (pending -> authenticated)."""

    sub: str
    username: str
    email: str
    groups: tuple[str, ...]
    origin_jti: str
    allowed_scopes: tuple[str, ...]
    upstream_tokens: bytes
    csrf_hash: str


@dataclass(frozen=True)
class Code:
    code_hash: str  # sha256 hex of the code; the code itself is never stored
    client_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scopes: tuple[str, ...]
    grant_id: str
    upstream_access: bytes  # KMS ciphertext, context {"kit": "upstream-token", "grant": grant_id}
    access_expires_at: int
    created_at: int
    expires_at: int
    used_at: int | None = None
    # Set by the redemption: until ``retry_until`` the same client's identical request is a
    # retry and gets the same answer; ``answer`` is KMS ciphertext of that answer's refresh
    # token (context ``code_answer_context``), None for clients without refresh tokens.
    retry_until: int | None = None
    answer: bytes | None = None

    def is_live(self, now: float) -> bool:
        return now < self.expires_at


def code_answer_context(code_hash: str) -> dict[str, str]:
    """KMS encryption context of a redeemed code's stored answer: bound to its item."""
    return {"kit": "code-answer", "code": code_hash}


class CodeSpent(ConditionFailed):
    """The code was redeemed already (or is gone): the redemption wrote nothing."""


class DuplicateGrant(ConditionFailed):
    """A grant with this id exists: the upstream sign-in session was already used."""


@dataclass(frozen=True)
class Redemption:
    """What redeeming a code writes, all in one transaction (RFC 6749 section 4.1.2).

    The code gets ``used_at``, ``retry_until`` and ``answer``; its pending grant becomes
    active until ``grant_expires_at`` with ``refresh_token`` (if any) as its chain head, and
    that refresh token is stored.
    """

    used_at: int
    retry_until: int
    answer: bytes | None
    grant_expires_at: int
    refresh_token: RefreshToken | None


@dataclass(frozen=True)
class Approval:
    """What an approved consent writes with the decision, in one transaction."""

    grant: Grant  # status pending, expiring with the code
    code: Code
    consent: Consent  # the remembered consent, updated


class TxnRepository(Protocol):
    def create(self, txn: Txn) -> None: ...

    def get(self, txn_id: str) -> Txn | None: ...

    def authenticate(self, txn_id: str, result: CallbackResult, now: int) -> None:
        """pending -> authenticated; ``ConditionFailed`` if not pending or expired."""
        ...

    def decide(self, txn_id: str, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        """``expected`` -> decided (with the CSRF hash as a further condition when given)."""
        ...

    def approve(self, txn_id: str, approval: Approval, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        """Like ``decide``, and store the approval's pending grant, code and consent: all or nothing.

        ``ConditionFailed`` when the transaction was decided meanwhile (or expired),
        ``DuplicateGrant`` when the grant exists; ``DependencyError`` when nothing was written.
        """
        ...


class CodeRepository(Protocol):
    def create(self, code: Code) -> None: ...

    def get(self, code_hash: str) -> Code | None: ...

    def redeem(self, code: Code, redemption: Redemption) -> None:
        """Spend ``code`` and activate its grant with ``redemption``: one conditional transaction.

        ``CodeSpent`` when it was redeemed already, ``GrantInactive`` when its grant is not
        pending or active (revoked, expired); nothing is written then.
        """
        ...


# --------------------------------------------------------------------------- DynamoDB
class _Table(DynamoTable):
    def __init__(self, table: str, client: Any = None, *, grants_table: str) -> None:
        """``grants_table``: where a redemption or an approval writes its grant items."""
        super().__init__(table, client)
        self._grants_table = grants_table

    def _update(
        self,
        pk: str,
        what: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> None:
        names = {**({"#s": "status"} if "#s" in update + condition else {}), **(names or {})}
        with dependency_call(what):
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(values),
                **({"ExpressionAttributeNames": names} if names else {}),
            )


class DynamoTxnRepository(_Table):
    def create(self, txn: Txn) -> None:
        self._put_new(
            {
                "pk": TXN_PREFIX + txn.txn_id,
                "kind": "txn",
                "client_id": txn.client_id,
                "redirect_uri": txn.redirect_uri,
                "state": txn.state,
                "code_challenge": txn.code_challenge,
                "resource": txn.resource,
                "scopes": list(txn.scopes),
                "status": txn.status,
                "created_at": txn.created_at,
                "expires_at": txn.expires_at,
                "ttl": txn.expires_at,
            },
            "create txn",
        )

    def get(self, txn_id: str) -> Txn | None:
        item = self._get(TXN_PREFIX + txn_id, "read txn")
        if item is None:
            return None
        status = str(item.get("status"))
        return Txn(
            txn_id=txn_id,
            client_id=str(item["client_id"]),
            redirect_uri=str(item["redirect_uri"]),
            state=str(item["state"]) if "state" in item else None,
            code_challenge=str(item["code_challenge"]),
            resource=str(item["resource"]),
            scopes=tuple(str(s) for s in item.get("scopes", [])),
            created_at=int(item["created_at"]),
            expires_at=int(item["expires_at"]),
            status=status if status in ("pending", "authenticated") else "decided",  # type: ignore[arg-type]
            sub=_opt(item, "sub"),
            username=_opt(item, "username"),
            email=_opt(item, "email"),
            groups=tuple(str(g) for g in item.get("groups", [])),
            origin_jti=_opt(item, "origin_jti"),
            allowed_scopes=tuple(str(s) for s in item.get("allowed_scopes", [])),
            upstream_tokens=bytes(item["upstream_tokens"]) if "upstream_tokens" in item else None,
            csrf_hash=_opt(item, "csrf_hash"),
        )

    def authenticate(self, txn_id: str, result: CallbackResult, now: int) -> None:
        self._update(
            TXN_PREFIX + txn_id,
            "authenticate txn",
            "SET #s = :authenticated, #sub = :sub, username = :username, email = :email, #groups = :groups, "
            "origin_jti = :origin_jti, allowed_scopes = :allowed, upstream_tokens = :upstream, csrf_hash = :csrf",
            "attribute_exists(pk) AND #s = :pending AND expires_at > :now",
            {
                ":authenticated": "authenticated",
                ":pending": "pending",
                ":now": now,
                ":sub": result.sub,
                ":username": result.username,
                ":email": result.email,
                ":groups": list(result.groups),
                ":origin_jti": result.origin_jti,
                ":allowed": list(result.allowed_scopes),
                ":upstream": result.upstream_tokens,
                ":csrf": result.csrf_hash,
            },
            names={"#sub": "sub", "#groups": "groups"},
        )

    def decide(self, txn_id: str, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        condition = "attribute_exists(pk) AND #s = :expected AND expires_at > :now"
        values: dict[str, Any] = {":decided": "decided", ":expected": expected, ":now": now}
        if csrf_hash is not None:
            condition += " AND csrf_hash = :csrf"
            values[":csrf"] = csrf_hash
        self._update(TXN_PREFIX + txn_id, "decide txn", "SET #s = :decided", condition, values)

    def approve(self, txn_id: str, approval: Approval, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        condition = "attribute_exists(pk) AND #s = :expected AND expires_at > :now"
        values: dict[str, Any] = {":decided": "decided", ":expected": expected, ":now": now}
        if csrf_hash is not None:
            condition += " AND csrf_hash = :csrf"
            values[":csrf"] = csrf_hash
        new = "attribute_not_exists(pk)"
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": TXN_PREFIX + txn_id}},
                    "UpdateExpression": "SET #s = :decided",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": to_item(values),
                }
            },
            {
                "Put": {
                    "TableName": self._grants_table,
                    "Item": to_item(grant_item(approval.grant)),
                    "ConditionExpression": new,
                }
            },
            {"Put": {"TableName": self._table, "Item": to_item(_code_item(approval.code)), "ConditionExpression": new}},
            {"Put": {"TableName": self._grants_table, "Item": to_item(consent_item(approval.consent))}},
        ]
        transact(self._ddb, items, "approve txn", [(0, ConditionFailed), (1, DuplicateGrant)])


def _code_item(code: Code) -> dict[str, Any]:
    return {
        "pk": CODE_PREFIX + code.code_hash,
        "kind": "code",
        "client_id": code.client_id,
        "redirect_uri": code.redirect_uri,
        "code_challenge": code.code_challenge,
        "resource": code.resource,
        "scopes": list(code.scopes),
        "grant_id": code.grant_id,
        "upstream_access": code.upstream_access,
        "access_expires_at": code.access_expires_at,
        "created_at": code.created_at,
        "expires_at": code.expires_at,
        "ttl": code.expires_at,
    }


class DynamoCodeRepository(_Table):
    def create(self, code: Code) -> None:
        self._put_new(_code_item(code), "create code")

    def get(self, code_hash: str) -> Code | None:
        item = self._get(CODE_PREFIX + code_hash, "read code")
        if item is None:
            return None
        return Code(
            code_hash=code_hash,
            client_id=str(item["client_id"]),
            redirect_uri=str(item["redirect_uri"]),
            code_challenge=str(item["code_challenge"]),
            resource=str(item["resource"]),
            scopes=tuple(str(s) for s in item.get("scopes", [])),
            grant_id=str(item["grant_id"]),
            upstream_access=bytes(item["upstream_access"]),
            access_expires_at=int(item["access_expires_at"]),
            created_at=int(item["created_at"]),
            expires_at=int(item["expires_at"]),
            used_at=int(item["used_at"]) if "used_at" in item else None,
            retry_until=int(item["retry_until"]) if "retry_until" in item else None,
            answer=bytes(item["answer"]) if "answer" in item else None,
        )

    def redeem(self, code: Code, redemption: Redemption) -> None:
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
                        "Item": to_item(refresh_token_item(rt)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        transact(self._ddb, items, "redeem code", [(0, CodeSpent), (1, GrantInactive)])


def _opt(item: dict[str, Any], name: str) -> str | None:
    return str(item[name]) if name in item else None
