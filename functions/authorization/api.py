"""The authorization function's HTTP shape: routes and the outage page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.authorization import pages
from functions.authorization.account import AccountService, Cookies
from functions.authorization.account_session import state_nonce
from functions.authorization.flow import AuthorizationService
from functions.authorization.web import Answer, cookie_value, form_params, query_params
from functions.core.platform.errors import DependencyError
from functions.core.platform.http import LambdaHandler
from functions.core.platform.observability import logger
from functions.core.platform.routes import (
    ACCOUNT_AGENTS_PATH,
    ACCOUNT_REVOKE_ALL_PATH,
    ACCOUNT_REVOKE_PATH,
    AUTHORIZE_PATH,
    CALLBACK_PATH,
    CONSENT_PATH,
)


def _cookies(page: AccountService, event: dict[str, Any]) -> Cookies:
    return Cookies(cookie_value(event, page.sign_in_cookie), cookie_value(event, page.session_cookie))


def _account_routes(
    account: Callable[[], AccountService],
) -> dict[str, Callable[[AuthorizationService, dict[str, Any]], Answer]]:
    def agents(_: AuthorizationService, event: dict[str, Any]) -> Answer:
        page = account()
        return page.agents(query_params(event), _cookies(page, event))

    def revoke(_: AuthorizationService, event: dict[str, Any]) -> Answer:
        page = account()
        return page.revoke(form_params(event), _cookies(page, event))

    def revoke_all(_: AuthorizationService, event: dict[str, Any]) -> Answer:
        page = account()
        return page.revoke_all(form_params(event), _cookies(page, event))

    return {
        f"GET {ACCOUNT_AGENTS_PATH}": agents,
        f"POST {ACCOUNT_REVOKE_PATH}": revoke,
        f"POST {ACCOUNT_REVOKE_ALL_PATH}": revoke_all,
    }


def make_handler(
    service: Callable[[], AuthorizationService], account: Callable[[], AccountService] | None = None
) -> LambdaHandler:
    """The authorization function's handler; ``account`` serves the connected-agents page (404 without it)."""
    routes: dict[str, Callable[[AuthorizationService, dict[str, Any]], Answer]] = {
        f"GET {AUTHORIZE_PATH}": lambda svc, ev: svc.authorize(query_params(ev)),
        f"GET {CALLBACK_PATH}": lambda svc, ev: callback(svc, ev),
        f"POST {CONSENT_PATH}": lambda svc, ev: svc.consent(form_params(ev), cookie_value(ev, svc.cookie.name)),
        # A bookmarked or reloaded consent URL: a page that says what to do, never raw JSON.
        f"GET {CONSENT_PATH}": lambda svc, ev: pages.finished_page(),
    }
    if account is not None:
        routes |= _account_routes(account)

    def callback(svc: AuthorizationService, event: dict[str, Any]) -> Answer:
        params = query_params(event)
        # The account page's own sign-in comes back here too, with an ``account.`` state.
        if account is not None and params is not None and state_nonce(params.get("state", "")) is not None:
            page = account()
            return page.callback(params, _cookies(page, event))
        return svc.callback(params, cookie_value(event, svc.cookie.name))

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        route = routes.get(str(event.get("routeKey", "")))
        if route is None:
            return pages.error_page(404, "Not found.").to_lambda()
        try:
            answer = route(service(), event)
        except DependencyError as exc:
            # Fail closed and honestly: 503 + Retry-After, never a 500 and never an allow.
            logger.warning("authorization dependency failed", extra={"detail": str(exc)})
            answer = pages.unavailable_page()
        return answer.to_lambda()

    return handle
