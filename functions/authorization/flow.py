"""The consent gate: ``GET /authorize``, ``GET /oauth/callback`` and ``POST /consent``.

Plain logic on parameter dicts; the handler parses events and shapes answers. Every
dependency failure propagates as ``DependencyError`` (503 in the handler), never an allow.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from functions.authorization import pages
from functions.authorization.identity import ceiling, learn_user
from functions.authorization.web import TxnCookie, redirect, with_query
from functions.core.clients.metadata import bounded_client_name
from functions.core.clients.records import MAX_CLIENT_ID, ClientRecord, ClientResolver
from functions.core.clients.redirect_uris import redirect_uri_registered
from functions.core.cognito.gateway_secret import SecretSource, cookie_key, gateway_pkce_verifier
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoOAuth, CognitoTokens, authorize_url
from functions.core.cognito.token_cipher import CiphertextRejected, TokenCipher, grant_context, txn_context
from functions.core.oauth import scopes as catalogue
from functions.core.oauth.resource_uri import same_resource
from functions.core.platform.audit import audit, party_fields
from functions.core.platform.crypto import PKCE_CHALLENGE, new_secret, s256, same_bytes, same_hash, sha256_hex
from functions.core.platform.ddb import ConditionFailed
from functions.core.platform.errors import AuthorizeErrorCode, DependencyError
from functions.core.platform.http import Answer
from functions.core.platform.observability import logger
from functions.core.platform.routes import CALLBACK_PATH
from functions.core.platform.settings import FacadeSettings
from functions.core.state.codes import CODE_LIFETIME_SECONDS, AuthorizationCode
from functions.core.state.consent import Consent, ConsentRepository, redirect_proves_client
from functions.core.state.grants import Grant
from functions.core.state.pending_requests import (
    TXN_LIFETIME_SECONDS,
    Approval,
    DuplicateGrant,
    PendingAuthorizationRequest,
    PendingRequestRepository,
    RequestStatus,
)

REREGISTER: Final = "In your app, remove this server (the connector) and add it again; that registers the app anew."
MAX_REDIRECT_URI: Final = 2048
MAX_STATE: Final = 1024
# Separates the transaction id from the attempt number in the state sent to Cognito
# (transaction ids are base64url, without dots).
UPSTREAM_RETRY_MARK: Final = "."


class AuthorizationService:
    """The authorization endpoint (RFC 6749 section 3.1): ``/authorize``, Cognito's callback and ``/consent``.

    Each step returns the ``Answer`` to send, never a redirect to an unverified URI; ``clock`` gives epoch seconds.
    Raises ``DependencyError`` (503, safe to retry) when DynamoDB, KMS, Cognito or the client registry fails.
    """

    def __init__(
        self,
        settings: FacadeSettings,
        *,
        clients: ClientResolver,
        txns: PendingRequestRepository,
        consents: ConsentRepository,
        cipher: TokenCipher,
        cognito: CognitoOAuth,
        secret: SecretSource,
        verifier: CognitoAccessTokenVerifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._clients = clients
        # Grants and codes are written by the transaction repository, with the decision.
        self._txns, self._consents = txns, consents
        self._cipher, self._cognito, self._secret, self._verifier = cipher, cognito, secret, verifier
        self._clock = clock
        self.cookie = TxnCookie(secure=settings.secure_cookies)
        self._callback_url = settings.base_url + CALLBACK_PATH

    def authorize(self, params: dict[str, str] | None) -> Answer:
        """``GET /authorize`` (RFC 6749 section 4.1.1, RFC 7636, RFC 8707); ``params`` None: a parameter repeated.

        Unknown client or unregistered redirect URI: a 400 page. Other refusals redirect (section 4.1.2.1:
        ``invalid_request``, ``unsupported_response_type``, ``unauthorized_client``, ``invalid_target``); else
        a 302 to Cognito's sign-in, the pending request stored (``TXN_LIFETIME_SECONDS``) and cookie-bound.
        Raises ``DependencyError`` (503) when the registry or the table is unreachable, ``CimdUnavailable``
        (the handler's 503 page) before anything is stored when the client's document cannot be fetched now.
        """
        if params is None:
            return pages.error_page(400, "A request parameter was repeated.")
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if not client_id or len(client_id) > MAX_CLIENT_ID:
            return pages.error_page(400, "The request names no valid client_id.")
        client = self._clients.resolve(client_id)
        # RFC 6749 section 4.1.2.1 / OAuth 2.1 section 4.1.2.1: with an unknown client or an
        # unverified redirect URI, inform the user and never redirect (open redirector).
        if client is None:
            return pages.error_page(
                400, "This app is not registered here (registrations of unused apps expire).", next_step=REREGISTER
            )
        if (
            not redirect_uri
            or len(redirect_uri) > MAX_REDIRECT_URI
            or not redirect_uri_registered(redirect_uri, client.redirect_uris)
        ):
            return pages.error_page(
                400, "The app's return address is not registered for it here.", next_step=REREGISTER
            )
        state = params.get("state")

        def fail(error: AuthorizeErrorCode, description: str) -> Answer:
            return self._error_redirect(redirect_uri, state, error, description)

        if state is not None and len(state) > MAX_STATE:
            return fail("invalid_request", "state is too long")
        response_type = params.get("response_type")
        if not response_type:
            return fail("invalid_request", "response_type is required")
        if response_type != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        if "authorization_code" not in client.grant_types:
            return fail("unauthorized_client", "the client is not registered for authorization_code")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        # OAuth 2.1 section 4.1.1 + MCP authorization spec: PKCE is required, S256 only.
        # RFC 7636 section 4.3: an absent method means "plain", which is refused too.
        if not challenge:
            return fail("invalid_request", "code_challenge is required (PKCE)")
        if method != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        if not PKCE_CHALLENGE.match(challenge):
            return fail("invalid_request", "code_challenge is not a base64url SHA-256 value")
        # RFC 8707 section 2: this authorization server protects one resource, <B>/mcp,
        # however a client spells it (RFC 3986 section 6.2 normalisation).
        if not same_resource(params.get("resource", self._s.mcp_url), self._s.mcp_url):
            return fail("invalid_target", "the only resource served here is " + self._s.mcp_url)
        resource = self._s.mcp_url
        requested = catalogue.requested_scopes(params.get("scope"), client.scope)

        now = int(self._clock())
        txn = PendingAuthorizationRequest(
            txn_id=new_secret(),
            client_id=client.client_id,
            # Unverified (RFC 7591 section 2): cleaned and bounded as on the consent page (UTR 36).
            client_name=bounded_client_name(client.client_name),
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=challenge,
            resource=resource,
            scopes=requested,
            created_at=now,
            expires_at=now + TXN_LIFETIME_SECONDS,
        )
        # The redirect (it reads the gateway secret, which can fail) is built before the
        # request is stored: a 503 leaves nothing behind.
        answer = self._to_cognito(txn)
        self._txns.create(txn)
        return answer

    def _to_cognito(self, txn: PendingAuthorizationRequest, attempt: str = "") -> Answer:
        """Send the browser to Cognito's sign-in for ``txn`` (``attempt``: a restarted upstream leg)."""
        upstream_params = {
            "response_type": "code",
            "client_id": self._s.gateway_client_id,
            "redirect_uri": self._callback_url,
            "state": txn.txn_id + (UPSTREAM_RETRY_MARK + attempt if attempt else ""),
            "scope": " ".join(
                [
                    *catalogue.GATEWAY_OIDC_SCOPES,
                    *(catalogue.cognito_scope(self._s.resource_server_id, s) for s in txn.scopes),
                ]
            ),
            # The kit's own PKCE pair towards Cognito (RFC 7636); the verifier is derived, never stored.
            "code_challenge": s256(gateway_pkce_verifier(self._secret, txn.txn_id)),
            "code_challenge_method": "S256",
        }
        if self._s.resource_binding:
            upstream_params["resource"] = self._s.mcp_url  # RFC 8707: Cognito sets aud to it
        if self._s.default_identity_provider:
            # Cognito skips its chooser and sends the person straight to this provider.
            upstream_params["identity_provider"] = self._s.default_identity_provider
        key = cookie_key(self._secret)
        return redirect(authorize_url(self._s, upstream_params), cookies=(self.cookie.set(key, txn.txn_id),))

    def _error_redirect(
        self, redirect_uri: str, state: str | None, error: AuthorizeErrorCode, description: str
    ) -> Answer:
        # RFC 6749 section 4.1.2.1 + RFC 9207 section 2: error, state and iss on every response.
        params = {"error": error, "error_description": description, "state": state, "iss": self._s.issuer}
        return redirect(with_query(redirect_uri, params), cookies=(self.cookie.clear(),))

    def _bound_txn(self, cookie: str | None, expected: RequestStatus) -> PendingAuthorizationRequest | Answer:
        txn_id = TxnCookie.verify(cookie_key(self._secret), cookie)
        if txn_id is None:
            # The cookie is cleared when a sign-in ends (back button, another browser): say so, not a timeout.
            return pages.finished_page()
        txn = self._txns.get(txn_id)
        if txn is None or not txn.is_live(self._clock()):
            minutes = TXN_LIFETIME_SECONDS // 60
            return pages.error_page(400, f"This sign-in took longer than {minutes} minutes and expired.")
        if txn.status == "decided":
            return pages.finished_page()
        if txn.status != expected:
            return pages.error_page(400, "This step of the sign-in was already completed and cannot be repeated.")
        return txn

    def callback(self, params: dict[str, str] | None, cookie: str | None) -> Answer:
        """``GET /oauth/callback``: exchange Cognito's code for the pending request the ``cookie`` binds.

        The consent page, or the code redirect when a remembered consent covers it (RFC 8252 section 8.6);
        else an ``access_denied``/``server_error`` redirect (RFC 6749 section 4.1.2.1) or a 400 page.
        ``CimdUnavailable`` (a 503 page) leaves the request pending and Cognito's code unspent: reload.
        """
        if params is None:
            return pages.error_page(400, "A request parameter was repeated.")
        found = self._bound_txn(cookie, "pending")
        if isinstance(found, Answer):
            return found
        txn = found
        # RFC 6749 section 10.12: the state Cognito echoes must be the transaction the cookie binds
        # (compared as bytes: a non-ASCII state is a mismatch, not an exception).
        state, _, attempt = params.get("state", "").partition(UPSTREAM_RETRY_MARK)
        if not same_bytes(state, txn.txn_id) or attempt not in ("", "1"):
            return pages.error_page(400, "This sign-in response does not belong to this browser's request.")
        code = params.get("code")
        if "error" in params or not code:
            self._abandon(txn, "pending", None)
            return self._error_redirect(txn.redirect_uri, txn.state, "access_denied", "the sign-in was not completed")
        # What can fail without Cognito's code runs before the code is spent.
        client = self._clients.resolve(txn.client_id)
        if client is None:
            self._abandon(txn, "pending", None)
            return pages.error_page(400, "This app is no longer registered here.", next_step=REREGISTER)
        try:
            tokens = self._cognito.exchange_code(
                code, self._callback_url, gateway_pkce_verifier(self._secret, txn.txn_id)
            )
        except CognitoInvalidGrant:
            if not attempt:
                # Cognito's code is single use (RFC 6749 section 4.1.2): a retry of this
                # callback after a 503 finds it spent. The transaction is still pending, so ask
                # Cognito once more (its session signs the user in again without a prompt).
                return self._to_cognito(txn, "1")
            self._abandon(txn, "pending", None)
            return self._error_redirect(
                txn.redirect_uri, txn.state, "access_denied", "the sign-in could not be completed"
            )
        return self._signed_in(txn, client, tokens)

    def _signed_in(self, txn: PendingAuthorizationRequest, client: ClientRecord, tokens: CognitoTokens) -> Answer:
        """After Cognito's code exchange: check the user, then the consent page or a remembered approval."""
        now = int(self._clock())
        refresh = tokens.refresh_token or ""
        user = learn_user(self._s, self._verifier, tokens.access_token, tokens.id_token)
        if user is None:
            self._abandon(txn, "pending", refresh)
            return self._error_redirect(
                txn.redirect_uri, txn.state, "server_error", "the sign-in could not be verified"
            )
        allowed = ceiling(self._s, txn.scopes, user.groups)
        if not allowed:
            denied = party_fields(user) | party_fields(txn, ("client_id", "client_name"))
            audit("authorization.denied", outcome="denied", actor="system", reason="group_ceiling", **denied)
            self._abandon(txn, "pending", refresh)
            return self._error_redirect(
                txn.redirect_uri, txn.state, "access_denied", "your account may not grant any of the requested scopes"
            )
        remembered = redirect_proves_client(client, txn.redirect_uri)
        consent = self._consents.get(user.sub, txn.client_id) if remembered else None
        upstream = Upstream(tokens.access_token, refresh, user.access_expires_at)
        signed_in = replace(
            txn,
            sub=user.sub,
            username=user.username,
            email=user.email,
            groups=user.groups,
            origin_jti=user.origin_jti,
            allowed_scopes=allowed,
        )
        if (
            consent is not None
            and consent.covers(allowed, now)
            and consent.approved_redirect(txn.redirect_uri, redirect_uri_registered)
        ):
            # A remembered consent skips the page only when the redirect target proves the
            # client (RFC 8252 section 8.6), it covers the scopes AND the user already approved
            # this redirect URI for this client (RFC 9700 section 4.1, OAuth 2.1 section 4.1.1).
            return self._issue(signed_in, upstream, expected="pending", csrf_hash=None)
        blob = json.dumps(
            {"access_token": upstream.access, "refresh_token": refresh, "access_expires_at": upstream.access_expires_at}
        ).encode()
        csrf = new_secret()
        # Every field the callback sets is stored by ``authenticate`` (the request's CALLBACK fields).
        txn = replace(
            signed_in,
            status="authenticated",
            upstream_tokens=self._cipher.encrypt(blob, txn_context(txn.txn_id)),
            csrf_hash=sha256_hex(csrf),
        )
        try:
            self._txns.authenticate(txn, now)
        except ConditionFailed:
            self._revoke_upstream(refresh)
            return pages.error_page(400, "This step of the sign-in was already completed and cannot be repeated.")
        return pages.consent_page(pages.consent_view(self._s, txn, client, csrf, remembered=remembered))

    def consent(self, form: dict[str, str] | None, cookie: str | None) -> Answer:
        """``POST /consent``: the person's decision on the pending request the ``cookie`` binds, recorded once.

        Approve (``authorization.granted``): the code redirect with ``state`` and ``iss`` (RFC 6749 section
        4.1.2, RFC 9207); deny (``authorization.denied``): an ``access_denied`` redirect; a 400/403 page for a
        bad form. All that can fail runs before the decision, and an approval is written with its effects in
        one transaction: after a 503 the form can be resent.
        """
        if form is None:
            return pages.error_page(400, "The consent form was malformed.")
        found = self._bound_txn(cookie, "authenticated")
        if isinstance(found, Answer):
            return found
        txn = found
        # CSRF (RFC 6749 section 10.12): the form's token must be the one issued with this page.
        if not same_hash(form.get("csrf", ""), txn.csrf_hash):
            return pages.error_page(403, "The consent form expired or did not come from this site.")
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return pages.error_page(400, "No decision was received.", next_step="Go back and choose Approve or Deny.")
        upstream = self._upstream_tokens(txn)
        if decision == "approve":
            return self._issue(txn, upstream, expected="authenticated", csrf_hash=txn.csrf_hash)
        try:
            # One decision per transaction, by a conditional write (authenticated -> decided).
            self._txns.decide(txn.txn_id, expected="authenticated", csrf_hash=txn.csrf_hash, now=int(self._clock()))
        except ConditionFailed:
            return pages.error_page(400, "This authorization request was already decided.")
        self._revoke_upstream(upstream.refresh)
        audit("authorization.denied", outcome="denied", actor="user", reason="user_denied", **party_fields(txn))
        return self._error_redirect(txn.redirect_uri, txn.state, "access_denied", "the user denied the request")

    def _issue(
        self, txn: PendingAuthorizationRequest, upstream: Upstream, *, expected: RequestStatus, csrf_hash: str | None
    ) -> Answer:
        """Decide ``txn``, write its grant, code and consent in one transaction, issue the code (RFC 6749 s4.1.2)."""
        now = int(self._clock())
        grant_id = txn.origin_jti or ""
        if not upstream.access or not upstream.refresh or not grant_id:
            return self._error_redirect(
                txn.redirect_uri, txn.state, "server_error", "the sign-in session is incomplete"
            )
        context = grant_context(grant_id)
        granted = frozenset(txn.allowed_scopes)
        found = self._consents.get(txn.sub or "", txn.client_id)
        previous = found if found is not None and found.is_live(now) else None
        code = new_secret()  # 256 bits from the CSPRNG; stored only as its SHA-256
        approval = Approval(
            # Pending until its code is redeemed, and gone with the code if it never is.
            grant=Grant(
                grant_id=grant_id,
                sub=txn.sub or "",
                client_id=txn.client_id,
                client_name=txn.client_name,
                scopes=granted,
                created_at=now,
                expires_at=now + CODE_LIFETIME_SECONDS,
                status="pending",
                username=txn.username or "",
                email=txn.email or "",
                last_used_at=now,
                upstream_refresh=self._cipher.encrypt(upstream.refresh.encode(), context),
            ),
            code=AuthorizationCode(
                code_hash=sha256_hex(code),
                client_id=txn.client_id,
                redirect_uri=txn.redirect_uri,
                code_challenge=txn.code_challenge,
                resource=txn.resource,
                scopes=tuple(catalogue.order(granted)),
                grant_id=grant_id,
                upstream_access=self._cipher.encrypt(upstream.access.encode(), context),
                access_expires_at=upstream.access_expires_at,
                created_at=now,
                expires_at=now + CODE_LIFETIME_SECONDS,
            ),
            consent=Consent(
                sub=txn.sub or "",
                client_id=txn.client_id,
                scopes=granted | (previous.scopes if previous else frozenset()),
                created_at=previous.created_at if previous else now,
                last_used_at=now,
                expires_at=now + self._s.grant_lifetime_seconds,
                # The redirect URI this approval was for (shown on the consent page, or
                # already approved): RFC 9700 section 4.1.
                redirect_uris=(
                    previous.with_redirect(txn.redirect_uri, redirect_uri_registered)
                    if previous
                    else (txn.redirect_uri,)
                ),
            ),
        )
        try:
            self._txns.approve(txn.txn_id, approval, expected=expected, csrf_hash=csrf_hash, now=now)
        except DuplicateGrant:
            # Cognito's origin_jti is unique per sign-in session; a duplicate means a replay.
            return self._error_redirect(txn.redirect_uri, txn.state, "access_denied", "this sign-in was already used")
        except ConditionFailed:
            return pages.error_page(400, "This authorization request was already decided.")
        # The "authorization granted" line, with the user (an audit event, INFO).
        audit("authorization.granted", actor="user", grant_id=grant_id, scopes=granted, **party_fields(txn))
        location = with_query(txn.redirect_uri, {"code": code, "state": txn.state, "iss": self._s.issuer})
        return redirect(location, cookies=(self.cookie.clear(),))

    def _upstream_tokens(self, txn: PendingAuthorizationRequest) -> Upstream:
        """The Cognito tokens kept on the transaction; empty if unusable (``DependencyError`` if KMS is down)."""
        if txn.upstream_tokens is None:
            return Upstream("", "", 0)
        try:
            data = json.loads(self._cipher.decrypt(txn.upstream_tokens, txn_context(txn.txn_id)))
            return Upstream(str(data["access_token"]), str(data["refresh_token"]), int(data["access_expires_at"]))
        except (CiphertextRejected, ValueError, KeyError, TypeError):
            logger.warning("upstream tokens of a transaction did not decrypt")
            return Upstream("", "", 0)

    def _abandon(self, txn: PendingAuthorizationRequest, status: RequestStatus, refresh: str | None) -> None:
        """End a transaction that will not complete, and let go of Cognito's session."""
        with contextlib.suppress(ConditionFailed):
            self._txns.decide(txn.txn_id, expected=status, csrf_hash=None, now=int(self._clock()))
        self._revoke_upstream(refresh)

    def _revoke_upstream(self, refresh: object) -> None:
        if not isinstance(refresh, str) or not refresh:
            return
        try:
            self._cognito.revoke(refresh)
        except (DependencyError, CognitoInvalidGrant) as exc:
            # Best effort: the kit issued nothing from this session, so nothing can use it.
            logger.warning("upstream revocation failed", extra={"detail": exc.__class__.__name__})


@dataclass(frozen=True)
class Upstream:
    """Cognito's tokens for one sign-in: access token, refresh token, access-token expiry (epoch s)."""

    access: str
    refresh: str
    access_expires_at: int
