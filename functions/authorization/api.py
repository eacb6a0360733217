"""The authorization function's HTTP shape: routes and the outage page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.authorization import pages
from functions.authorization.flow import AuthorizationService
from functions.authorization.web import Answer, cookie_value, form_params, query_params
from functions.core.platform.errors import DependencyError
from functions.core.platform.http import LambdaHandler
from functions.core.platform.observability import logger
from functions.core.platform.routes import AUTHORIZE_PATH, CALLBACK_PATH, CONSENT_PATH


def make_handler(service: Callable[[], AuthorizationService]) -> LambdaHandler:
    routes: dict[str, Callable[[AuthorizationService, dict[str, Any]], Answer]] = {
        f"GET {AUTHORIZE_PATH}": lambda svc, ev: svc.authorize(query_params(ev)),
        f"GET {CALLBACK_PATH}": lambda svc, ev: svc.callback(query_params(ev), cookie_value(ev, svc.cookie.name)),
        f"POST {CONSENT_PATH}": lambda svc, ev: svc.consent(form_params(ev), cookie_value(ev, svc.cookie.name)),
        # A bookmarked or reloaded consent URL: a page that says what to do, never raw JSON.
        f"GET {CONSENT_PATH}": lambda svc, ev: pages.finished_page(),
    }

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
