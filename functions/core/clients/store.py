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

TTL is cleanup, not enforcement: every read checks ``ttl`` itself. The ``CLIENT#`` and
``DEDUPE#`` items are declared once, by ``ClientItem`` and ``DedupeItem``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final, Protocol, cast

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.metadata import display_text
from functions.core.clients.records import AuthMethod, ClientRecord
from functions.core.clients.store_count import DynamoClientCounter
from functions.core.platform.ddb import ConditionFailed, DynamoTable, dependency_call, from_item, transact
from functions.core.platform.errors import DependencyError
from functions.core.platform.items import ItemKind, stored
from functions.core.platform.observability import logger
from functions.core.platform.settings import DAY_SECONDS

DEDUPE_PREFIX: Final = "DEDUPE#"
DAY: Final = DAY_SECONDS  # the unit of CLIENT_IDLE_DAYS
TOUCH_INTERVAL: Final = DAY  # refresh last_used_at / ttl at most once a day
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
        """The live client (strongly consistent), None if unknown or idle-expired at ``now``; ``DependencyError``."""
        ...


class ClientStore(ClientLookup, Protocol):
    """Registered clients for the registration function (RFC 7591/7592); ``now`` in epoch seconds.

    Reads are strongly consistent; every failure to reach storage is ``DependencyError`` (503).
    """

    def create(self, record: ClientRecord, *, max_clients: int, now: int) -> ClientRecord:
        """Store a new client (+ DEDUPE item), live from ``now``; ``DedupeConflict``, ``ClientLimitReached``."""
        ...

    def find_by_dedupe(self, dedupe_key: str, now: int) -> ClientRecord | None:
        """The live public client whose canonical metadata hashes (SHA-256 hex) to ``dedupe_key``, or None."""
        ...

    def add_registration_token(self, record: ClientRecord, new_hash: str, now: int) -> ClientRecord | None:
        """Add a registration access token hash to a shared public client (and count as use).

        The newest ``MAX_REGISTRATION_TOKENS`` hashes are kept. None if the client changed
        since ``record`` was read (another token was added concurrently, or it expired): re-read.
        """
        ...

    def update(self, record: ClientRecord, *, expected_token_hash: str, now: int) -> ClientRecord | None:
        """RFC 7592 section 2.2: replace metadata (no longer de-duplicated); None if gone or the token changed."""
        ...

    def delete(self, record: ClientRecord, *, expected_token_hash: str) -> bool:
        """RFC 7592 section 2.3 delete; False if the client is gone or the registration token changed."""
        ...

    def touch(self, record: ClientRecord, now: int) -> ClientRecord:
        """Refresh ``last_used_at`` and ``ttl`` (idle expiry) if a day old; the record as refreshed, else as given."""
        ...


@dataclass(frozen=True)
class ClientItem:
    """The stored part of a registered client's ``ClientRecord`` (``CLIENT#``, docs/storage-schema.md).

    Times are epoch seconds; ``expires_at`` is stored only as ``ttl`` (last use +
    CLIENT_IDLE_DAYS). The rest of the record (redirect URIs, grant types, name, scope) is
    read from ``metadata``, the accepted RFC 7591 metadata stored as JSON.
    """

    client_id: str = stored()
    metadata: dict[str, Any] = stored(json=True)
    token_endpoint_auth_method: str = stored()
    client_secret_hash: str | None = stored(None)
    registration_access_token_hash: str | None = stored(None)
    registration_access_token_hashes: tuple[str, ...] = stored((), omit_empty=True)
    dedupe_key: str | None = stored(None)
    client_id_issued_at: int = stored(0)
    last_used_at: int = stored(0)
    expires_at: int = stored(0, name="ttl")

    @classmethod
    def of(cls, record: ClientRecord) -> ClientItem:
        """The stored fields of ``record``."""
        return cls(**{f.name: getattr(record, f.name) for f in fields(cls)})

    def record(self) -> ClientRecord:
        """The ``ClientRecord`` of this item (a registered client)."""
        metadata = self.metadata
        return ClientRecord(
            kind="registered",
            redirect_uris=tuple(metadata.get("redirect_uris", ())),
            grant_types=tuple(metadata.get("grant_types", ("authorization_code",))),
            # Records written before invisible characters were stripped at registration are
            # cleaned on read too, so the consent page never shows them (UTR 36).
            client_name=display_text(str(metadata["client_name"])) or None if metadata.get("client_name") else None,
            scope=metadata.get("scope"),
            **{**asdict(self), "token_endpoint_auth_method": cast(AuthMethod, self.token_endpoint_auth_method)},
        )


