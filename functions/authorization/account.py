"""The person's connected agents: ``GET /account/agents``, ``POST /account/agents/revoke[-all]``.

The person signs in through Cognito's managed login with the gateway client (the kit's own
authorization-code + PKCE request, scope ``openid email``; :mod:`account_session`), then sees
each active grant and can revoke one or all of them. Revocation goes through
``GrantAdministration``: the grant is revoked (``/mcp`` refuses it within
``GRANT_CACHE_SECONDS``), Cognito's refresh token is revoked, and the remembered consent is
forgotten, so the agent's next authorization shows the consent page (RFC 6749 section 10.2).

Every dependency failure propagates as ``DependencyError`` (503 page, safe to retry). A
deployment without the grants table's ``by_user`` index (``kit:grantIndexes``, during an
upgrade) answers every route of the page with a 503 page saying so, before any sign-in or
change: never an empty list that would claim no app has access.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from functions.authorization import account_pages, pages
from functions.authorization.account_session import (
    ACCOUNT_STATE_PREFIX,
    SESSION_COOKIE,
    SESSION_LIFETIME_SECONDS,
    SIGN_IN_COOKIE,
    SIGN_IN_LIFETIME_SECONDS,
    AccountCookies,
    DynamoAccountSignIns,
    Session,
    cookie_name,
    state_matches,
)
from functions.authorization.identity import learn_user
from functions.authorization.web import redirect, set_cookie, with_query
from functions.core.clients.cimd_fetch import CimdUnavailable
from functions.core.clients.ids import looks_like_url
from functions.core.clients.records import ClientRecord, ClientResolver
from functions.core.cognito.gateway_secret import SecretSource, gateway_pkce_verifier
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.oauth_client import CognitoInvalidGrant, CognitoOAuth, authorize_url
from functions.core.oauth import scopes as catalogue
from functions.core.platform.crypto import new_secret, s256, same_bytes
from functions.core.platform.errors import DependencyError
from functions.core.platform.http import Answer
from functions.core.platform.observability import logger
from functions.core.platform.routes import ACCOUNT_AGENTS_PATH, CALLBACK_PATH
from functions.core.platform.settings import FacadeSettings
from functions.core.platform.topology import GRANTS_BY_USER
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grant_index import IndexNotDeployed
from functions.core.state.grants import Grant, GrantReader

SIGN_IN_AGAIN = "Open this server's connected-apps page again to sign in."
# Longest grant id read from a form: 4-byte UTF-8 characters still keep GRANT#<id> under the key limit.
MAX_GRANT_ID: Final = 256


@dataclass(frozen=True)
class Cookies:
    """The account cookies a request carried (raw values, None when absent)."""

    sign_in: str | None
    session: str | None


class AccountService:
    """The connected-agents page: sign-in, listing, revocation (plain logic on dicts and strings).

    Each method returns the ``Answer`` to send; ``clock`` gives epoch seconds. Raises ``DependencyError``
    (503, safe to retry) when DynamoDB, KMS or Cognito fails. Listings are index reads (eventually consistent).
    """

    def __init__(
        self,
        settings: FacadeSettings,
        *,
        admin: GrantAdministration,
        grants: GrantReader,
        clients: ClientResolver,
        sign_ins: DynamoAccountSignIns,
        cognito: CognitoOAuth,
        secret: SecretSource,
        verifier: CognitoAccessTokenVerifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._admin, self._grants, self._clients, self._sign_ins = admin, grants, clients, sign_ins
        self._cognito, self._secret, self._verifier, self._clock = cognito, secret, verifier, clock
        self._cookies = AccountCookies(secret)
        secure = settings.secure_cookies
        self._secure = secure
        self.sign_in_cookie = cookie_name(SIGN_IN_COOKIE, secure=secure)
        self.session_cookie = cookie_name(SESSION_COOKIE, secure=secure)
        self._page_url = settings.base_url + ACCOUNT_AGENTS_PATH

    # ------------------------------------------------------------------ GET /account/agents
    def agents(self, query: dict[str, str] | None, cookies: Cookies) -> Answer:
        """The page for a signed-in person; otherwise a redirect to Cognito's sign-in.

        ``query`` may name a ``notice`` (one of ``account_pages.NOTICES``); anything else is ignored.
        Without the ``by_user`` index: ``account_pages.not_deployed_page``.
        """
        if not self.listable:
            return account_pages.not_deployed_page()
        session = self._cookies.session(cookies.session, self._clock())
        if session is None:
            return self._sign_in()
        agents = tuple(self._view(grant) for grant in self._admin.active_grants_of_user(session.sub))
        return account_pages.agents_page(
            server_name=self._s.resource_name,
            user=session.email,
            agents=agents,
            csrf=self._cookies.csrf_token(session),
            notice=(query or {}).get("notice"),
        )

    @property
    def listable(self) -> bool:
        """Whether this deployment has the ``by_user`` index the page lists and revokes through."""
        try:
            self._admin.require(GRANTS_BY_USER)
        except IndexNotDeployed:
            return False
        return True

    def _sign_in(self) -> Answer:
        """Start the kit's own authorization-code + PKCE sign-in at Cognito (RFC 6749 section 4.1, RFC 7636)."""
        nonce = new_secret()
        now = int(self._clock())
        self._sign_ins.create(nonce, now + SIGN_IN_LIFETIME_SECONDS)
        state = ACCOUNT_STATE_PREFIX + nonce
        params = {
            "response_type": "code",
            "client_id": self._s.gateway_client_id,
            "redirect_uri": self._s.base_url + CALLBACK_PATH,
            "state": state,
            # Who the person is, nothing more: no kit scope, so the token it yields authorizes no tool.
            "scope": " ".join(catalogue.GATEWAY_OIDC_SCOPES),
            "code_challenge": s256(gateway_pkce_verifier(self._secret, state)),
            "code_challenge_method": "S256",
        }
        if self._s.resource_binding:
            # The access token is verified like an agent's (audience = the MCP URL, RFC 8707);
            # it carries no kit scope and no grant stands behind it, so /mcp refuses it.
            params["resource"] = self._s.mcp_url
        if self._s.default_identity_provider:
            params["identity_provider"] = self._s.default_identity_provider
        cookie = set_cookie(
            self.sign_in_cookie, self._cookies.sign_in_value(nonce), SIGN_IN_LIFETIME_SECONDS, secure=self._secure
        )
        return redirect(authorize_url(self._s, params), cookies=(cookie,))

    # ------------------------------------------------------------------ GET /oauth/callback (account state)
    def callback(self, params: dict[str, str], cookies: Cookies) -> Answer:
        """Cognito's answer to the account sign-in: check, exchange, then a session and 303 to the page.

        The state must be the one this browser's sign-in cookie binds (RFC 6749 section 10.12),
        and the sign-in is used once (a conditional update). Cognito's refresh token is revoked
        at once: the page needs only to know who signed in.
        """
        nonce = self._cookies.sign_in_nonce(cookies.sign_in)
        state = params.get("state", "")
        if nonce is None or not state_matches(state, nonce):
            return pages.error_page(400, "This sign-in does not belong to this browser.", next_step=SIGN_IN_AGAIN)
        code = params.get("code")
        if "error" in params or not code:
            return pages.error_page(400, "The sign-in was not completed.", next_step=SIGN_IN_AGAIN)
        try:
            tokens = self._cognito.exchange_code(
                code, self._s.base_url + CALLBACK_PATH, gateway_pkce_verifier(self._secret, state)
            )
        except CognitoInvalidGrant:
            # Cognito's code is single use (RFC 6749 section 4.1.2): a retried callback finds
            # it spent. Start again; Cognito's own session signs the person in without a prompt.
            return redirect(self._page_url, cookies=(self._clear(self.sign_in_cookie),))
        refresh = tokens.refresh_token or ""
        user = learn_user(self._s, self._verifier, tokens.access_token, tokens.id_token)
        try:
            used = user is not None and self._sign_ins.consume(nonce, int(self._clock()))
        finally:
            self._let_go(refresh)
        if user is None:
            return pages.error_page(400, "The sign-in could not be verified.", next_step=SIGN_IN_AGAIN)
        if not used:
            return pages.error_page(400, "This sign-in was already used or expired.", next_step=SIGN_IN_AGAIN)
        session = Session(user.sub, int(self._clock()) + SESSION_LIFETIME_SECONDS, new_secret(), user.email)
        cookie = set_cookie(
            self.session_cookie, self._cookies.session_value(session), SESSION_LIFETIME_SECONDS, secure=self._secure
        )
        logger.info("account page signed in", extra={"sub": user.sub})
        return redirect(self._page_url, cookies=(cookie, self._clear(self.sign_in_cookie)), status=303)

    def _let_go(self, refresh: str) -> None:
        """Revoke Cognito's refresh token of the account sign-in (RFC 7009); best effort."""
        if not refresh:
            return
        try:
            self._cognito.revoke(refresh)
        except (DependencyError, CognitoInvalidGrant) as exc:
            logger.warning("account sign-in: Cognito revocation failed", extra={"detail": exc.__class__.__name__})

    # ------------------------------------------------------------------ POST /account/agents/revoke[-all]
    def revoke(self, form: dict[str, str] | None, cookies: Cookies) -> Answer:
        """Revoke the signed-in person's grant named by ``grant_id``, then 303 to the page with a notice.

        A grant id that is not one of the person's grants, or one already fully revoked, changes
        nothing (``gone``). ``DependencyError`` (503) when DynamoDB, KMS or Cognito fails; the same
        form sent again finishes the revocation.
        """
        session = self._checked(form, cookies)
        if isinstance(session, Answer):
            return session
        wanted = (form or {}).get("grant_id", "")
        # A strongly consistent read of the grant, which must be the signed-in person's. Grant ids
        # are Cognito's origin_jti (a UUID): a longer one names no grant, and would exceed
        # DynamoDB's 2,048-byte partition key (a ValidationException, so a 503 for bad input).
        grant = self._grants.get(wanted) if wanted and len(wanted) <= MAX_GRANT_ID else None
        if grant is None or not same_bytes(grant.sub, session.sub):
            return self._back("gone")
        if grant.status == "revoked" and not grant.upstream_revocation_pending:
            return self._back("gone")
        # Also when already revoked with Cognito's refresh token still pending: a retry after a
        # 503 finishes the revocation (GrantRevoker derives what is left from the stored grant).
        self._admin.revoke_grant(grant, actor="user", reason="user_revoked")
        return self._back("revoked")

    def revoke_all(self, form: dict[str, str] | None, cookies: Cookies) -> Answer:
        """Revoke every grant of the signed-in person and forget every consent, then 303 back."""
        session = self._checked(form, cookies)
        if isinstance(session, Answer):
            return session
        self._admin.revoke_user(session.sub, actor="user", reason="user_revoked")
        return self._back("revoked_all")

    def _checked(self, form: dict[str, str] | None, cookies: Cookies) -> Session | Answer:
        """The session of a form post with a valid session cookie and CSRF token, else an error page.

        Without the ``by_user`` index: ``account_pages.not_deployed_page``, before anything changes.
        """
        if not self.listable:
            return account_pages.not_deployed_page()
        if form is None:
            return pages.error_page(400, "The form was malformed.", next_step=SIGN_IN_AGAIN)
        session = self._cookies.session(cookies.session, self._clock())
        if session is None:
            return pages.error_page(403, "Your session ended; nothing was changed.", next_step=SIGN_IN_AGAIN)
        # CSRF (RFC 6749 section 10.12, as the consent form): a token bound to this session.
        if not self._cookies.csrf_ok(session, form.get("csrf", "")):
            return pages.error_page(403, "The form expired or did not come from this site.", next_step=SIGN_IN_AGAIN)
        return session

    def _back(self, notice: account_pages.Notice) -> Answer:
        # RFC 9110 section 15.4.4: 303 turns the POST into a GET of the page.
        return redirect(with_query(self._page_url, {"notice": notice}), status=303)

    def _clear(self, name: str) -> str:
        return set_cookie(name, "", 0, secure=self._secure)

    def _view(self, grant: Grant) -> account_pages.AgentView:
        """How the page shows one grant (``DependencyError`` if the client's record is unreadable).

        The agent's name is the one the grant recorded at approval, else the client record's
        (grants of schema version 2 carry none), else its client id or CIMD host. A Client ID
        Metadata Document client has no registration to lose: its grant alone governs its access
        (``/mcp`` reads no document either), so its document is fetched only for the name of a
        grant that recorded none, and a failed fetch (refused or ``CimdUnavailable``) never shows it as
        "no longer registered".
        """
        cimd = looks_like_url(grant.client_id)
        client: ClientRecord | None = None
        if not (cimd and grant.client_name):
            # A document that cannot be fetched now only costs the page the agent's name.
            with contextlib.suppress(CimdUnavailable):
                client = self._clients.resolve(grant.client_id)
        agent_id = (urlsplit(grant.client_id).hostname or grant.client_id) if cimd else grant.client_id
        return account_pages.AgentView(
            grant_id=grant.grant_id,
            agent_name=grant.client_name or (client.client_name if client is not None else "") or agent_id,
            agent_id=agent_id,
            cimd=cimd,
            registered=cimd or client is not None,
            scopes=tuple((s, pages._describe(s)) for s in catalogue.order(grant.scopes)),
            granted_at=grant.created_at,
            last_used_at=grant.last_used_at,
            expires_at=grant.expires_at,
        )
