"""``POST /token`` (authorization_code, refresh_token) and ``POST /revoke``.

Errors are ``TokenError`` (RFC 6749 section 5.2 shapes); dependency failures propagate as
``DependencyError`` (503 in the handler). Codes and refresh tokens are looked up by their
SHA-256 only, and every consumption is a conditional write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from functions.core.clients.records import ClientRecord, ClientResolver
from functions.core.cognito.gateway_secret import SecretSource, refresh_successor
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier, TokenRejected
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoOAuth
from functions.core.cognito.token_cipher import CiphertextRejected, TokenCipher, grant_context
from functions.core.oauth import scopes as catalogue
from functions.core.oauth.client_auth import authenticate_client
from functions.core.oauth.grant_types import GRANT_TYPES
from functions.core.oauth.resource_uri import same_resource
from functions.core.platform.audit import audit, party_fields
from functions.core.platform.crypto import new_secret, pkce_matches, sha256_hex
from functions.core.platform.errors import DependencyError, TokenError
from functions.core.platform.metrics import count
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings
from functions.core.state.codes import (
    AuthorizationCode,
    AuthorizationCodeRepository,
    CodeSpent,
    Redemption,
    code_answer_context,
)
from functions.core.state.consent import ConsentRepository
from functions.core.state.grants import Grant, GrantStore
from functions.core.state.refresh_tokens import (
    GrantInactive,
    RefreshToken,
    RefreshTokenRepository,
    SessionUpdate,
    TokenSpent,
)
from functions.core.state.revocation import GrantRevoker

MAX_TOKEN: Final = 8192
# How many times one rotated refresh token is answered again inside its reuse grace. Each
# answer carries the same successor refresh token (the chain never forks) and a new Cognito
# access token, so this bounds only access-token re-mints (and Cognito calls): enough for a
# retried lost response plus a couple of processes sharing one credential store.
MAX_GRACE_PAIRS: Final = 3


def _invalid_grant(description: str) -> TokenError:
    return TokenError("invalid_grant", description)


class TokenService:
    """The token endpoint (RFC 6749 section 3.2) and the revocation endpoint (RFC 7009).

    Timestamps are epoch seconds from ``clock``. Every refusal is a ``TokenError``; a failed
    dependency raises ``DependencyError`` (503, safe to retry: no single-use step is spent
    before the calls that can fail).
    """

    def __init__(
        self,
        settings: FacadeSettings,
        *,
        clients: ClientResolver,
        codes: AuthorizationCodeRepository,
        grants: GrantStore,
        refresh_tokens: RefreshTokenRepository,
        consents: ConsentRepository,
        cipher: TokenCipher,
        cognito: CognitoOAuth,
        secret: SecretSource,
        verifier: CognitoAccessTokenVerifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._secret = secret
        self._clients, self._codes, self._grants = clients, codes, grants
        self._rts = refresh_tokens
        self._cipher, self._cognito, self._verifier = cipher, cognito, verifier
        self._clock = clock
        self._revoker = GrantRevoker(
            grants=grants,
            refresh_tokens=refresh_tokens,
            consents=consents,
            cipher=cipher,
            cognito=cognito,
            clock=clock,
        )

    # ------------------------------------------------------------------ POST /token
    def token(self, form: Mapping[str, str], authorization: str) -> dict[str, Any]:
        """The RFC 6749 section 5.1 JSON answer to one token request.

        ``form`` holds the request's form parameters, ``authorization`` its Authorization
        header ("" when absent); the client authenticates as registered (``client_auth``).
        The answer: Cognito's access token (``token_type`` Bearer, ``expires_in`` seconds),
        ``scope``, and for a client registered for ``refresh_token`` the kit's opaque refresh
        token, rotated on every refresh (OAuth 2.1 section 4.3.1). Codes and refresh tokens
        are read strongly consistently and spent by conditional transactions. Raises
        ``TokenError`` (section 5.2): ``invalid_request``, ``invalid_client`` (401),
        ``unsupported_grant_type``, ``unauthorized_client``, ``invalid_grant``, ``invalid_scope``,
        ``invalid_target`` (RFC 8707); or ``DependencyError``.
        """
        grant_type = form.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "grant_type is required")
        client = authenticate_client(self._clients, authorization, form)
        if grant_type not in GRANT_TYPES:
            raise TokenError("unsupported_grant_type", "supported: " + ", ".join(GRANT_TYPES))
        if grant_type not in client.grant_types:
            # RFC 6749 section 5.2: the client is not registered for this grant type.
            raise TokenError("unauthorized_client", f"the client is not registered for {grant_type}")
        if grant_type == "authorization_code":
            return self._authorization_code(client, form)
        return self._refresh(client, form)

    def _authorization_code(self, client: ClientRecord, form: Mapping[str, str]) -> dict[str, Any]:
        code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
        if not code or not redirect_uri or not verifier or len(code) > MAX_TOKEN:
            raise TokenError("invalid_request", "code, redirect_uri and code_verifier are required")
        code_hash = sha256_hex(code)
        record = self._codes.get(code_hash)
        now = int(self._clock())
        # RFC 6749 section 4.1.3: the code must have been issued to the authenticated client.
        if record is None or record.client_id != client.client_id:
            raise _invalid_grant("unknown authorization code")
        mismatch = _mismatch(record, form)
        if record.used_at is not None:
            return self._presented_again(record, mismatch, now)
        if not record.is_live(now):
            raise _invalid_grant("authorization code expired")
        if mismatch is not None:
            raise mismatch
        # Everything that can fail runs before the single-use transition (every 503 is safe
        # to retry): the grant read, both KMS calls, then one transaction.
        grant = self._grants.get(record.grant_id)
        if grant is None or grant.status == "revoked" or now >= grant.expires_at:
            raise _invalid_grant("the authorization was revoked")
        access_token = self._decrypt(record.upstream_access, grant.grant_id)
        expires_in = record.access_expires_at - now
        if access_token is None or expires_in <= 0:
            raise _invalid_grant("the authorization expired; start again")
        grant_expires = now + self._s.grant_lifetime_seconds
        refresh_token, new_rt, answer = None, None, None
        if "refresh_token" in client.grant_types:
            refresh_token = new_secret()  # 256 bits; stored only as its SHA-256 (and encrypted, below)
            new_rt = RefreshToken(
                sha256_hex(refresh_token),
                grant.grant_id,
                client.client_id,
                now,
                grant_expires,
                scopes=frozenset(record.scopes),
            )
            # What a retry needs to get the same answer, KMS-encrypted and bound to the code item.
            answer = self._cipher.encrypt(refresh_token.encode(), code_answer_context(code_hash))
        retry_until = now + self._s.refresh_reuse_grace_seconds
        try:
            # The single use is enforced by this conditional transaction: of N parallel
            # requests with one code exactly one redeems it, and the code is spent exactly
            # when its grant is active and its refresh token exists.
            self._codes.redeem(record, Redemption(now, retry_until, answer, grant_expires, new_rt))
        except CodeSpent:
            # A parallel request redeemed it first: losing a race is never theft.
            winner = self._codes.get(code_hash)
            if winner is None or winner.used_at is None:
                raise _invalid_grant("authorization code already used") from None
            return self._presented_again(winner, None, now, raced=True)
        except GrantInactive:
            raise _invalid_grant("the authorization was revoked") from None
        audit("token.issued", actor="client", scopes=record.scopes, **party_fields(grant))
        count("TokensIssued")
        return _code_answer(access_token, expires_in, record.scopes, refresh_token)

    def _presented_again(
        self, record: AuthorizationCode, mismatch: TokenError | None, now: int, *, raced: bool = False
    ) -> dict[str, Any]:
        """A redeemed code presented again: a retry gets the same answer, a replay revokes.

        RFC 6749 section 4.1.2 / OAuth 2.1 section 4.1.3: a code used more than once is
        refused and what it issued revoked. The same client's identical request (same
        redirect_uri, same PKCE verifier, which only that client holds, RFC 7636 section 1)
        within ``REFRESH_REUSE_GRACE_SECONDS`` of the redemption is not a second use but a
        retry of the first (a lost answer, a 503, a parallel duplicate; RFC 9700 section
        4.14.2 reasons the same way for refresh tokens): it gets the answer of the redemption,
        and nothing is revoked.
        """
        if mismatch is None and record.retry_until is not None and now < record.retry_until:
            return self._answer_again(record, now)
        if not raced:
            # RFC 6749 section 4.1.2: detected, counted (an alarm), then what it issued revoked.
            audit("code.replay_detected", outcome="denied", actor="client", **party_fields(record))
            count("CodeReplayDetected")
            self._revoker.revoke(record.grant_id, "code_replay")
        raise _invalid_grant("authorization code already used")

    def _answer_again(self, record: AuthorizationCode, now: int) -> dict[str, Any]:
        grant = self._grants.get(record.grant_id)
        if grant is None or not grant.is_active(now):
            raise _invalid_grant("the authorization was revoked")
        access_token = self._decrypt(record.upstream_access, grant.grant_id)
        refresh_token = None
        if record.answer is not None:
            refresh_token = self._plaintext(record.answer, code_answer_context(record.code_hash))
            if refresh_token is None:
                raise _invalid_grant("authorization code already used")
        expires_in = record.access_expires_at - now
        if access_token is None or expires_in <= 0:
            raise _invalid_grant("the authorization expired; start again")
        return _code_answer(access_token, expires_in, record.scopes, refresh_token)

    def _refresh(self, client: ClientRecord, form: Mapping[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented or len(presented) > MAX_TOKEN:
            raise TokenError("invalid_request", "refresh_token is required")
        old_hash = sha256_hex(presented)
        record = self._rts.get(old_hash)
        now = int(self._clock())
        # RFC 6749 section 6: the refresh token must have been issued to the authenticated client.
        if record is None or record.client_id != client.client_id:
            raise _invalid_grant("unknown refresh token")
        if record.status == "revoked":
            raise _invalid_grant("the authorization was revoked")
        if record.status != "active" and not self._in_grace(record, now):
            # OAuth 2.1 section 4.3.1 / RFC 9700 section 4.14.2: a rotated token presented
            # after its grace is reuse (theft or a broken client): revoke the whole grant.
            audit("refresh.reuse_detected", outcome="denied", actor="client", **party_fields(record))
            count("RefreshReuseDetected")
            self._revoker.revoke(record.grant_id, "refresh_reuse", forget_consent=True)
            raise _invalid_grant("refresh token already used")
        if record.status == "rotated" and record.grace_mints >= MAX_GRACE_PAIRS:
            # Refused from the record, before any Cognito call; the conditional write in
            # _store_rotation stays the authority for requests that pass this check.
            raise _invalid_grant("refresh token already used")
        if not record.is_live(now):
            raise _invalid_grant("refresh token expired")
        grant = self._grants.get(record.grant_id)
        if grant is None or not grant.is_active(now):
            raise _invalid_grant("the authorization was revoked")
        # RFC 8707 section 2.2: the only resource is <B>/mcp, the one every grant is for
        # (compared after RFC 3986 section 6.2 normalisation).
        resource = form.get("resource")
        if resource is not None and not same_resource(resource, self._s.mcp_url):
            raise TokenError("invalid_target", "the only resource served here is " + self._s.mcp_url)
        # RFC 6749 section 6: the refresh token's scope is the scope originally granted,
        # carried unchanged through rotation (older items without one: the grant's).
        originally = grant.scopes if record.scopes is None else record.scopes
        # Values the kit does not serve (offline_access, openid...) are ignored as at
        # /authorize (RFC 6749 section 3.3); a served scope beyond the original grant is
        # refused (section 6: MUST NOT include any scope not originally granted).
        requested = frozenset(catalogue.order((form.get("scope") or "").split()))
        if not requested <= originally:
            raise TokenError("invalid_scope", "scope exceeds what was granted")
        # Omitted: equal to the scope originally granted (section 6). Narrowed: recorded on
        # the grant as its current session scope, which /mcp intersects with every access
        # token of the grant (Cognito cannot narrow the JWT itself); a later refresh without
        # scope widens the session back to the original grant, never beyond.
        session_scopes = requested or originally
        # RFC 9700 section 4.14.2: the successor is derived from the presented token, so a
        # retry inside the grace gets the same one (one chain; a later use of the older token
        # is reuse). A rotated token whose recorded successor is another cannot be answered.
        successor = refresh_successor(self._secret, presented)
        successor_hash = sha256_hex(successor)
        if record.status == "rotated" and record.successor != successor_hash:
            raise _invalid_grant("refresh token already used")
        upstream_refresh = self._decrypt(grant.upstream_refresh, grant.grant_id)
        if upstream_refresh is None:
            raise _invalid_grant("the authorization cannot be renewed; start again")
        try:
            tokens = self._cognito.refresh(upstream_refresh)
        except CognitoInvalidGrant:
            # Cognito ended the session (user disabled, signed out, expired): so does the kit.
            self._revoker.revoke(grant.grant_id, "upstream_invalid_grant", upstream_alive=False)
            raise _invalid_grant("the authorization is no longer valid") from None
        self._check_refreshed(tokens.access_token, grant)
        rotated_upstream = None
        if tokens.refresh_token and tokens.refresh_token != upstream_refresh:
            # Cognito rotates its own refresh token when the app client has rotation enabled.
            rotated_upstream = self._cipher.encrypt(tokens.refresh_token.encode(), grant_context(grant.grant_id))
        new_record = RefreshToken(
            successor_hash, grant.grant_id, client.client_id, now, grant.expires_at, scopes=originally
        )
        self._store_rotation(
            record, new_record, now, SessionUpdate(grant.grant_id, session_scopes, now, rotated_upstream)
        )
        audit("token.refreshed", actor="client", scopes=session_scopes, **party_fields(grant))
        count("TokensRefreshed")
        return {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": tokens.expires_in,
            # RFC 6749 sections 5.1 and 6: the scope of this access token as /mcp enforces it.
            "scope": " ".join(catalogue.order(session_scopes)),
            "refresh_token": successor,
        }

    def _in_grace(self, record: RefreshToken, now: int) -> bool:
        """A rotated token still inside REFRESH_REUSE_GRACE_SECONDS (0: never)."""
        grace = self._s.refresh_reuse_grace_seconds
        return grace > 0 and record.rotated_at is not None and now - record.rotated_at <= grace

    def _store_rotation(self, record: RefreshToken, new: RefreshToken, now: int, session: SessionUpdate) -> None:
        """Rotate the presented token to ``new``, or answer it again in its grace: one conditional write.

        Refused without revocation when a parallel request won the rotation and no grace
        applies, or the grace answers are spent: the presenter held a token that was valid
        when it sent it, so losing a race is never treated as theft.
        """
        grace = self._s.refresh_reuse_grace_seconds
        try:
            if record.status == "active":
                try:
                    self._rts.rotate(record.token_hash, new, now, session)
                    return
                except TokenSpent:
                    if grace == 0:
                        raise
            # RFC 9700 section 4.14.2: within the grace the just-rotated token is answered
            # again with the successor it was rotated to (``new``, derived from it), at most
            # MAX_GRACE_PAIRS times; no new refresh token is stored.
            self._rts.reissue_in_grace(
                record.token_hash,
                successor=new.token_hash,
                rotated_since=now - grace,
                max_mints=MAX_GRACE_PAIRS,
                session=session,
            )
        except GrantInactive:
            raise _invalid_grant("the authorization was revoked") from None
        except TokenSpent:
            logger.info("refresh lost a race or exceeded its grace", extra={"grant_id": record.grant_id})
            raise _invalid_grant("refresh token already used") from None

    def _check_refreshed(self, access_token: str, grant: Grant) -> None:
        """Cognito's new access token must verify and still belong to this grant (origin_jti)."""
        try:
            access = self._verifier.verify(access_token)
        except TokenRejected as exc:
            raise DependencyError(f"Cognito returned an access token the kit rejects: {exc.reason}") from None
        if access.origin_jti != grant.grant_id or access.sub != grant.sub:
            # The MCP endpoint finds grants by origin_jti; a new session id would orphan the
            # token. Fail closed (the gateway client must keep origin_jti across refreshes).
            logger.error("refreshed Cognito token has another origin_jti or sub")
            raise DependencyError("Cognito refresh changed the session")

    # ------------------------------------------------------------------ POST /revoke
    def revoke(self, form: Mapping[str, str], authorization: str) -> None:
        """RFC 7009: revoke the grant behind a kit refresh token or a Cognito access token.

        Returns once the revocation is complete (200); an unknown or invalid token is no
        error (section 2.2). Raises ``TokenError``: ``invalid_client`` (401) or
        ``invalid_request`` from client authentication or a missing ``token``, ``invalid_grant``
        for a token of another client (section 2.1); or ``DependencyError`` (503; the retry
        finishes the revocation).
        """
        client = authenticate_client(self._clients, authorization, form)
        token = form.get("token")
        if not token:
            raise TokenError("invalid_request", "token is required")
        if len(token) > MAX_TOKEN:
            return  # RFC 7009 section 2.2: an invalid token is answered 200
        grant_id = self._grant_of(token, client)
        if grant_id is not None:
            # RFC 7009 section 2.2: 200 only once the revocation is done, upstream included;
            # a failure is a 503 whose retry finishes it (the grant keeps what is left to do).
            self._revoker.revoke(grant_id, "revoked_by_client", must_finish=True, actor="client")
            audit("token.revoked", actor="client", client_id=client.client_id, grant_id=grant_id)

    def _grant_of(self, token: str, client: ClientRecord) -> str | None:
        if token.count(".") == 2:
            try:
                access = self._verifier.verify(token)
            except TokenRejected:
                return None  # not a live kit access token: nothing to revoke (RFC 7009 s2.2)
            grant = self._grants.get(access.origin_jti)
            if grant is None:
                return None
            owner, grant_id = grant.client_id, grant.grant_id
        else:
            record = self._rts.get(sha256_hex(token))
            if record is None:
                return None
            owner, grant_id = record.client_id, record.grant_id
        if owner != client.client_id:
            # RFC 7009 section 2.1: the token must have been issued to the requesting client.
            raise _invalid_grant("the token was not issued to this client")
        return grant_id

    def _decrypt(self, ciphertext: bytes | None, grant_id: str) -> str | None:
        return None if ciphertext is None else self._plaintext(ciphertext, grant_context(grant_id))

    def _plaintext(self, ciphertext: bytes, context: dict[str, str]) -> str | None:
        """KMS decryption; None when the ciphertext is rejected (``DependencyError`` on an outage)."""
        try:
            return self._cipher.decrypt(ciphertext, context).decode()
        except (CiphertextRejected, UnicodeDecodeError):
            logger.warning("a stored token did not decrypt", extra={"kit": context.get("kit")})
            return None


def _mismatch(record: AuthorizationCode, form: Mapping[str, str]) -> TokenError | None:
    """Why this token request does not match the code's authorization request, or None."""
    # RFC 6749 section 4.1.3: redirect_uri identical to the authorization request's.
    if form.get("redirect_uri") != record.redirect_uri:
        return _invalid_grant("redirect_uri does not match the authorization request")
    # RFC 7636 section 4.6: BASE64URL(SHA256(verifier)) == code_challenge (S256 only).
    if not pkce_matches(form.get("code_verifier", ""), record.code_challenge):
        return _invalid_grant("code_verifier does not match the code_challenge")
    # RFC 8707 section 2.2: a resource in the token request must be the one authorized
    # (compared after RFC 3986 section 6.2 normalisation).
    resource = form.get("resource")
    if resource is not None and not same_resource(resource, record.resource):
        return TokenError("invalid_target", "resource does not match the authorization request")
    return None


def _code_answer(
    access_token: str, expires_in: int, scopes: Sequence[str], refresh_token: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": access_token,  # Cognito's JWT, untouched
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": " ".join(catalogue.order(scopes)),
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body
