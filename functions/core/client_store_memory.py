"""The in-memory twin of ``DynamoClientStore``: the same items and conditions, in a dict.

For unit tests; the item layout is functions/core/client_store.py's (docs/storage-schema.md,
clients table).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from functions.core.client_store import (
    CLIENT_PREFIX,
    COUNTER_KEY,
    DAY,
    DEDUPE_PREFIX,
    TOUCH_INTERVAL,
    ClientLimitReached,
    DedupeConflict,
    client_item,
    dedupe_item,
    record_from_item,
    with_registration_token,
)
from functions.core.clients import ClientRecord
from functions.core.errors import DependencyError


class InMemoryClientStore:
    """Test double: the same items and conditions as ``DynamoClientStore``, in a dict."""

    def __init__(self, *, idle_days: int = 30) -> None:
        self._idle = idle_days * DAY
        self.items: dict[str, dict[str, Any]] = {}
        self.recounts = 0

    @property
    def counter(self) -> int:
        return int(self.items.get(COUNTER_KEY, {}).get("count", 0))

    def create(self, record: ClientRecord, *, max_clients: int, now: int) -> ClientRecord:
        record = replace(record, last_used_at=now, expires_at=now + self._idle)
        pk = CLIENT_PREFIX + record.client_id
        for attempt in range(2):
            if pk in self.items:
                raise DependencyError("client id collision")
            if record.dedupe_key:
                existing = self.items.get(DEDUPE_PREFIX + record.dedupe_key)
                if existing is not None and existing["ttl"] >= now:
                    raise DedupeConflict(record.dedupe_key)
            if self.counter < max_clients:
                self.items[pk] = client_item(record)
                self.items[COUNTER_KEY] = {"pk": COUNTER_KEY, "kind": "counter", "count": self.counter + 1}
                if record.dedupe_key:
                    self.items[DEDUPE_PREFIX + record.dedupe_key] = dedupe_item(record)
                return record
            if attempt == 0 and self.recount(now) < max_clients:
                continue
            break
        raise ClientLimitReached(max_clients)

    def get(self, client_id: str, now: int) -> ClientRecord | None:
        item = self.items.get(CLIENT_PREFIX + client_id)
        if item is None:
            return None
        record = record_from_item({k: v for k, v in item.items() if v is not None})
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
        self.items[pk] = {
            **client_item(updated),
            "registration_access_token_hash": old["registration_access_token_hash"],
            "client_id_issued_at": old["client_id_issued_at"],
        }
        self._drop_dedupe(record_from_item({k: v for k, v in old.items() if v is not None}))
        return updated

    def delete(self, record: ClientRecord, *, expected_token_hash: str) -> bool:
        pk = CLIENT_PREFIX + record.client_id
        item = self.items.get(pk)
        if item is None or item.get("registration_access_token_hash") != expected_token_hash:
            return False
        del self.items[pk]
        self.items[COUNTER_KEY] = {"pk": COUNTER_KEY, "kind": "counter", "count": self.counter - 1}
        self._drop_dedupe(record)
        return True

    def touch(self, record: ClientRecord, now: int) -> ClientRecord:
        if now - record.last_used_at < TOUCH_INTERVAL:
            return record
        item = self.items.get(CLIENT_PREFIX + record.client_id)
        if item is None or item["last_used_at"] > now - TOUCH_INTERVAL:
            return record
        expires = now + self._idle
        item.update(last_used_at=now, ttl=expires)
        self._refresh_dedupe(record, expires)
        return replace(record, last_used_at=now, expires_at=expires)

    def recount(self, now: int) -> int:
        self.recounts += 1
        count = sum(1 for pk, item in self.items.items() if pk.startswith(CLIENT_PREFIX) and item["ttl"] > now)
        self.items[COUNTER_KEY] = {"pk": COUNTER_KEY, "kind": "counter", "count": count}
        return count
