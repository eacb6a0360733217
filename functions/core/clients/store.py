"""Registered (DCR) clients in DynamoDB.

Item kinds (docs/storage-schema.md, clients table):

* ``CLIENT#<client_id>``: the client; secrets only as SHA-256 hex; ``ttl`` = last use +
  CLIENT_IDLE_DAYS, refreshed at most once a day by ``touch``; a shared public client keeps
  the hashes of its last ``MAX_REGISTRATION_TOKENS`` registration access tokens;
* ``DEDUPE#<sha256(canonical metadata)>``: public clients only, maps identical metadata to
  one ``client_id``; written in the same transaction as the client;
* ``COUNTER#clients#<width>d#<bucket>#<shard>``: live clients counted by the bucket of their
  ``ttl`` (functions/core/clients/store_count.py): no Scan on any path, TTL expiry frees
  capacity by itself, and concurrent registrations do not contend on one item.

TTL is cleanup, not enforcement: every read checks ``ttl`` itself. The in-memory twin with
the same semantics (for tests) is functions/core/clients/store_memory.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any, Final, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.clients.metadata import display_text
from functions.core.clients.records import AuthMethod, ClientRecord
from functions.core.clients.store_count import DynamoClientCounter
from functions.core.platform.ddb import ConditionFailed, DynamoTable, dependency_call, from_item, to_item
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger

CLIENT_PREFIX: Final = "CLIENT#"
DEDUPE_PREFIX: Final = "DEDUPE#"
# Registered client ids are 128 random bits, base64url (22 characters); nothing else is
# ever looked up as a registered client.
REGISTERED_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DAY: Final = 86_400
TOUCH_INTERVAL: Final = DAY  # refresh last_used_at / ttl at most once a day
_CONDITION_FAILED: Final = "ConditionalCheckFailed"
# Identical public registrations share one client, and each registrant gets its own
# registration access token (RFC 7592 section 3: read access). The last 20 stay valid: enough
# for a burst of registrants of the same agent (hosted clients behind one egress, a team
# starting the same tool) to read their registration back, while the item stays small (20
# SHA-256 hex digests, 1.3 KB) and each identical registration writes a bounded amount. An
# older holder's token stops working (401); the client_id keeps working for everyone.
MAX_REGISTRATION_TOKENS: Final = 20


class ClientLimitReached(Exception):
    """MAX_CLIENTS live clients are counted."""


class DedupeConflict(Exception):
    """Another live client already holds this dedupe key (a concurrent identical registration)."""


class ClientLookup(Protocol):
    """Read access to registered clients (what the MCP function needs)."""

    def get(self, client_id: str, now: int) -> ClientRecord | None:
        """The live client, or None if unknown or idle-expired; ``DependencyError`` on failure."""
        ...


class ClientStore(ClientLookup, Protocol):
    def create(self, record: ClientRecord, *, max_clients: int, now: int) -> ClientRecord:
        """Store a new client (+ its DEDUPE item); raises ``DedupeConflict`` or ``ClientLimitReached``."""
        ...

    def find_by_dedupe(self, dedupe_key: str, now: int) -> ClientRecord | None: ...

    def add_registration_token(self, record: ClientRecord, new_hash: str, now: int) -> ClientRecord | None:
        """Add a registration access token hash to a shared public client (and count as use).

        The newest ``MAX_REGISTRATION_TOKENS`` hashes are kept. None if the client changed
        since ``record`` was read (another token was added concurrently, or it expired): re-read.
        """
        ...

    def update(self, record: ClientRecord, *, expected_token_hash: str, now: int) -> ClientRecord | None:
        """RFC 7592 PUT: replace metadata; None if the client is gone or the token changed."""
        ...

    def delete(self, record: ClientRecord, *, expected_token_hash: str) -> bool: ...

    def touch(self, record: ClientRecord, now: int) -> ClientRecord:
        """Refresh ``last_used_at`` and ``ttl`` if the last refresh is a day old."""
        ...


def client_item(record: ClientRecord) -> dict[str, Any]:
    return {
        "pk": CLIENT_PREFIX + record.client_id,
        "kind": "client",
        "client_id": record.client_id,
        "metadata": json.dumps(record.metadata, separators=(",", ":"), sort_keys=False),
        "token_endpoint_auth_method": record.token_endpoint_auth_method,
        "client_secret_hash": record.client_secret_hash,
        "registration_access_token_hash": record.registration_access_token_hash,
        "registration_access_token_hashes": list(record.registration_access_token_hashes) or None,
        "dedupe_key": record.dedupe_key,
        "client_id_issued_at": record.client_id_issued_at,
        "last_used_at": record.last_used_at,
        "ttl": record.expires_at,
    }


def record_from_item(item: dict[str, Any]) -> ClientRecord:
    metadata = json.loads(str(item["metadata"]))
    method = str(item["token_endpoint_auth_method"])
    return ClientRecord(
        client_id=str(item["client_id"]),
        kind="registered",
        redirect_uris=tuple(metadata.get("redirect_uris", ())),
        token_endpoint_auth_method=cast(AuthMethod, method),
        grant_types=tuple(metadata.get("grant_types", ("authorization_code",))),
        # Records written before invisible characters were stripped at registration are
        # cleaned on read too, so the consent page never shows them (UTR 36).
        client_name=display_text(str(metadata["client_name"])) or None if metadata.get("client_name") else None,
        scope=metadata.get("scope"),
        metadata=metadata,
        client_secret_hash=_opt(item.get("client_secret_hash")),
        registration_access_token_hash=_opt(item.get("registration_access_token_hash")),
        registration_access_token_hashes=tuple(str(h) for h in item.get("registration_access_token_hashes") or ()),
        client_id_issued_at=int(item.get("client_id_issued_at", 0)),
        last_used_at=int(item.get("last_used_at", 0)),
        dedupe_key=_opt(item.get("dedupe_key")),
        expires_at=int(item.get("ttl", 0)),
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def with_registration_token(record: ClientRecord, new_hash: str, now: int, expires: int) -> ClientRecord:
    """The record after adding ``new_hash`` (newest first, at most MAX_REGISTRATION_TOKENS) as a use."""
    return replace(
        record,
        registration_access_token_hash=new_hash,
        registration_access_token_hashes=(new_hash, *record.token_hashes)[:MAX_REGISTRATION_TOKENS],
        last_used_at=now,
        expires_at=expires,
    )


def dedupe_item(record: ClientRecord) -> dict[str, Any]:
    return {
        "pk": DEDUPE_PREFIX + str(record.dedupe_key),
        "kind": "dedupe",
        "client_id": record.client_id,
        "ttl": record.expires_at,
    }


class DynamoClientReader(DynamoTable):
    """``ClientLookup`` on the clients table: one strongly consistent GetItem per call."""

    def get(self, client_id: str, now: int) -> ClientRecord | None:
        item = self._get(CLIENT_PREFIX + client_id, "read client")
        if item is None:
            return None
        record = record_from_item(item)
        return record if record.expires_at > now else None


class DynamoClientStore(DynamoClientReader):
    def __init__(self, table: str, *, idle_days: int, client: Any = None) -> None:
        super().__init__(table, client)
        self._idle = idle_days * DAY
        self._count = DynamoClientCounter(table, self._idle, lambda: self._ddb)

    def _key(self, pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}}

    def _transact(self, what: str, items: list[dict[str, Any]]) -> list[str] | None:
        """TransactWriteItems; None on success, else the per-item cancellation codes."""
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            reasons = cast(list[dict[str, Any]], exc.response.get("CancellationReasons") or [])
            codes = [str(r.get("Code", "None")) for r in reasons]
            if code == "TransactionCanceledException" and _CONDITION_FAILED in codes:
                return codes
            # Throttling, TransactionConflict, ...: a dependency problem (503), never a decision.
            raise DependencyError(f"{what} failed: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyError(f"{what} failed: {exc.__class__.__name__}") from exc
        return None

    def create(self, record: ClientRecord, *, max_clients: int, now: int) -> ClientRecord:
        record = replace(record, last_used_at=now, expires_at=now + self._idle)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(client_item(record)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        if record.dedupe_key:
            # A DEDUPE item whose client has idled out may be taken over.
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(dedupe_item(record)),
                        "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :now",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {":now": {"N": str(now)}},
                    }
                }
            )
        # Count first, then read the total: of registrations racing at the cap, the last to
        # count sees every other one, so the cap is never exceeded (storage-schema.md).
        key = self._count.key(record.client_id, record.expires_at)
        self._count.add(key, 1)
        try:
            if self._count.total(now) > max_clients:
                raise ClientLimitReached(max_clients)
            codes = self._transact("register client", items)
            if codes is not None:
                if len(codes) > 1 and codes[1] == _CONDITION_FAILED:
                    raise DedupeConflict(record.dedupe_key)
                raise DependencyError("client id collision")  # 128 random bits: practically impossible
        except (ClientLimitReached, DedupeConflict, DependencyError):
            self._count.undo(key)
            raise
        return record

    def _move_count(self, client_id: str, believed_ttl: int, new_ttl: int) -> bool:
        """Before a write that sets ``ttl``: count the client in its new bucket (True if done)."""
        if self._count.key(client_id, believed_ttl) == self._count.key(client_id, new_ttl):
            return False
        self._count.add(self._count.key(client_id, new_ttl), 1)
        return True

    def _settle_count(self, client_id: str, added: bool, old_ttl: int | None, new_ttl: int) -> None:
        """After it: drop the old bucket's count (``old_ttl`` None: the write did not happen)."""
        new = self._count.key(client_id, new_ttl)
        old = None if old_ttl is None else self._count.key(client_id, old_ttl)
        if old is None or old == new:
            if added:
                self._count.undo(new)
            return
        if not added:  # the stored ttl was not the one read: count the new bucket now
            try:
                self._count.add(new, 1)
            except DependencyError as exc:
                # Still counted in the old bucket: uncounted only after that bucket ends.
                logger.warning("client count move failed", extra={"reason": str(exc)})
                return
        self._count.undo(old)

    def find_by_dedupe(self, dedupe_key: str, now: int) -> ClientRecord | None:
        item = self._get(DEDUPE_PREFIX + dedupe_key, "read dedupe")
        if item is None:
            return None
        record = self.get(str(item["client_id"]), now)
        return record if record is not None and record.dedupe_key == dedupe_key else None

    def add_registration_token(self, record: ClientRecord, new_hash: str, now: int) -> ClientRecord | None:
        updated = with_registration_token(record, new_hash, now, now + self._idle)
        added = self._move_count(record.client_id, record.expires_at, updated.expires_at)
        try:
            with dependency_call("add registration token"):
                resp = self._ddb.update_item(
                    TableName=self._table,
                    Key=self._key(CLIENT_PREFIX + record.client_id),
                    UpdateExpression=(
                        "SET registration_access_token_hash = :h, registration_access_token_hashes = :hs, "
                        "last_used_at = :now, #ttl = :ttl"
                    ),
                    # Optimistic concurrency on the newest hash: two identical registrations
                    # racing must not drop each other's token from the list.
                    ConditionExpression=(
                        "attribute_exists(pk) AND #ttl > :now AND dedupe_key = :dk "
                        "AND registration_access_token_hash = :latest"
                    ),
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":h": {"S": new_hash},
                        ":hs": {"L": [{"S": h} for h in updated.registration_access_token_hashes]},
                        ":now": {"N": str(now)},
                        ":ttl": {"N": str(updated.expires_at)},
                        ":dk": {"S": str(record.dedupe_key)},
                        ":latest": {"S": str(record.registration_access_token_hash)},
                    },
                    ReturnValues="UPDATED_OLD",
                )
        except (ConditionFailed, DependencyError) as exc:
            self._settle_count(record.client_id, added, None, updated.expires_at)
            if isinstance(exc, DependencyError):
                raise
            return None
        self._settle_count(record.client_id, added, _old_ttl(resp, record), updated.expires_at)
        self._refresh_dedupe(record, updated.expires_at)
        return updated

    def _refresh_dedupe(self, record: ClientRecord, expires: int) -> None:
        if not record.dedupe_key:
            return
        # A failed condition: the mapping moved to another client (or is gone), nothing to refresh.
        self._update_if(
            DEDUPE_PREFIX + record.dedupe_key,
            "refresh dedupe",
            UpdateExpression="SET #ttl = :ttl",
            ConditionExpression="client_id = :id",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":ttl": {"N": str(expires)}, ":id": {"S": record.client_id}},
        )

    def _drop_dedupe(self, record: ClientRecord) -> None:
        if not record.dedupe_key:
            return
        try:
            with dependency_call("delete dedupe"):
                self._ddb.delete_item(
                    TableName=self._table,
                    Key=self._key(DEDUPE_PREFIX + record.dedupe_key),
                    ConditionExpression="client_id = :id",
                    ExpressionAttributeValues={":id": {"S": record.client_id}},
                )
        except ConditionFailed:
            pass  # already gone or taken over by another client

    def update(self, record: ClientRecord, *, expected_token_hash: str, now: int) -> ClientRecord | None:
        expires = now + self._idle
        added = self._move_count(record.client_id, record.expires_at, expires)
        sets = ["metadata = :m", "token_endpoint_auth_method = :a", "last_used_at = :now", "#ttl = :ttl"]
        removes = ["dedupe_key"]  # updated metadata no longer matches the dedupe key
        values: dict[str, Any] = {
            ":m": {"S": json.dumps(record.metadata, separators=(",", ":"))},
            ":a": {"S": record.token_endpoint_auth_method},
            ":now": {"N": str(now)},
            ":ttl": {"N": str(expires)},
            ":h": {"S": expected_token_hash},
        }
        if record.client_secret_hash:
            sets.append("client_secret_hash = :s")
            values[":s"] = {"S": record.client_secret_hash}
        else:
            removes.append("client_secret_hash")
        try:
            with dependency_call("update client"):
                resp = self._ddb.update_item(
                    TableName=self._table,
                    Key=self._key(CLIENT_PREFIX + record.client_id),
                    UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                    ConditionExpression="attribute_exists(pk) AND registration_access_token_hash = :h",
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_OLD",
                )
        except (ConditionFailed, DependencyError) as exc:
            self._settle_count(record.client_id, added, None, expires)
            if isinstance(exc, DependencyError):
                raise
            return None
        self._settle_count(record.client_id, added, _old_ttl(resp, record), expires)
        old = record_from_item(from_item(resp.get("Attributes", {}))) if resp.get("Attributes") else None
        if old is not None:
            self._drop_dedupe(old)
        return replace(record, dedupe_key=None, last_used_at=now, expires_at=expires)

    def delete(self, record: ClientRecord, *, expected_token_hash: str) -> bool:
        """RFC 7592 section 2.3: delete if ``expected_token_hash`` is still the newest token's hash."""
        return self._delete(
            record,
            ConditionExpression="registration_access_token_hash = :h",
            ExpressionAttributeValues={":h": {"S": expected_token_hash}},
        )

    def remove(self, record: ClientRecord) -> bool:
        """The operator's delete (admin CLI): no registration access token; False if already gone.

        Raises ``DependencyError`` when DynamoDB fails.
        """
        return self._delete(record, ConditionExpression="attribute_exists(pk)")

    def _delete(self, record: ClientRecord, **condition: Any) -> bool:
        try:
            with dependency_call("delete client"):
                resp = self._ddb.delete_item(
                    TableName=self._table,
                    Key=self._key(CLIENT_PREFIX + record.client_id),
                    ReturnValues="ALL_OLD",
                    **condition,
                )
        except ConditionFailed:
            return False
        self._count.undo(self._count.key(record.client_id, _old_ttl(resp, record)))
        self._drop_dedupe(record)
        return True

    def touch(self, record: ClientRecord, now: int) -> ClientRecord:
        if now - record.last_used_at < TOUCH_INTERVAL:
            return record
        expires = now + self._idle
        added = self._move_count(record.client_id, record.expires_at, expires)
        try:
            with dependency_call("touch client"):
                resp = self._ddb.update_item(
                    TableName=self._table,
                    Key=self._key(CLIENT_PREFIX + record.client_id),
                    UpdateExpression="SET last_used_at = :now, #ttl = :ttl",
                    # At most once a day, even when many requests race to refresh it.
                    ConditionExpression="attribute_exists(pk) AND last_used_at <= :stale",
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":now": {"N": str(now)},
                        ":ttl": {"N": str(expires)},
                        ":stale": {"N": str(now - TOUCH_INTERVAL)},
                    },
                    ReturnValues="UPDATED_OLD",
                )
        except (ConditionFailed, DependencyError) as exc:
            self._settle_count(record.client_id, added, None, expires)
            if isinstance(exc, DependencyError):
                raise
            return record  # someone else refreshed it (or it was deleted)
        self._settle_count(record.client_id, added, _old_ttl(resp, record), expires)
        self._refresh_dedupe(record, expires)
        return replace(record, last_used_at=now, expires_at=expires)


def _old_ttl(resp: Any, record: ClientRecord) -> int:
    """The ``ttl`` an update or delete replaced (``ReturnValues``), else the one read."""
    ttl = (resp.get("Attributes") or {}).get("ttl", {}).get("N")
    return record.expires_at if ttl is None else int(ttl)
