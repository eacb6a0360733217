"""The in-memory twin of ``DynamoClientStore``: the same items and conditions, in a dict.

For tests; the items are functions/core/clients/store.py's declarations (``CLIENTS``,
``DEDUPES``) as plain values. tests/unit/test_client_store_parity.py runs the same scenarios
on both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from functions.core.clients.ids import CLIENT_PREFIX
from functions.core.clients.records import ClientRecord
from functions.core.clients.store import (
    CLIENTS,
    DAY,
    DEDUPE_PREFIX,
    DEDUPES,
    TOUCH_INTERVAL,
    ClientItem,
    ClientLimitReached,
    DedupeConflict,
    DedupeItem,
    record_from_item,
    with_registration_token,
)
from functions.core.clients.store_count import bucket_seconds, counter_key, live_counter_keys
from functions.core.platform.errors import DependencyError


def client_item(record: ClientRecord) -> dict[str, Any]:
    """The ``CLIENT#`` item of ``record`` as plain values."""
    return CLIENTS.plain(ClientItem.of(record))


def dedupe_item(record: ClientRecord) -> dict[str, Any]:
    """The ``DEDUPE#`` item of ``record`` as plain values."""
    return DEDUPES.plain(DedupeItem(str(record.dedupe_key), record.client_id, record.expires_at))


class InMemoryClientStore:
    """Test double: the same items and conditions as ``DynamoClientStore``, in a dict."""

    def __init__(self, *, idle_days: int = 30) -> None:
        self._idle = idle_days * DAY
        self.items: dict[str, dict[str, Any]] = {}

    def counted(self, now: int) -> int:
        """Clients counted live at ``now`` (the sum of the live counter items)."""
        return sum(int(self.items.get(k, {}).get("count", 0)) for k in live_counter_keys(int(now), self._idle))

    def _add(self, client_id: str, expires_at: int, delta: int) -> None:
        key = counter_key(client_id, expires_at, bucket_seconds(self._idle))
        item = self.items.setdefault(key, {"pk": key, "kind": "counter", "count": 0})
        item["count"] += delta

    def _move(self, client_id: str, old_ttl: int, new_ttl: int) -> None:
        self._add(client_id, new_ttl, 1)
        self._add(client_id, old_ttl, -1)

    def create(self, record: ClientRecord, *, max_clients: int, now: int) -> ClientRecord:
        record = replace(record, last_used_at=now, expires_at=now + self._idle)
        pk = CLIENT_PREFIX + record.client_id
        if pk in self.items:
            raise DependencyError("client id collision")
        if record.dedupe_key:
            existing = self.items.get(DEDUPE_PREFIX + record.dedupe_key)
            if existing is not None and existing["ttl"] >= now:
                raise DedupeConflict(record.dedupe_key)
        if self.counted(now) >= max_clients:
            raise ClientLimitReached(max_clients)
        self.items[pk] = client_item(record)
        self._add(record.client_id, record.expires_at, 1)
        if record.dedupe_key:
            self.items[DEDUPE_PREFIX + record.dedupe_key] = dedupe_item(record)
        return record

    def get(self, client_id: str, now: int) -> ClientRecord | None:
        item = self.items.get(CLIENT_PREFIX + client_id)
        if item is None:
            return None
        record = record_from_item(item)
        return record if record.expires_at > now else None

    def find_by_dedupe(self, dedupe_key: str, now: int) -> ClientRecord | None:
        item = self.items.get(DEDUPE_PREFIX + dedupe_key)
        if item is None:
            return None
        record = self.get(item["client_id"], now)
        return record if record is not None and record.dedupe_key == dedupe_key else None

    def add_registration_token(self, record: ClientRecord, new_hash: str, now: int) -> ClientRecord | None:
        item = self.items.get(CLIENT_PREFIX + record.client_id)
        if (
            item is None
            or item["ttl"] <= now
            or item.get("dedupe_key") != record.dedupe_key
            or item.get("registration_access_token_hash") != record.registration_access_token_hash
        ):
            return None
        updated = with_registration_token(record, new_hash, now, now + self._idle)
        self._move(record.client_id, item["ttl"], updated.expires_at)
        item.update(client_item(updated))
        self._refresh_dedupe(record, updated.expires_at)
        return updated

    def _refresh_dedupe(self, record: ClientRecord, expires: int) -> None:
        dedupe = self.items.get(DEDUPE_PREFIX + str(record.dedupe_key))
        if dedupe is not None and dedupe["client_id"] == record.client_id:
            dedupe["ttl"] = expires

    def _drop_dedupe(self, record: ClientRecord) -> None:
        pk = DEDUPE_PREFIX + str(record.dedupe_key)
        if record.dedupe_key and self.items.get(pk, {}).get("client_id") == record.client_id:
            del self.items[pk]

    def update(self, record: ClientRecord, *, expected_token_hash: str, now: int) -> ClientRecord | None:
        pk = CLIENT_PREFIX + record.client_id
        old = self.items.get(pk)
        if old is None or old.get("registration_access_token_hash") != expected_token_hash:
            return None
        updated = replace(record, dedupe_key=None, last_used_at=now, expires_at=now + self._idle)
        self._move(record.client_id, old["ttl"], updated.expires_at)
        self.items[pk] = {
            **client_item(updated),
            "registration_access_token_hash": old["registration_access_token_hash"],
            "client_id_issued_at": old["client_id_issued_at"],
        }
        self._drop_dedupe(record_from_item(old))
        return updated

    def delete(self, record: ClientRecord, *, expected_token_hash: str) -> bool:
        self._drop_dedupe(record)  # first, as DynamoClientStore._delete
        pk = CLIENT_PREFIX + record.client_id
        item = self.items.get(pk)
        if item is None or item.get("registration_access_token_hash") != expected_token_hash:
            return False
        del self.items[pk]
        self._add(record.client_id, item["ttl"], -1)
        return True

    def touch(self, record: ClientRecord, now: int) -> ClientRecord:
        if now - record.last_used_at < TOUCH_INTERVAL:
            return record
        item = self.items.get(CLIENT_PREFIX + record.client_id)
        if item is None or item["last_used_at"] > now - TOUCH_INTERVAL:
            return record
        expires = now + self._idle
        self._move(record.client_id, item["ttl"], expires)
        item.update(last_used_at=now, ttl=expires)
        self._refresh_dedupe(record, expires)
        return replace(record, last_used_at=now, expires_at=expires)
