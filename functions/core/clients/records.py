"""OAuth clients of the facade: *virtual* clients, never Cognito app clients.

Cognito caps app clients per pool and throttles their creation (NOTES.md), so a
registration is a DynamoDB record; every agent signs in through the kit's single gateway
app client. Two kinds of client reach the facade:

* registered (RFC 7591 DCR): ``client_id`` is an opaque id issued by ``/register``;
* metadata documents (CIMD): ``client_id`` is an https URL whose document is fetched.

Both resolve to a ``ClientRecord``. Storage layout: docs/storage-schema.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

# The longest client_id a request may name (a CIMD URL is at most 2,000 characters, a registered
# id 64); a longer one is refused before any lookup.
MAX_CLIENT_ID: Final = 2048

AuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]
ClientKind = Literal["registered", "cimd"]


@dataclass(frozen=True)
class ClientRecord:
    """One OAuth client as the facade knows it (registered or CIMD); times in epoch seconds."""

    client_id: str
    kind: ClientKind
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    client_name: str | None = None
    scope: str | None = None
    # The accepted metadata, exactly as returned to the client (RFC 7591 section 3.2.1).
    metadata: dict[str, Any] = field(default_factory=dict)
    client_secret_hash: str | None = None  # sha256 hex; never the secret itself
    registration_access_token_hash: str | None = None  # the newest registration access token
    # Shared public clients: the newest registration access tokens, newest first, bounded
    # (functions/core/clients/store.py MAX_REGISTRATION_TOKENS); each keeps RFC 7592 read access.
    registration_access_token_hashes: tuple[str, ...] = ()
    client_id_issued_at: int = 0
    last_used_at: int = 0
    # Registered clients only: SHA-256 of the canonical metadata (public clients) and the
    # idle expiry (the item's ``ttl``: last use + CLIENT_IDLE_DAYS).
    dedupe_key: str | None = None
    expires_at: int = 0

    @property
    def is_public(self) -> bool:
        """A public client (``token_endpoint_auth_method`` = ``none``, RFC 6749 section 2.1)."""
        return self.token_endpoint_auth_method == "none"

    @property
    def token_hashes(self) -> tuple[str, ...]:
        """Every registration access token hash that still grants RFC 7592 access."""
        if self.registration_access_token_hashes:
            return self.registration_access_token_hashes
        return () if self.registration_access_token_hash is None else (self.registration_access_token_hash,)

    @property
    def display_name(self) -> str:
        """What the consent page calls the client: its ``client_name``, else its ``client_id``."""
        return self.client_name or self.client_id


class ClientResolver(Protocol):
    """What the authorization and token functions need: find a client by ``client_id``.

    Registered ids are looked up in DynamoDB (and their idle TTL refreshed on use); https
    URLs are fetched as Client ID Metadata Documents. ``None`` means unknown or invalid.
    """

    def resolve(self, client_id: str) -> ClientRecord | None:
        """The client, or None when unknown or invalid; ``DependencyError`` when the registry is down (503);
        ``CimdUnavailable`` (``functions.core.clients.cimd_fetch``) when its metadata document cannot be
        fetched for now (503, retry; never "unknown client")."""
        ...
