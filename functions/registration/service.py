"""Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).

Framework-neutral: every operation takes plain values and returns an ``Answer``, or
raises ``RegistrationError`` (``InvalidRegistrationToken`` among them) or
``DependencyError``, which the function's router turns into the spec's error shape.
Clients are *virtual*: a DynamoDB record, never a Cognito app client (README, docs/storage-schema.md).

Secrets handed out here (client secrets, registration access tokens) are 256 random bits
and are stored only as SHA-256 hex digests.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from functions.core.clients.ids import REGISTERED_CLIENT_ID
from functions.core.clients.metadata import ClientMetadata, validate_client_metadata
from functions.core.clients.records import ClientRecord
from functions.core.clients.store import ClientLimitReached, ClientStore, DedupeConflict
from functions.core.platform.audit import Actor, audit
from functions.core.platform.crypto import new_secret, same_hash, sha256_hex
from functions.core.platform.errors import JSON_HEADERS, DependencyError, RegistrationError
from functions.core.platform.http import Answer
from functions.core.platform.metrics import count
from functions.core.platform.routes import REGISTRATION_PATH
from functions.core.platform.settings import RegistrationPolicy, RegistrationSettings
from functions.core.state.ratelimit import RateLimiter

MAX_BODY_BYTES: Final = 16 * 1024
RATE_BUCKET: Final = "register"
# Identical public registrations do not create a client, but each is still a conditional
# write on the shared client that evicts its oldest registration access token: they count in
# their own per-IP bucket, this many times REGISTRATION_RATE_PER_MINUTE, so many users of one
# hosted agent behind one egress IP fit while a flood cannot churn the kept tokens.
DEDUPE_RATE_BUCKET: Final = "register-dedupe"
DEDUPE_RATE_FACTOR: Final = 10
# Reads of the dedupe mapping before giving up (503, safe to retry): each lost race (a
# concurrent identical registration) costs one more read.
DEDUPE_ATTEMPTS: Final = 5
# RFC 6749 section 5.1 / RFC 7591 section 3.2.1: answers carrying secrets are not cached.
SECRET_HEADERS: Final = {**JSON_HEADERS, "Pragma": "no-cache"}
_BEARER: Final = re.compile(r"^\s*[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)\s*$")
# RFC 7592 section 2.2: the update request MUST NOT include these server-issued fields.
FORBIDDEN_ON_UPDATE: Final = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


SHARED_READ_ONLY: Final = (
    "a public client registration is shared by identical registrations and cannot be changed "
    "or deleted; register new metadata instead"
)


class InvalidRegistrationToken(RegistrationError):
    """RFC 7592 section 2: missing/wrong registration access token, or unknown client.

    Always the same answer whatever the client (section 2.1: no existence oracle): 401
    ``invalid_token`` with ``WWW-Authenticate: Bearer error="invalid_token"``, or a bare
    ``WWW-Authenticate: Bearer`` when the request presented no bearer token at all
    (``presented`` false: RFC 6750 section 3.1, such a challenge SHOULD NOT carry an error
    code). ``reason`` says which check failed and is never sent.
    """

    def __init__(self, reason: str, *, presented: bool = True) -> None:
        super().__init__(
            "invalid_token",
            "the registration access token is invalid",
            401,
            {"WWW-Authenticate": 'Bearer error="invalid_token"' if presented else "Bearer"},
        )
        self.reason = reason


@dataclass(frozen=True)
class Issued:
    """Plaintext secrets issued by this request; returned once, never stored or logged."""

    registration_access_token: str
    client_secret: str | None = None


def _json_body(body: str | None, content_type: str | None) -> dict[str, Any]:
    """Parse a bounded JSON object body (RFC 7591 section 3.1: ``application/json``)."""
    if content_type and "json" not in content_type.split(";", 1)[0].lower():
        raise RegistrationError("invalid_client_metadata", "the request body must be application/json")
    raw = body or ""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise RegistrationError("invalid_client_metadata", f"the request body is larger than {MAX_BODY_BYTES} bytes")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise RegistrationError("invalid_client_metadata", "the JSON object has duplicate members")
        return dict(pairs)

    try:
        parsed = json.loads(raw, object_pairs_hook=no_duplicates)
    # RecursionError: 16 KB of "[" nests thousands of levels, past the parser's recursion
    # limit. Unparsable is unparsable: 400 invalid_client_metadata (RFC 7591 section 3.2.2).
    except (ValueError, RecursionError) as exc:
        raise RegistrationError("invalid_client_metadata", "the request body is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise RegistrationError("invalid_client_metadata", "client metadata must be a JSON object")
    return parsed


def registration_not_offered(policy: RegistrationPolicy) -> RegistrationError:
    """``POST /register`` on a server whose policy does not offer RFC 7591 registration.

    RFC 8414 section 2: ``registration_endpoint`` is advertised only by a server that offers
    RFC 7591 registration, so here there is no registration endpoint: 404, with a body that
    says what to do instead. Nothing is stored and no rate-limit budget is spent.
    """
    instead = (
        "use the https URL of your Client ID Metadata Document as client_id"
        if policy.accepts_cimd
        else "ask the operator of this server to register your client"
    )
    return RegistrationError(
        "invalid_request", f"this server does not offer dynamic client registration: {instead}", 404
    )


def _holds_token(token: str, hashes: tuple[str, ...]) -> bool:
    """Whether ``token`` hashes to one of ``hashes``; every hash is compared in constant time.

    No early exit: the time taken does not reveal which (or whether a) stored token matched.
    """
    found = False
    for stored in hashes:
        found |= same_hash(token, stored)
    return found


def _bearer(authorization: str | None) -> str:
    match = _BEARER.match(authorization or "")
    if match is None:
        # No Authorization header, or another scheme (Basic...): no bearer token was presented.
        presented = (authorization or "").strip()[:7].lower() == "bearer "
        raise InvalidRegistrationToken("missing or malformed bearer token", presented=presented)
    return match.group(1)


class RegistrationService:
    """RFC 7591 registration and RFC 7592 client configuration; ``clock`` gives epoch seconds.

    Every operation returns the ``Answer`` to send (JSON, ``Cache-Control: no-store``) or raises
    ``OAuthError`` with an RFC 7591 section 3.2.2 code (``RegistrationError``, an
    ``InvalidRegistrationToken`` 401 among them) or ``DependencyError`` (503, safe to retry).
    Client reads are strongly consistent.
    """

    def __init__(
        self,
        settings: RegistrationSettings,
        store: ClientStore,
        limiter: RateLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._limiter = limiter
        self._clock = clock

    # ----- shaping --------------------------------------------------------------------

    def client_uri(self, client_id: str) -> str:
        """RFC 7592 section 3: the client configuration endpoint of ``client_id``."""
        return f"{self._settings.base_url}{REGISTRATION_PATH}/{client_id}"

    def _information(self, record: ClientRecord, issued: Issued, status: int) -> Answer:
        """RFC 7591 section 3.2.1 + RFC 7592 section 3: the client information response."""
        body: dict[str, Any] = {
            "client_id": record.client_id,
            "client_id_issued_at": record.client_id_issued_at,
            **record.metadata,
        }
        if not record.is_public:
            # The secret is only known when just issued; it never expires (RFC 7591: 0).
            if issued.client_secret is not None:
                body["client_secret"] = issued.client_secret
            body["client_secret_expires_at"] = 0
        body["registration_access_token"] = issued.registration_access_token
        body["registration_client_uri"] = self.client_uri(record.client_id)
        return Answer(status, json.dumps(body), dict(SECRET_HEADERS))

    def _validate(self, raw: dict[str, Any]) -> ClientMetadata:
        return validate_client_metadata(raw, redirect_patterns=self._settings.redirect_patterns)

    # ----- RFC 7591: POST /register ----------------------------------------------------

    def register(self, body: str | None, content_type: str | None, source_ip: str) -> Answer:
        """RFC 7591 section 3: register the client metadata in ``body`` (201), de-duplicating
        identical public registrations; ``source_ip`` is charged against the rate limit.

        ``body`` is the raw request body (at most ``MAX_BODY_BYTES``), ``content_type`` its header.
        Returns the client information response (section 3.2.1) with a new registration access
        token, and ``client_secret`` for a confidential client. Raises ``OAuthError``
        ``invalid_client_metadata`` or ``invalid_redirect_uri`` (400, section 3.2.2); ``RegistrationError``
        ``invalid_request`` 404 when the policy offers no registration, ``temporarily_unavailable`` 429
        with ``Retry-After`` (rate limit), ``access_denied`` 403 (MAX_CLIENTS reached); or
        ``DependencyError``, after refunding the rate-limit hits this request counted. Each
        registration is a ``client.registered`` audit event.
        """
        if not self._settings.registration_policy.offers_registration:
            raise registration_not_offered(self._settings.registration_policy)
        meta = self._validate(_json_body(body, content_type))
        charged: list[tuple[str, int]] = []  # (bucket, window) of the hits this request counted
        try:
            return self._register(meta, source_ip, charged)
        except DependencyError:
            # RFC 9110 section 15.6.4: the 503 invites the identical request again after
            # Retry-After; the failed try must not spend the budget that retry needs.
            for bucket, window in charged:
                self._limiter.refund(bucket, source_ip, window)
            raise

    def _register(self, meta: ClientMetadata, source_ip: str, charged: list[tuple[str, int]]) -> Answer:
        now = int(self._clock())
        rat = new_secret()
        if not meta.is_public:
            self._spend_rate_limit(source_ip, charged)
            return self._create(meta, now, rat, None)
        # Identical public registrations share one client_id, so agents that register on
        # every start do not grow the table. Each registrant gets its own registration access
        # token (RFC 7592 section 3) and the last MAX_REGISTRATION_TOKENS stay valid for reads.
        # Anyone can obtain such a token by registering the same metadata, so it proves no
        # exclusive ownership (RFC 7592 section 1): shared clients are read-only
        # (``_refuse_if_shared``).
        dedupe_key = meta.dedupe_key()
        spent = spent_dedupe = False
        for _ in range(DEDUPE_ATTEMPTS):
            existing = self._store.find_by_dedupe(dedupe_key, now)
            if existing is not None:
                if not spent_dedupe:
                    # Counted before the write, once per request (DEDUPE_RATE_BUCKET).
                    self._spend_rate_limit(source_ip, charged, DEDUPE_RATE_BUCKET, DEDUPE_RATE_FACTOR)
                    spent_dedupe = True
                added = self._store.add_registration_token(existing, sha256_hex(rat), now)
                if added is not None:
                    audit(
                        "client.registered",
                        actor="client",
                        reason="deduplicated",
                        client_id=added.client_id,
                        client_name=added.client_name,
                    )
                    return self._information(added, Issued(rat), 201)
                continue  # another token was added concurrently: read the client again
            if not spent:
                # Only a registration that creates a client spends the per-IP budget (identical
                # ones spend their own, larger one, above), so users of one hosted agent behind
                # a shared egress IP are not refused for re-registering what exists. The check
                # sits before the first write: a flood of distinct registrations costs one read
                # each, then 429.
                self._spend_rate_limit(source_ip, charged)
                spent = True
            try:
                return self._create(meta, now, rat, dedupe_key)
            except DedupeConflict:
                continue  # an identical registration won the race: return that one
        raise DependencyError("registration de-duplication did not settle")

    def register_by_operator(self, raw: dict[str, Any]) -> Answer:
        """An operator's registration (the admin CLI), the only way in under ``closed``.

        ``raw`` is client metadata checked by the same rules as ``POST /register`` (RFC 7591
        section 2, the operator's redirect patterns); no policy check, no rate limit, never
        de-duplicated. The 201 answer carries the client information (RFC 7591 section 3.2.1),
        the secret included. Raises ``OAuthError`` (invalid metadata, client limit) and
        ``DependencyError``.
        """
        return self._create(self._validate(raw), int(self._clock()), new_secret(), None, actor="admin")

    def _spend_rate_limit(
        self, source_ip: str, charged: list[tuple[str, int]], bucket: str = RATE_BUCKET, factor: int = 1
    ) -> None:
        """Count one request of ``source_ip`` in ``bucket``, whose limit is ``factor`` x
        REGISTRATION_RATE_PER_MINUTE a minute, and note it in ``charged``; ``RegistrationError`` 429
        with Retry-After when spent."""
        limit = factor * self._settings.registration_rate_per_minute
        decision = self._limiter.hit(bucket, source_ip, limit)
        if decision.allowed:
            charged.append((bucket, decision.window))
        else:
            count("RegistrationsThrottled")
            raise RegistrationError(
                "temporarily_unavailable",
                "too many registrations from this address, retry later",
                429,
                {"Retry-After": str(decision.retry_after)},
            )

    def _create(
        self, meta: ClientMetadata, now: int, rat: str, dedupe_key: str | None, *, actor: Actor = "client"
    ) -> Answer:
        """Store a new client and answer its information (201); one ``client.registered`` event by ``actor``."""
        secret = None if meta.is_public else new_secret()
        record = ClientRecord(
            client_id=new_secret(16),  # 128 random bits, base64url
            kind="registered",
            redirect_uris=meta.redirect_uris,
            token_endpoint_auth_method=meta.token_endpoint_auth_method,
            grant_types=meta.grant_types,
            client_name=meta.client_name,
            scope=meta.scope,
            metadata=meta.to_json(),
            client_secret_hash=None if secret is None else sha256_hex(secret),
            registration_access_token_hash=sha256_hex(rat),
            client_id_issued_at=now,
            last_used_at=now,
            dedupe_key=dedupe_key,
        )
        try:
            stored = self._store.create(record, max_clients=self._settings.max_clients, now=now)
        except ClientLimitReached:
            raise RegistrationError(
                "access_denied",
                "this server has reached its maximum number of registered clients; try again later",
                403,
            ) from None
        audit("client.registered", actor=actor, client_id=stored.client_id, client_name=stored.client_name)
        count("ClientsRegistered")
        return self._information(stored, Issued(rat, secret), 201)

    # ----- RFC 7592: GET / PUT / DELETE /register/{client_id} ---------------------------

    def _authorize(self, client_id: str, authorization: str | None) -> tuple[ClientRecord, str]:
        """RFC 7592 section 2: the registration access token, compared as hashes in constant time.

        Unknown clients and wrong tokens get the same 401 (section 2.1: no existence oracle).
        """
        token = _bearer(authorization)
        if not REGISTERED_CLIENT_ID.match(client_id):
            raise InvalidRegistrationToken("unknown client")
        record = self._store.get(client_id, int(self._clock()))
        if record is None or not _holds_token(token, record.token_hashes):
            raise InvalidRegistrationToken("invalid registration access token")
        return record, token

    @staticmethod
    def _refuse_if_shared(record: ClientRecord) -> None:
        """RFC 7592 section 1: management rights rest on the registration access token being
        held by the client's one owner. A public registration (``token_endpoint_auth_method``
        "none", de-duplicated by its ``dedupe_key``) hands a fresh token to everyone who
        registers identical metadata, so its token proves no ownership: PUT and DELETE are
        refused (403) and change nothing, or any registrant could re-point the shared client's
        redirect_uris or delete it. GET stays allowed (it discloses nothing the registrant
        did not send). Confidential clients are never shared and keep full management.
        """
        if record.is_public or record.dedupe_key is not None:
            raise RegistrationError("access_denied", SHARED_READ_ONLY, 403)

    def read(self, client_id: str, authorization: str | None) -> Answer:
        """RFC 7592 section 2.1: the client information response (200), with the presented token.

        ``authorization`` is the request's Authorization header (``Bearer <registration access token>``).
        ``InvalidRegistrationToken`` (401) for a missing or wrong token and for an unknown client alike.
        """
        record, token = self._authorize(client_id, authorization)
        # The presented token is still valid: return it rather than rotate on a read.
        return self._information(record, Issued(token), 200)

    def update(self, client_id: str, authorization: str | None, body: str | None, content_type: str | None) -> Answer:
        """RFC 7592 section 2.2: replace the metadata of a confidential client (200).

        ``body`` is the complete new metadata (omitted fields are deleted) with the same ``client_id``.
        Raises ``InvalidRegistrationToken`` (401, also when the client changed concurrently),
        ``RegistrationError`` ``access_denied`` 403 for a shared public client, ``invalid_client_metadata``
        or ``invalid_redirect_uri`` 400; or ``DependencyError``. A ``client.updated`` audit event.
        """
        record, token = self._authorize(client_id, authorization)
        self._refuse_if_shared(record)
        raw = _json_body(body, content_type)
        # RFC 7592 section 2.2: client_id MUST be included and equal; server-issued fields MUST NOT.
        if raw.get("client_id") != client_id:
            raise RegistrationError("invalid_client_metadata", "client_id must be included and match the client")
        # RFC 7592 section 2.2 treats omitted fields as null, so a member sent as null is omitted
        # (as validate_client_metadata does for every field): a client echoing its stored
        # information with "client_secret": null is not refused.
        present = [name for name in FORBIDDEN_ON_UPDATE if raw.get(name) is not None]
        if present:
            raise RegistrationError("invalid_client_metadata", "the update must not include " + ", ".join(present))
        if raw.get("client_secret") is not None:
            # RFC 7592 section 2.2: a presented secret MUST match; a client never chooses its own.
            presented = raw["client_secret"]
            if not isinstance(presented, str) or not same_hash(presented, record.client_secret_hash):
                raise RegistrationError("invalid_client_metadata", "client_secret does not match the issued secret")
        # RFC 7592 section 2.2: omitted fields are deleted, so validate the body as a whole.
        meta = self._validate(raw)
        if meta.is_public:
            # Public clients are shared and read-only (RFC 7592 section 1, _refuse_if_shared);
            # turning a managed confidential client into one would be a one-way door.
            raise RegistrationError(
                "invalid_client_metadata",
                "a confidential client cannot become public; register the public metadata instead",
            )
        updated = replace(
            record,
            redirect_uris=meta.redirect_uris,
            token_endpoint_auth_method=meta.token_endpoint_auth_method,
            grant_types=meta.grant_types,
            client_name=meta.client_name,
            scope=meta.scope,
            metadata=meta.to_json(),
        )
        stored = self._store.update(updated, expected_token_hash=sha256_hex(token), now=int(self._clock()))
        if stored is None:  # deleted or re-keyed concurrently
            raise InvalidRegistrationToken("client changed concurrently")
        audit("client.updated", actor="client", client_id=client_id, client_name=stored.client_name)
        return self._information(stored, Issued(token), 200)

    def delete(self, client_id: str, authorization: str | None) -> Answer:
        """RFC 7592 section 2.3: delete a confidential client (204).

        Raises ``InvalidRegistrationToken`` (401, also when the client changed concurrently),
        ``RegistrationError`` ``access_denied`` 403 for a shared public client, or ``DependencyError``.
        A ``client.deleted`` audit event.
        """
        record, token = self._authorize(client_id, authorization)
        self._refuse_if_shared(record)
        if not self._store.delete(record, expected_token_hash=sha256_hex(token)):
            raise InvalidRegistrationToken("client changed concurrently")
        audit("client.deleted", actor="client", client_id=client_id, client_name=record.client_name)
        # RFC 7592 section 2.3: 204 No Content.
        return Answer(204, "", {"Cache-Control": "no-store"})
