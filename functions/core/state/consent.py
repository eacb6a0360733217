"""Remembered consent (``CONSENT#<sub>#<sha256(client_id)>`` in the grants table).

A later authorization of the same client skips the consent page only when the redirect
target proves the client (``redirect_proves_client``, RFC 8252 section 8.6), its scopes are
covered *and* its redirect URI is one the user already approved for that client (RFC 9700
section 4.1, OAuth 2.1 section 4.1.1: the user must see where the code goes). Item layout:
docs/storage-schema.md (``CONSENT#<sub>#<sha256(client_id)>``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from functions.core.clients.records import ClientRecord
from functions.core.clients.redirect_uris import RedirectMatcher
from functions.core.platform.ddb import DynamoTable, dependency_call, to_item

CONSENT_PREFIX: Final = "CONSENT#"
# Bound on the remembered redirect URIs of one (user, client); the oldest are forgotten first
# (forgetting one only brings the consent page back).
MAX_CONSENTED_REDIRECTS: Final = 20


@dataclass(frozen=True)
class Consent:
    sub: str
    client_id: str
    scopes: frozenset[str]
    created_at: int
    last_used_at: int
    expires_at: int  # last use + GRANT_LIFETIME_DAYS; also the TTL
    # Redirect URIs the user approved for this client, oldest first. Empty (an item written
    # before this attribute existed) approves none: the consent page is shown again.
    redirect_uris: tuple[str, ...] = ()

    def is_live(self, now: float) -> bool:
        return now < self.expires_at

    def covers(self, scopes: Iterable[str], now: float) -> bool:
        """Live, and every requested scope was approved."""
        return self.is_live(now) and set(scopes) <= self.scopes

    def approved_redirect(self, redirect_uri: str, matches: RedirectMatcher) -> bool:
        """RFC 9700 section 4.1 / OAuth 2.1 section 4.1.1: the user saw and approved this
        destination for the code. Scopes alone are not enough: a client whose redirect_uris
        changed (or a shared public client_id) must not receive codes silently elsewhere."""
        return bool(self.redirect_uris) and matches(redirect_uri, self.redirect_uris)

    def with_redirect(self, redirect_uri: str, matches: RedirectMatcher) -> tuple[str, ...]:
        """The approved redirect URIs after approving ``redirect_uri`` (bounded, newest last)."""
        if self.approved_redirect(redirect_uri, matches):
            return self.redirect_uris
        return (*self.redirect_uris, redirect_uri)[-MAX_CONSENTED_REDIRECTS:]


def redirect_proves_client(client: ClientRecord, redirect_uri: str) -> bool:
    """Whether the redirect target proves which client receives the code, so that a
    remembered consent may skip the consent page.

    RFC 8252 section 8.6: without proof of the client's identity, process the request as if
    nothing had been approved. Proof is an https redirect URI on a public DNS name of a
    confidential client (only its holder can redeem the code) or of a CIMD client at the
    origin (scheme, host, port: RFC 6454 section 4) that serves its metadata document.
    Loopback and private-use-scheme redirects of public clients prove nothing: any local
    program can listen there or claim the scheme, and identical public registrations share
    one client_id. Nor does an https redirect to a loopback name, an IP literal or a
    single-label name, whatever the client: anyone can register a confidential client, and
    a native app's secret is readable by any program on its machine (RFC 8252 section 8.5),
    so only a certificate for a DNS name ties the target to one party (RFC 6125).
    """
    target = _https_origin(redirect_uri)
    if target is None:
        return False
    if client.kind == "cimd":
        return target == _https_origin(client.client_id)
    return not client.is_public


def _https_origin(uri: str) -> tuple[str, int] | None:
    """``(host, port)`` of an https URI whose host is a public-looking DNS name, else None.

    Refused: other schemes, IP literals (v4, v6, and what resolvers read as v4 such as
    ``127.1``), ``localhost`` and ``*.localhost`` (RFC 6761 section 6.3), single-label names,
    and an unparsable port. Case and a trailing dot of the host are not significant.
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() != "https" or not parts.hostname:
        return None
    try:
        port = parts.port or 443
    except ValueError:
        return None
    host = parts.hostname.lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or labels[-1] == "localhost" or labels[-1].isdigit() or _is_ip_literal(host):
        return None
    return host, port


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def consent_key(sub: str, client_id: str) -> str:
    # CIMD client ids are long URLs: the key holds their hash (docs/storage-schema.md).
    return f"{CONSENT_PREFIX}{sub}#{hashlib.sha256(client_id.encode()).hexdigest()}"


def consent_item(consent: Consent) -> dict[str, Any]:
    """The ``CONSENT#`` item of ``consent`` (plain values, for ``ddb.to_item``)."""
    return {
        "pk": consent_key(consent.sub, consent.client_id),
        "kind": "consent",
        "sub": consent.sub,
        "client_id": consent.client_id,
        "scopes": sorted(consent.scopes),
        "redirect_uris": list(consent.redirect_uris),  # ordered, oldest first
        "created_at": consent.created_at,
        "last_used_at": consent.last_used_at,
        "ttl": consent.expires_at,
    }


def consent_from_item(item: Mapping[str, Any]) -> Consent:
    """The ``Consent`` of a deserialized ``CONSENT#`` item (or its projection in a grants-table index)."""
    return Consent(
        sub=str(item["sub"]),
        client_id=str(item["client_id"]),
        scopes=frozenset(str(s) for s in item.get("scopes", [])),
        created_at=int(item["created_at"]),
        last_used_at=int(item["last_used_at"]),
        expires_at=int(item["ttl"]),
        redirect_uris=tuple(str(u) for u in item.get("redirect_uris", [])),
    )


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
        return consent_from_item(item)

    def put(self, consent: Consent) -> None:
        with dependency_call("save consent"):
            self._ddb.put_item(TableName=self._table, Item=to_item(consent_item(consent)))

    def delete(self, sub: str, client_id: str) -> None:
        with dependency_call("delete consent"):
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": consent_key(sub, client_id)}})
