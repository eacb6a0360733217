"""The ``ClientResolver`` the authorization and token functions use.

* A URL-shaped ``client_id`` is a Client ID Metadata Document: fetched SSRF-safe by
  ``functions.core.clients.cimd_fetch``, checked and cached by ``functions.core.clients.cimd``;
  always a public client (``none``). Under the ``closed`` registration policy there is no
  resolver for them: such a ``client_id`` is an unknown client.
* Anything else is a registered (DCR) client in DynamoDB; its idle TTL is refreshed on use
  (at most once a day).

Build it once per container (module scope) so the CIMD cache survives warm invocations.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from functions.core.clients.cimd import CimdResolver
from functions.core.clients.cimd_fetch import DocumentFetcher
from functions.core.clients.ids import REGISTERED_CLIENT_ID, looks_like_url
from functions.core.clients.records import ClientRecord, ClientResolver
from functions.core.clients.store import ClientStore, DynamoClientStore
from functions.core.platform.errors import DependencyError
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings


class KitClientResolver:
    """``ClientResolver`` over the DynamoDB registry and, when the policy admits them, CIMD clients.

    ``touch``: whether a resolved registered client counts as used (its idle expiry,
    CLIENT_IDLE_DAYS, refreshed). True where the client itself is acting (/authorize, /token);
    False where someone only looks at it (the connected-agents page), so a person viewing their
    page does not keep an abandoned agent's registration alive.
    """

    def __init__(
        self,
        store: ClientStore,
        cimd: CimdResolver | None,
        clock: Callable[[], float] = time.time,
        *,
        touch: bool = True,
    ) -> None:
        self._store = store
        self._cimd = cimd
        self._clock = clock
        self._touch = touch

    def resolve(self, client_id: str) -> ClientRecord | None:
        """The client behind ``client_id``, or ``None`` when unknown, invalid or not admitted.

        Raises ``DependencyError`` when the registry cannot be read (503, never an allow), and
        ``CimdUnavailable`` when a client's metadata document cannot be fetched for now (503
        "retry", not the kit's own outage: no ``DependencyUnavailable``).
        """
        if looks_like_url(client_id):
            # Fail closed: with CIMD off, the URL is not fetched at all (no outbound request).
            return None if self._cimd is None else self._cimd.resolve(client_id)
        if not REGISTERED_CLIENT_ID.match(client_id):
            return None
        now = int(self._clock())
        record = self._store.get(client_id, now)  # DependencyError propagates: 503, never allow
        if record is None or not self._touch:
            return record
        try:
            return self._store.touch(record, now)
        except DependencyError as exc:
            # The client is valid; a missed TTL refresh only shortens its idle life by a day.
            logger.warning("client touch failed", extra={"reason": str(exc)})
            return record


def make_client_resolver(settings: FacadeSettings, *, touch: bool = True) -> ClientResolver:
    """The production resolver for ``settings``: DynamoDB registry, CIMD if the policy admits it.

    ``touch`` as in :class:`KitClientResolver` (False: looking a client up is not its use).
    """
    store = DynamoClientStore(settings.clients_table, idle_days=settings.client_idle_days)
    # RFC 9700 section 4.1.3: CIMD clients obey the operator's redirect URI policy, as DCR ones do.
    cimd = (
        CimdResolver(
            DocumentFetcher(allow_loopback=settings.insecure_cimd_loopback, ca_file=settings.cimd_ca_file),
            redirect_patterns=settings.redirect_patterns,
        )
        if settings.registration_policy.accepts_cimd
        else None
    )
    return KitClientResolver(store, cimd, touch=touch)
