"""Client ids and the one question the MCP function asks the clients table: still registered?

Kept apart from the client store (registration, RFC 7591/7592) so the MCP function's grant
check imports only this: the registration models, redirect-URI rules and counters are not on
its cold path.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final, Protocol

from functions.core.platform.ddb import DynamoTable

CLIENT_PREFIX: Final = "CLIENT#"
# Registered client ids are 128 random bits, base64url (22 characters); nothing else is
# ever looked up as a registered client.
REGISTERED_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")  # \Z: no trailing newline


def looks_like_url(client_id: str) -> bool:
    """A URL-shaped client_id is a metadata document; DCR ids are opaque base64url."""
    return client_id[:8].lower().startswith(("https://", "http://"))


class RegisteredClients(Protocol):
    """Whether a registered (RFC 7591) client exists; every ``ClientLookup`` is one."""

    def get(self, client_id: str, now: int) -> object | None:
        """Something (not ``None``) while ``client_id`` is registered and not idle-expired at ``now``
        (epoch seconds); ``None`` otherwise. Raises ``DependencyError`` when the lookup fails."""
        ...


class DynamoRegisteredClients(DynamoTable):
    """``RegisteredClients`` on the clients table: one strongly consistent GetItem of ``CLIENT#<id>``."""

    def get(self, client_id: str, now: int) -> int | None:
        """The client's idle expiry (``ttl``, epoch seconds) when it is later than ``now``, else ``None``.

        ``ttl`` is checked on read: DynamoDB's TTL deletion is only cleanup and may lag by days.
        Raises ``DependencyError`` when the read fails.
        """
        item = self._get(CLIENT_PREFIX + client_id, "read client")
        ttl = item.get("ttl") if item is not None else None
        # Fail closed: an item without a numeric ttl counts as expired (never a 500, never an allow).
        expires_at = int(ttl) if isinstance(ttl, Decimal) and ttl.is_finite() else 0
        return expires_at if expires_at > now else None
