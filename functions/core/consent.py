"""Remembered consent (``CONSENT#<sub>#<sha256(client_id)>`` in the grants table).

A later authorization of the same client whose scopes are covered skips the consent page.
Item layout: docs/storage-schema.md (``CONSENT#<sub>#<sha256(client_id)>``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from functions.core.ddb import DynamoTable, dependency_call, to_item

CONSENT_PREFIX: Final = "CONSENT#"


@dataclass(frozen=True)
class Consent:
    sub: str
    client_id: str
    scopes: frozenset[str]
    created_at: int
    last_used_at: int
    expires_at: int  # last use + GRANT_LIFETIME_DAYS; also the TTL

    def covers(self, scopes: Iterable[str], now: float) -> bool:
        return now < self.expires_at and set(scopes) <= self.scopes


def consent_key(sub: str, client_id: str) -> str:
    # CIMD client ids are long URLs: the key holds their hash (docs/storage-schema.md).
    return f"{CONSENT_PREFIX}{sub}#{hashlib.sha256(client_id.encode()).hexdigest()}"


class ConsentRepository(Protocol):
    def get(self, sub: str, client_id: str) -> Consent | None: ...

    def put(self, consent: Consent) -> None: ...

    def delete(self, sub: str, client_id: str) -> None: ...


class InMemoryConsentRepository:
    def __init__(self) -> None:
        self.items: dict[str, Consent] = {}

    def get(self, sub: str, client_id: str) -> Consent | None:
        return self.items.get(consent_key(sub, client_id))

    def put(self, consent: Consent) -> None:
        self.items[consent_key(consent.sub, consent.client_id)] = consent

    def delete(self, sub: str, client_id: str) -> None:
        self.items.pop(consent_key(sub, client_id), None)


class DynamoConsentRepository(DynamoTable):
    def get(self, sub: str, client_id: str) -> Consent | None:
        item = self._get(consent_key(sub, client_id), "read consent")
        if item is None:
            return None
        if item.get("sub") != sub or item.get("client_id") != client_id:
            return None  # a hash collision would be astronomically unlikely; never trust it anyway
        return Consent(
            sub=sub,
            client_id=client_id,
            scopes=frozenset(str(s) for s in item.get("scopes", [])),
            created_at=int(item["created_at"]),
            last_used_at=int(item["last_used_at"]),
            expires_at=int(item["ttl"]),
        )

    def put(self, consent: Consent) -> None:
        item = {
            "pk": consent_key(consent.sub, consent.client_id),
            "kind": "consent",
            "sub": consent.sub,
            "client_id": consent.client_id,
            "scopes": sorted(consent.scopes),
            "created_at": consent.created_at,
            "last_used_at": consent.last_used_at,
            "ttl": consent.expires_at,
        }
        with dependency_call("save consent"):
            self._ddb.put_item(TableName=self._table, Item=to_item(item))

    def delete(self, sub: str, client_id: str) -> None:
        with dependency_call("delete consent"):
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": consent_key(sub, client_id)}})
