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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

from functions.core.clients.records import ClientRecord
from functions.core.clients.redirect_uris import RedirectMatcher
from functions.core.platform.ddb import DynamoTable, dependency_call
from functions.core.platform.items import ItemKind, stored

CONSENT_PREFIX: Final = "CONSENT#"
# Bound on the remembered redirect URIs of one (user, client); the oldest are forgotten first
# (forgetting one only brings the consent page back).
MAX_CONSENTED_REDIRECTS: Final = 20


@dataclass(frozen=True)
class Consent:
    """What a user approved for one client; times in epoch seconds.

    ``expires_at`` (last use + GRANT_LIFETIME_DAYS) is stored only as the item's ``ttl``.
    """

    sub: str = stored()
    client_id: str = stored()
    scopes: frozenset[str] = stored(absent=frozenset())
    created_at: int = stored()
    last_used_at: int = stored()
    expires_at: int = stored(name="ttl")
    # Redirect URIs the user approved for this client, oldest first. Empty (an item written
    # before this attribute existed) approves none: the consent page is shown again.
    redirect_uris: tuple[str, ...] = stored(())

    def is_live(self, now: float) -> bool:
        """Not expired at ``now`` (epoch seconds)."""
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
    """The ``pk`` of the consent of ``sub`` for ``client_id``."""
    # CIMD client ids are long URLs: the key holds their hash (docs/storage-schema.md).
    return f"{CONSENT_PREFIX}{sub}#{hashlib.sha256(client_id.encode()).hexdigest()}"


CONSENTS: Final = ItemKind(Consent, kind="consent", key=lambda c: consent_key(c.sub, c.client_id))


class ConsentRepository(Protocol):
    """Remembered consent per (user ``sub``, ``client_id``); storage failures are ``DependencyError``."""

    def get(self, sub: str, client_id: str) -> Consent | None:
        """The remembered consent, expired or not (callers check ``is_live``), or None."""
        ...

    def put(self, consent: Consent) -> None:
        """Store ``consent``, replacing the previous one (unconditional)."""
        ...

    def delete(self, sub: str, client_id: str) -> None:
        """Forget the consent (idempotent)."""
        ...


class DynamoConsentRepository(DynamoTable):
    """``ConsentRepository`` on DynamoDB (``CONSENT#`` items, docs/storage-schema.md)."""

    def get(self, sub: str, client_id: str) -> Consent | None:
        """Strongly consistent read; an item whose ``sub``/``client_id`` differ is None."""
        item = self._get(consent_key(sub, client_id), "read consent")
        if item is None:
            return None
        if item.get("sub") != sub or item.get("client_id") != client_id:
            return None  # a hash collision would be astronomically unlikely; never trust it anyway
        return CONSENTS.from_item(item)

    def put(self, consent: Consent) -> None:
        """Unconditional ``PutItem`` of the ``CONSENT#`` item."""
        with dependency_call("save consent"):
            self._ddb.put_item(TableName=self._table, Item=CONSENTS.to_item(consent))

    def delete(self, sub: str, client_id: str) -> None:
        """``DeleteItem`` of the ``CONSENT#`` item (idempotent)."""
        with dependency_call("delete consent"):
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": consent_key(sub, client_id)}})
