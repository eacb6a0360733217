"""What each ``mcp-kit-admin`` command does, on the kit's own repositories (no logic of its own).

Results are plain JSON-able dicts (the ``--json`` output); ``admin.cli`` renders them.
Reads of grants go through the grants table's indexes (eventually consistent: a grant made a
second ago may be missing); every revocation re-reads the grant strongly consistently. A
command that needs an index the stack did not create (``kit:grantIndexes``) raises
``IndexNotDeployed`` before it changes anything (exit 5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from admin.cli import NotFound, Refused
from functions.core.clients.ids import REGISTERED_CLIENT_ID, looks_like_url
from functions.core.clients.records import ClientRecord
from functions.core.clients.store import DynamoClientStore, record_from_item
from functions.core.platform.audit import audit
from functions.core.platform.ddb import dependency_call, from_item
from functions.core.platform.errors import OAuthError
from functions.core.platform.settings import ManagementSettings, RegistrationSettings
from functions.core.platform.topology import GRANTS_BY_CLIENT, GRANTS_BY_USER
from functions.core.state.grants import DynamoGrantRepository, Grant
from functions.core.state.management import ManagementPlane, management_plane
from functions.core.state.ratelimit import DynamoRateLimiter
from functions.registration.service import RegistrationService

ADMIN_REASON: Final = "revoked_by_admin"


class ClientRegistry(DynamoClientStore):
    """The clients table as the operator sees it: the store, plus a listing."""

    def scan_clients(self, now: int) -> list[ClientRecord]:
        """Every live registered client, by paging a Scan: for the operator's listing only, never a request.

        ``now`` in epoch seconds (idle-expired records are left out). Raises ``DependencyError``.
        """
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "kind = :client",
            "ExpressionAttributeValues": {":client": {"S": "client"}},
        }
        records: list[ClientRecord] = []
        while True:
            with dependency_call("list clients"):
                page = self._ddb.scan(**request)
            records += [
                r for r in (record_from_item(from_item(i)) for i in page.get("Items", [])) if r.expires_at > now
            ]
            if "LastEvaluatedKey" not in page:
                return sorted(records, key=lambda r: r.client_id_issued_at)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class Kit:
    """One kit deployment, as the CLI operates it."""

    plane: ManagementPlane
    grants: DynamoGrantRepository
    clients: ClientRegistry
    registration: RegistrationService

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Kit:
        """Wire the kit's repositories for the functions' environment ``env`` (``SettingsError``)."""
        settings = ManagementSettings.from_env(env)
        registration = RegistrationSettings.from_env(env)
        clients = ClientRegistry(registration.clients_table, idle_days=registration.client_idle_days)
        return cls(
            plane=management_plane(settings),
            grants=DynamoGrantRepository(settings.grants_table),
            clients=clients,
            registration=RegistrationService(registration, clients, DynamoRateLimiter(registration.artefacts_table)),
        )

    # ------------------------------------------------------------------ grants
    def list_grants(self, *, user: str | None, client_id: str | None) -> list[dict[str, Any]]:
        """Active grants of a user (username, email or sub) or of a client, newest first."""
        admin = self.plane.admin
        if user is not None:
            grants = admin.active_grants_of_user(self._sub(user))
        else:
            grants = admin.active_grants_of_client(str(client_id))
        names: dict[str, str] = {}
        return [self._grant_row(g, names) for g in grants]

    def revoke(self, *, user: str | None, client_id: str | None, grant_id: str | None) -> dict[str, Any]:
        """Revoke one grant, every grant of a user, or every grant of a client (and their consents)."""
        admin = self.plane.admin
        if grant_id is not None:
            grant = self.grants.get(grant_id)
            if grant is None:
                raise NotFound(f"no grant {grant_id!r}")
            ending = [] if grant.status == "revoked" else [grant_id]
            admin.revoke_grant(grant, actor="admin", reason=ADMIN_REASON)
            return {"revoked": ending, "consents_forgotten": None}  # the one consent, if it was there
        if user is not None:
            done = admin.revoke_user(self._sub(user), actor="admin", reason=ADMIN_REASON)
        else:
            done = admin.revoke_client(str(client_id), actor="admin", reason=ADMIN_REASON)
        return {"revoked": list(done.grant_ids), "consents_forgotten": done.consents_forgotten}

    # ------------------------------------------------------------------ users
    def disable_user(self, name: str) -> dict[str, Any]:
        """``AdminDisableUser``, then revoke every grant of the user (re-enabling restores none)."""
        user = self._user(name)
        if user is None:
            raise NotFound(f"no user {name!r}")
        self.plane.admin.require(GRANTS_BY_USER)  # before disabling: all of it, or nothing
        if not self.plane.directory.disable(user.username):
            raise NotFound(f"no user {name!r}")
        done = self.plane.admin.revoke_user(user.sub, actor="admin", reason="user_disabled")
        return {"username": user.username, "sub": user.sub, "revoked": list(done.grant_ids)}

    # ------------------------------------------------------------------ clients
    def list_clients(self) -> list[dict[str, Any]]:
        """Every live registered client (a Scan of the clients table: an operator's command only)."""
        now = int(time.time())
        return [_client_row(r) for r in self.clients.scan_clients(now)]

    def show_client(self, client_id: str) -> dict[str, Any]:
        """One registered client's metadata and bookkeeping (never a secret or a hash)."""
        return _client_row(self._client(client_id), full=True)

    def delete_client(self, client_id: str) -> dict[str, Any]:
        """Revoke every grant given to a registered client and forget its consents, then delete it.

        In that order so that a failure (``DependencyError``, exit 4) is safe to retry: the retry
        still finds the client, revokes what is left and deletes it. Deleted first, the retry
        found no client (exit 3) and left its grants active. ``NotFound`` for an unknown client.
        """
        record = self._client(client_id)
        self.plane.admin.require(GRANTS_BY_CLIENT)  # before changing anything: all of it, or nothing
        done = self.plane.admin.revoke_client(client_id, actor="admin", reason="client_deleted")
        self.clients.remove(record)
        audit("client.deleted", actor="admin", client_id=client_id, client_name=record.client_name)
        return {"client_id": client_id, "revoked": list(done.grant_ids)}

    def register_client(
        self, *, name: str, redirect_uris: Sequence[str], scope: str | None, auth_method: str
    ) -> dict[str, Any]:
        """Register a confidential client by hand, whatever ``REGISTRATION_POLICY`` says.

        Same metadata rules as RFC 7591 registration (RFC 7591 section 2); the answer carries
        the client secret, which is stored only as its SHA-256. ``Refused`` on invalid metadata.
        """
        metadata: dict[str, Any] = {
            "client_name": name,
            "redirect_uris": list(redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": auth_method,
        }
        if scope:
            metadata["scope"] = scope
        try:
            answer = self.registration.register_by_operator(metadata)
        except OAuthError as exc:
            raise Refused(f"{exc.error}: {exc.description}") from exc
        issued = json.loads(answer.body)  # the registration wrote client.registered, actor=admin
        return {k: issued[k] for k in ("client_id", "client_secret", "client_name", "redirect_uris") if k in issued}

    # ------------------------------------------------------------------ helpers
    def _user(self, name: str) -> Any:
        try:
            return self.plane.directory.find(name)
        except LookupError as exc:
            raise Refused(str(exc)) from exc

    def _sub(self, name: str) -> str:
        user = self._user(name)
        if user is not None:
            return str(user.sub)
        # A deleted user is no longer in the pool: a sub with grants still names them.
        if self.plane.admin.active_grants_of_user(name):
            return name
        raise NotFound(f"no user {name!r}")

    def _client(self, client_id: str) -> ClientRecord:
        record = self.clients.get(client_id, int(time.time())) if REGISTERED_CLIENT_ID.match(client_id) else None
        if record is None:
            raise NotFound(f"no registered client {client_id!r}")
        return record

    def _grant_row(self, grant: Grant, names: dict[str, str]) -> dict[str, Any]:
        if grant.client_name:
            # The name the grant recorded at approval; self-declared, so marked unverified.
            agent = f"{grant.client_name} (unverified)"
        else:
            # Grants of schema version 2 carry no name: the client's record, as before.
            if grant.client_id not in names:
                names[grant.client_id] = self._agent_name(grant.client_id)
            agent = names[grant.client_id]
        return {
            "grant_id": grant.grant_id,
            "agent": agent,
            "client_id": grant.client_id,
            "user": grant.email or grant.username or grant.sub,
            "sub": grant.sub,
            "scopes": sorted(grant.scopes),
            "granted": grant.created_at,
            "last_used": grant.last_used_at,
            "expires": grant.expires_at,
        }

    def _agent_name(self, client_id: str) -> str:
        # Self-declared names prove nothing (the consent page says so too): marked unverified.
        if looks_like_url(client_id):
            return f"{urlsplit(client_id).hostname} (metadata document)"
        record = self.clients.get(client_id, int(time.time())) if REGISTERED_CLIENT_ID.match(client_id) else None
        if record is None:
            return "(client deleted)"
        return f"{record.display_name} (unverified)"


def _client_row(record: ClientRecord, *, full: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "client_id": record.client_id,
        "client_name": record.client_name,
        "auth_method": record.token_endpoint_auth_method,
        "redirect_uris": list(record.redirect_uris),
        "issued": record.client_id_issued_at,
        "last_used": record.last_used_at,
    }
    if full:
        row |= {
            "grant_types": list(record.grant_types),
            "scope": record.scope,
            "shared_public_registration": record.dedupe_key is not None,
            "expires_if_idle": record.expires_at,
        }
    return row