@dataclass(frozen=True)
class DedupeItem:
    """``DEDUPE#<dedupe_key>``: identical public metadata -> its one client; ``ttl`` follows the client's."""

    dedupe_key: str = stored(key_only=True)
    client_id: str = stored()
    expires_at: int = stored(name="ttl")


CLIENTS: Final = ItemKind(ClientItem, kind="client", key=lambda c: CLIENT_PREFIX + c.client_id)
DEDUPES: Final = ItemKind(DedupeItem, kind="dedupe", key=lambda d: DEDUPE_PREFIX + d.dedupe_key)


def client_item(record: ClientRecord) -> dict[str, Any]:
    """The ``CLIENT#`` item of ``record`` as ``AttributeValue``s."""
    return CLIENTS.to_item(ClientItem.of(record))


def record_from_item(item: dict[str, Any]) -> ClientRecord:
    """The ``ClientRecord`` of a deserialized ``CLIENT#`` item (``ddb.from_item``)."""
    return CLIENTS.from_item(item).record()


def dedupe_item(record: ClientRecord) -> dict[str, Any]:
    """The ``DEDUPE#`` item of a public ``record`` as ``AttributeValue``s."""
    return DEDUPES.to_item(DedupeItem(str(record.dedupe_key), record.client_id, record.expires_at))


def with_registration_token(record: ClientRecord, new_hash: str, now: int, expires: int) -> ClientRecord:
    """The record after adding ``new_hash`` (newest first, at most MAX_REGISTRATION_TOKENS) as a use."""
    return replace(
        record,
        registration_access_token_hash=new_hash,
        registration_access_token_hashes=(new_hash, *record.token_hashes)[:MAX_REGISTRATION_TOKENS],
        last_used_at=now,
        expires_at=expires,
    )


class DynamoClientReader(DynamoTable):
    """``ClientLookup`` on the clients table: one strongly consistent GetItem per call."""

    def get(self, client_id: str, now: int) -> ClientRecord | None:
        """The client unless unknown or idle-expired at ``now`` (``ttl`` checked on read)."""
        item = self._get(CLIENT_PREFIX + client_id, "read client")
        if item is None:
            return None
        record = record_from_item(item)
        return record if record.expires_at > now else None


class DynamoClientStore(DynamoClientReader):
    """``ClientStore`` on the clients table (docs/storage-schema.md); ``idle_days``: CLIENT_IDLE_DAYS."""

    def __init__(self, table: str, *, idle_days: int, client: Any = None) -> None:
        super().__init__(table, client)
        self._idle = idle_days * DAY
        self._count = DynamoClientCounter(table, self._idle, lambda: self._ddb)

    def _key(self, pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}}

    def create(self, record: ClientRecord, *, max_clients: int, now: int) -> ClientRecord:
        """Count, check the cap, then one transaction of the client and its DEDUPE item."""
        record = replace(record, last_used_at=now, expires_at=now + self._idle)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": client_item(record),
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
                        "Item": dedupe_item(record),
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
            try:
                transact(self._ddb, items, "register client", [(1, DedupeConflict)])
            except DedupeConflict:
                raise
            except ConditionFailed as exc:
                raise DependencyError("client id collision") from exc  # 128 random bits: practically impossible
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
        """The DEDUPE item's client, if it is live and still holds this key."""
        item = self._get(DEDUPE_PREFIX + dedupe_key, "read dedupe")
        if item is None:
            return None
        record = self.get(str(item["client_id"]), now)
        return record if record is not None and record.dedupe_key == dedupe_key else None

    def add_registration_token(self, record: ClientRecord, new_hash: str, now: int) -> ClientRecord | None:
        """Conditional on the newest hash read (optimistic concurrency); moves the client's count."""
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
        """Conditional on the registration token hash; drops the DEDUPE mapping (metadata changed)."""
        expires = now + self._idle
        added = self._move_count(record.client_id, record.expires_at, expires)
        sets = ["metadata = :m", "token_endpoint_auth_method = :a", "last_used_at = :now", "#ttl = :ttl"]
        removes = ["dedupe_key"]  # updated metadata no longer matches the dedupe key
        values: dict[str, Any] = {
            ":m": {"S": CLIENTS.values(ClientItem.of(record), ("metadata",))["metadata"]},
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
        # The DEDUPE mapping goes first: left behind a deleted client, it would refuse every
        # identical registration (503) until its ttl; dropped early, the worst case is a new
        # client for identical metadata while this delete is retried.
        self._drop_dedupe(record)
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
        return True

    def touch(self, record: ClientRecord, now: int) -> ClientRecord:
        """At most once a day (conditional on ``last_used_at``), as ``ClientStore.touch``."""
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
