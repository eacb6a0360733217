"""The token function's HTTP shape: routes, CORS preflight, error and outage answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.core.platform.errors import DependencyError, OAuthError
from functions.core.platform.http import LambdaHandler, header
from functions.core.platform.observability import logger
from functions.core.platform.routes import REVOKE_PATH, TOKEN_PATH
from functions.token.service import TokenService
from functions.token.web import NO_STORE, PREFLIGHT, error_answer, form_params, json_answer, unavailable


def make_handler(service: Callable[[], TokenService]) -> LambdaHandler:
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        route = str(event.get("routeKey", ""))
        if route in (f"OPTIONS {TOKEN_PATH}", f"OPTIONS {REVOKE_PATH}"):
            return {"statusCode": 204, "headers": {**PREFLIGHT, **NO_STORE}, "body": ""}
        try:
            form = form_params(event)
            authorization = header(event, "authorization")
            if route == f"POST {TOKEN_PATH}":
                return json_answer(200, service().token(form, authorization))
            if route == f"POST {REVOKE_PATH}":
                service().revoke(form, authorization)
                return json_answer(200, None)  # RFC 7009 section 2.2: 200, also for unknown tokens
            return json_answer(404, {"error": "not_found"})
        except OAuthError as err:
            logger.info("token endpoint refused", extra={"error": err.error, "route": route})
            return error_answer(err)
        except DependencyError as exc:
            # Fail closed: 503 + Retry-After, never a 500 and never a token.
            logger.warning("token dependency failed", extra={"detail": str(exc)})
            return unavailable()

    return handle
