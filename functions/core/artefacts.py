"""Short-lived authorization artefacts: pending transactions (``TXN#``) and kit codes (``CODE#``).

Every state change is a DynamoDB conditional write on the previous state (never
read-then-write), so of N concurrent requests exactly one wins; the losers get
``ConditionFailed``. TTL only cleans up: readers check ``expires_at`` themselves.
Item layout: docs/storage-schema.md (artefacts table). The in-memory twins have the same
semantics (atomic under a lock) for unit tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from functions.core.ddb import ConditionFailed, DynamoTable, dependency_call, to_item

TxnStatus = Literal["pending", "authenticated", "decided"]
TXN_PREFIX: Final = "TXN#"
CODE_PREFIX: Final = "CODE#"
TXN_LIFETIME_SECONDS: Final = 600  # issue 3: at most 10 minutes
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

    def is_live(self, now: float) -> bool:
        return now < self.expires_at


class TxnRepository(Protocol):
    def create(self, txn: Txn) -> None: ...

    def get(self, txn_id: str) -> Txn | None: ...

    def authenticate(self, txn_id: str, result: CallbackResult, now: int) -> None:
        """pending -> authenticated; ``ConditionFailed`` if not pending or expired."""
        ...

    def decide(self, txn_id: str, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        """``expected`` -> decided (with the CSRF hash as a further condition when given)."""
        ...


class CodeRepository(Protocol):
    def create(self, code: Code) -> None: ...

    def get(self, code_hash: str) -> Code | None: ...

    def consume(self, code_hash: str, now: int) -> None:
        """Set ``used_at`` once; ``ConditionFailed`` if already used (or gone)."""
        ...


# --------------------------------------------------------------------------- in memory
class InMemoryTxnRepository:
    def __init__(self) -> None:
        self.items: dict[str, Txn] = {}
        self._lock = threading.Lock()

    def create(self, txn: Txn) -> None:
        with self._lock:
            if txn.txn_id in self.items:
                raise ConditionFailed("create txn")
            self.items[txn.txn_id] = txn

    def get(self, txn_id: str) -> Txn | None:
        return self.items.get(txn_id)

    def authenticate(self, txn_id: str, result: CallbackResult, now: int) -> None:
        with self._lock:
            txn = self.items.get(txn_id)
            if txn is None or txn.status != "pending" or now >= txn.expires_at:
                raise ConditionFailed("authenticate txn")
            self.items[txn_id] = replace(
                txn,
                status="authenticated",
                sub=result.sub,
                username=result.username,
                email=result.email,
                groups=result.groups,
                origin_jti=result.origin_jti,
                allowed_scopes=result.allowed_scopes,
                upstream_tokens=result.upstream_tokens,
                csrf_hash=result.csrf_hash,
            )

    def decide(self, txn_id: str, *, expected: TxnStatus, csrf_hash: str | None, now: int) -> None:
        with self._lock:
            txn = self.items.get(txn_id)
            if txn is None or txn.status != expected or now >= txn.expires_at:
                raise ConditionFailed("decide txn")
            if csrf_hash is not None and txn.csrf_hash != csrf_hash:
                raise ConditionFailed("decide txn")
            self.items[txn_id] = replace(txn, status="decided")


class InMemoryCodeRepository:
    def __init__(self) -> None:
        self.items: dict[str, Code] = {}
        self._lock = threading.Lock()

    def create(self, code: Code) -> None:
        with self._lock:
            if code.code_hash in self.items:
                raise ConditionFailed("create code")
            self.items[code.code_hash] = code

    def get(self, code_hash: str) -> Code | None:
        return self.items.get(code_hash)

    def consume(self, code_hash: str, now: int) -> None:
        with self._lock:
            code = self.items.get(code_hash)
            if code is None or code.used_at is not None:
                raise ConditionFailed("consume code")
            self.items[code_hash] = replace(code, used_at=now)


# --------------------------------------------------------------------------- DynamoDB
class _Table(DynamoTable):
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


class DynamoCodeRepository(_Table):
    def create(self, code: Code) -> None:
        self._put_new(
            {
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
            },
            "create code",
        )

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
        )

    def consume(self, code_hash: str, now: int) -> None:
        # RFC 6749 section 4.1.2 / OAuth 2.1 section 4.1.3: single use, enforced by the write itself.
        self._update(
            CODE_PREFIX + code_hash,
            "consume code",
            "SET used_at = :now",
            "attribute_exists(pk) AND attribute_not_exists(used_at)",
            {":now": now},
        )


def _opt(item: dict[str, Any], name: str) -> str | None:
    return str(item[name]) if name in item else None
