"""The authorization function's HTTP shape: /authorize, /oauth/callback, /consent.

Every answer is a page or a redirect, never raw JSON: unreadable parameters reach the flow
as None (it shows a page saying so), an unknown route is a 404 page and a dependency
failure the 503 page with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from functions.authorization import pages
from functions.authorization.flow import AuthorizationService
from functions.core.platform.edge import Request, Router
from functions.core.platform.http import Answer, RequestRejected
from functions.core.platform.routes import AUTHORIZATION, CALLBACK, CONSENT, CONSENT_RELOADED

MAX_FORM_BYTES: Final = 8 * 1024


def _readable(read: Callable[[], dict[str, str]]) -> dict[str, str] | None:
    """The parameters, or None when unreadable: a repeated parameter (RFC 6749 section 3.1),
    text no UTF-8 URL can carry (it would break echoing ``state``), or a bad form body."""
    try:
        return read()
    except RequestRejected:
        return None


def make_handler(service: Callable[[], AuthorizationService]) -> Router:
    """The authorization function's router; ``service`` builds the service on first use."""
    router = Router(not_found=lambda: pages.error_page(404, "Not found."), unavailable=pages.unavailable_page)

    @router.route(AUTHORIZATION)
    def authorize(request: Request) -> Answer:
        return service().authorize(_readable(request.query))

    @router.route(CALLBACK)
    def callback(request: Request) -> Answer:
        svc = service()
        return svc.callback(_readable(request.query), request.cookie(svc.cookie.name))

    @router.route(CONSENT)
    def consent(request: Request) -> Answer:
        svc = service()
        return svc.consent(_readable(lambda: request.form(MAX_FORM_BYTES)), request.cookie(svc.cookie.name))

    @router.route(CONSENT_RELOADED)
    def reloaded(request: Request) -> Answer:
        # A bookmarked or reloaded consent URL: a page that says what to do, never raw JSON.
        return pages.finished_page()

    return router
