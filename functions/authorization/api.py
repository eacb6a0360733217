"""The authorization function's HTTP shape: /authorize, /oauth/callback, /consent, /account/agents.

Every answer is a page or a redirect, never raw JSON: unreadable parameters reach the flow
as None (it shows a page saying so), an unknown route is a 404 page and a dependency
failure the 503 page with ``Retry-After``; so is a client whose metadata document cannot be
fetched now (``CimdUnavailable``: its own page, not counted as the kit's dependency outage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from functions.authorization import pages
from functions.authorization.account import AccountService, Cookies
from functions.authorization.account_session import state_nonce
from functions.authorization.flow import AuthorizationService
from functions.core.clients.cimd_fetch import CimdUnavailable
from functions.core.platform.edge import Request, Router
from functions.core.platform.http import Answer, RequestRejected
from functions.core.platform.routes import (
    ACCOUNT_AGENTS,
    ACCOUNT_REVOKE,
    ACCOUNT_REVOKE_ALL,
    AUTHORIZATION,
    CALLBACK,
    CONSENT,
    CONSENT_RELOADED,
)

MAX_FORM_BYTES: Final = 8 * 1024


def _readable(read: Callable[[], dict[str, str]]) -> dict[str, str] | None:
    """The parameters, or None when unreadable: a repeated parameter (RFC 6749 section 3.1),
    text no UTF-8 URL can carry (it would break echoing ``state``), or a bad form body."""
    try:
        return read()
    except RequestRejected:
        return None


def _document_may_fail(step: Callable[[], Answer]) -> Answer:
    """``step``'s answer, or the 503 page when the client's metadata document cannot be fetched now.

    RFC 6749 section 4.1.2.1: without the document the redirect URI is unverified, so a page,
    never a redirect. The flow resolves the client before it stores or spends anything.
    """
    try:
        return step()
    except CimdUnavailable:
        return pages.client_unavailable_page()


def _cookies(page: AccountService, request: Request) -> Cookies:
    return Cookies(request.cookie(page.sign_in_cookie), request.cookie(page.session_cookie))


def make_handler(
    service: Callable[[], AuthorizationService], account: Callable[[], AccountService] | None = None
) -> Router:
    """The authorization function's router; ``service`` and ``account`` build their services on first use.

    Without ``account`` the connected-agents routes answer the 404 page.
    """
    router = Router(not_found=lambda: pages.error_page(404, "Not found."), unavailable=pages.unavailable_page)

    @router.route(AUTHORIZATION)
    def authorize(request: Request) -> Answer:
        return _document_may_fail(lambda: service().authorize(_readable(request.query)))

    @router.route(CALLBACK)
    def callback(request: Request) -> Answer:
        params = _readable(request.query)
        # The account page's own sign-in comes back here too, with an ``account.`` state.
        if account is not None and params is not None and state_nonce(params.get("state", "")) is not None:
            page = account()
            return page.callback(params, _cookies(page, request))
        svc = service()
        return _document_may_fail(lambda: svc.callback(params, request.cookie(svc.cookie.name)))

    @router.route(CONSENT)
    def consent(request: Request) -> Answer:
        svc = service()
        return svc.consent(_readable(lambda: request.form(MAX_FORM_BYTES)), request.cookie(svc.cookie.name))

    @router.route(CONSENT_RELOADED)
    def reloaded(request: Request) -> Answer:
        # A bookmarked or reloaded consent URL: a page that says what to do, never raw JSON.
        return pages.finished_page()

    if account is not None:
        connected = account

        @router.route(ACCOUNT_AGENTS)
        def agents(request: Request) -> Answer:
            page = connected()
            return page.agents(_readable(request.query), _cookies(page, request))

        @router.route(ACCOUNT_REVOKE)
        def revoke(request: Request) -> Answer:
            page = connected()
            return page.revoke(_readable(lambda: request.form(MAX_FORM_BYTES)), _cookies(page, request))

        @router.route(ACCOUNT_REVOKE_ALL)
        def revoke_all(request: Request) -> Answer:
            page = connected()
            return page.revoke_all(_readable(lambda: request.form(MAX_FORM_BYTES)), _cookies(page, request))

    return router
