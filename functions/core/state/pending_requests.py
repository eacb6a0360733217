"""Pending authorization requests (``TXN#<txn_id>`` in the artefacts table).

One per ``GET /authorize`` (RFC 6749 section 4.1.1) until its decision at consent. Every
state change is a DynamoDB conditional write on the previous state (never
read-then-write), so of N concurrent requests exactly one wins; the losers get
``ConditionFailed``. TTL only cleans up: readers check ``expires_at`` themselves. Item
layout: docs/storage-schema.md (artefacts table), declared once by
``PendingAuthorizationRequest`` and ``PENDING_REQUESTS``: what the Cognito callback sets is
the fields declared ``phase=CALLBACK``, written by ``authenticate`` and read back by ``get``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from functions.core.platform.ddb import ConditionFailed, dependency_call, to_item, transact
from functions.core.platform.items import ItemKind, stored
from functions.core.state.codes import CODES, AuthorizationCode, LinkedTables
from functions.core.state.consent import CONSENTS, Consent
from functions.core.state.grants import GRANTS, Grant

RequestStatus = Literal["pending", "authenticated", "decided"]
TXN_PREFIX: Final = "TXN#"
# RFC 6749 section 4.1.1 sets no bound; the kit's consent flow must finish within 10 minutes.
TXN_LIFETIME_SECONDS: Final = 600
CALLBACK: Final = "callback"  # the phase of the fields the Cognito callback sets


@dataclass(frozen=True)
class PendingAuthorizationRequest:
    """A validated authorization request waiting for sign-in and consent.

    ``txn_id`` (256 random bits) is also the ``state`` sent to Cognito and the value the
    browser cookie binds. Times are epoch seconds. ``upstream_tokens`` is KMS ciphertext
    (context ``{"kit": "upstream-token", "txn": txn_id}``); ``csrf_hash`` the SHA-256 hex of
    the consent form's CSRF token. An unknown stored status reads as ``decided`` (fail closed).
    """

    txn_id: str = stored(key_only=True)
    client_id: str = stored()
    redirect_uri: str = stored()
    state: str | None = stored()
    code_challenge: str = stored()
    resource: str = stored()
    scopes: tuple[str, ...] = stored(absent=())
    created_at: int = stored()
    expires_at: int = stored()
    status: RequestStatus = stored("pending", unknown="decided")
    # Set at the Cognito callback (pending -> authenticated), all in one conditional update.
    sub: str | None = stored(None, phase=CALLBACK)
    username: str | None = stored(None, phase=CALLBACK)
    email: str | None = stored(None, phase=CALLBACK)
    groups: tuple[str, ...] = stored((), phase=CALLBACK, omit_empty=True)
    origin_jti: str | None = stored(None, phase=CALLBACK)
    allowed_scopes: tuple[str, ...] = stored((), phase=CALLBACK, omit_empty=True)
    upstream_tokens: bytes | None = stored(None, phase=CALLBACK)
    csrf_hash: str | None = stored(None, phase=CALLBACK)
    # The client's self-declared, unverified name at /authorize (``metadata.bounded_client_name``),
    # for the grant and the audit events; "" when it declared none (and on older items).
    client_name: str = stored("", omit_empty=True)

    def is_live(self, now: float) -> bool:
        """Whether the request has not expired at ``now`` (epoch seconds)."""
        return now < self.expires_at


PENDING_REQUESTS: Final = ItemKind(
    PendingAuthorizationRequest, kind="txn", key=lambda r: TXN_PREFIX + r.txn_id, ttl_of="expires_at"
)


class DuplicateGrant(ConditionFailed):
    """A grant with this id exists: the upstream sign-in session was already used."""


@dataclass(frozen=True)
class Approval:
    """What an approved consent writes with the decision, in one transaction."""

    grant: Grant  # status pending, expiring with the code
    code: AuthorizationCode
    consent: Consent  # the remembered consent, updated


class PendingRequestRepository(Protocol):
    """Pending authorization requests; ``now`` is epoch seconds, storage failures ``DependencyError``."""

    def create(self, request: PendingAuthorizationRequest) -> None:
        """Store a new pending request; ``ConditionFailed`` if its id exists."""
        ...

    def get(self, txn_id: str) -> PendingAuthorizationRequest | None:
        """The request (strongly consistent), whatever its status or expiry, or None."""
        ...

    def authenticate(self, request: PendingAuthorizationRequest, now: int) -> None:
        """pending -> authenticated, storing ``request``'s ``CALLBACK`` fields.

        ``ConditionFailed`` if the stored request is not pending or has expired.
        """
        ...

    def decide(self, txn_id: str, *, expected: RequestStatus, csrf_hash: str | None, now: int) -> None:
        """``expected`` -> decided (with the CSRF hash as a further condition when given).

        ``ConditionFailed`` when the request is not in ``expected``, expired, or the hash differs.
        """
        ...

    def approve(
        self, txn_id: str, approval: Approval, *, expected: RequestStatus, csrf_hash: str | None, now: int
    ) -> None:
        """Like ``decide``, and store the approval's pending grant, code and consent: all or nothing.

        ``ConditionFailed`` when the request was decided meanwhile (or expired),
        ``DuplicateGrant`` when the grant exists; ``DependencyError`` when nothing was written.
        """
        ...


class DynamoPendingRequestRepository(LinkedTables):
    """``PendingRequestRepository`` on DynamoDB (``TXN#`` items, docs/storage-schema.md)."""

    def create(self, request: PendingAuthorizationRequest) -> None:
        """Put the ``TXN#`` item, conditional on its absence (``ConditionFailed``)."""
        self._put_new(PENDING_REQUESTS.to_item(request), "create txn")

    def get(self, txn_id: str) -> PendingAuthorizationRequest | None:
        """The request (strongly consistent read), or None."""
        item = self._get(TXN_PREFIX + txn_id, "read txn")
        return None if item is None else PENDING_REQUESTS.from_item(item, txn_id=txn_id)

    def authenticate(self, request: PendingAuthorizationRequest, now: int) -> None:
        """One conditional ``UpdateItem`` (status pending, not expired) setting the callback fields."""
        fields = PENDING_REQUESTS.phase_fields(CALLBACK)
        values = PENDING_REQUESTS.values(request, fields, omit=False)
        names = {f"#a{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"{placeholder} = :a{i}" for i, placeholder in enumerate(names))
        self._update(
            request.txn_id,
            "authenticate txn",
            "SET #s = :authenticated, " + sets,
            "attribute_exists(pk) AND #s = :pending AND expires_at > :now",
            {
                ":authenticated": "authenticated",
                ":pending": "pending",
                ":now": now,
                **{f":a{i}": value for i, value in enumerate(values.values())},
            },
            names,
        )

    def decide(self, txn_id: str, *, expected: RequestStatus, csrf_hash: str | None, now: int) -> None:
        """One conditional ``UpdateItem``: ``expected`` -> decided."""
        condition, values = _decision(expected, csrf_hash, now)
        self._update(txn_id, "decide txn", "SET #s = :decided", condition, values)

    def approve(
        self, txn_id: str, approval: Approval, *, expected: RequestStatus, csrf_hash: str | None, now: int
    ) -> None:
        """One ``TransactWriteItems``: the decision, the grant and code puts, the consent put."""
        condition, values = _decision(expected, csrf_hash, now)
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
                    "Item": GRANTS.to_item(approval.grant),
                    "ConditionExpression": new,
                }
            },
            {"Put": {"TableName": self._table, "Item": CODES.to_item(approval.code), "ConditionExpression": new}},
            {"Put": {"TableName": self._grants_table, "Item": CONSENTS.to_item(approval.consent)}},
        ]
        transact(self._ddb, items, "approve txn", [(0, ConditionFailed), (1, DuplicateGrant)])

    def _update(
        self,
        txn_id: str,
        what: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> None:
        with dependency_call(what):
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": TXN_PREFIX + txn_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status", **(names or {})},
                ExpressionAttributeValues=to_item(values),
            )


def _decision(expected: RequestStatus, csrf_hash: str | None, now: int) -> tuple[str, dict[str, Any]]:
    """The condition and values of a decision (``expected`` -> decided; CSRF-bound when given)."""
    condition = "attribute_exists(pk) AND #s = :expected AND expires_at > :now"
    values: dict[str, Any] = {":decided": "decided", ":expected": expected, ":now": now}
    if csrf_hash is not None:
        condition += " AND csrf_hash = :csrf"
        values[":csrf"] = csrf_hash
    return condition, values
