"""A grant authorizes only while its client is still registered (RFC 7592 section 2.3).

RFC 7592 section 2.3: when a client is deleted, "the authorization server SHOULD
immediately invalidate all instances of the client's [...] tokens". A Cognito access token
keeps verifying after that, so the MCP function's grant check (functions/core/state/grants.py)
also asks for the grant's client:

* a registered (DCR) client id: its ``CLIENT#`` item must exist and not be past its idle
  expiry (``ttl`` is checked on read, DynamoDB's TTL deletion is only cleanup). Deleted
  (RFC 7592 DELETE) or idle-expired clients make every grant of theirs inactive;
* a Client ID Metadata Document (an https URL): there is no registration to delete; the
  grant alone governs it (revocation by the person, the operator or the directory);
* any other client id cannot come from /authorize (the client resolver knows only the two
  kinds above), only from an operator writing a grant directly (``make token``): the grant
  alone governs it too.

``ClientBoundGrants`` sits under ``CachedGrants``, so the client lookup is cached together
with the grant for the same GRANT_CACHE_SECONDS: a deleted client's tokens stop working
within that bound, and a cached answer costs no read. The client id is only known from the
grant item (the access token carries the gateway client's id), so a miss is two reads in
sequence. A failed lookup raises ``DependencyError`` (503), never an allow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from functions.core.clients.ids import REGISTERED_CLIENT_ID, RegisteredClients, looks_like_url
from functions.core.state.grants import Grant, GrantReader

CLIENT_GONE: Final = "client_unregistered"


class ClientBoundGrants:
    """A ``GrantReader`` whose active grants all belong to a client that still exists."""

    def __init__(self, grants: GrantReader, clients: RegisteredClients, clock: Callable[[], float] = time.time) -> None:
        self._grants = grants
        self._clients = clients
        self._clock = clock

    def get(self, grant_id: str) -> Grant | None:
        """The grant; reported revoked (reason ``client_unregistered``) when its registered client is gone.

        Raises ``DependencyError`` when either lookup fails.
        """
        grant = self._grants.get(grant_id)
        now = int(self._clock())
        if grant is None or not grant.is_active(now) or not needs_registration(grant.client_id):
            return grant
        if self._clients.get(grant.client_id, now) is not None:
            return grant
        return replace(grant, status="revoked", revoked_at=now, revoked_reason=CLIENT_GONE)


def needs_registration(client_id: str) -> bool:
    """Whether a grant for ``client_id`` lives only as long as a clients-table record."""
    return not looks_like_url(client_id) and REGISTERED_CLIENT_ID.match(client_id) is not None
