"""Lambda entry point of the registration function: RFC 7591 DCR and RFC 7592 management.

Thin: parse the API Gateway event, call ``RegistrationService``, shape the answer
(``functions.registration.app``). CORS on ``/register`` lets browser-based MCP clients
register (the preflight is answered by the router).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from functions.core.clients.store import DynamoClientStore
from functions.core.platform import settings as settings_mod
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.state.ratelimit import DynamoRateLimiter
from functions.registration.app import build_app
from functions.registration.service import RegistrationService


def _service_from_env() -> RegistrationService:
    settings = settings_mod.load(settings_mod.RegistrationSettings)
    store = DynamoClientStore(settings.clients_table, idle_days=settings.client_idle_days)
    return RegistrationService(settings, store, DynamoRateLimiter(settings.artefacts_table))


app = build_app(_service_from_env())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: an API Gateway HTTP API (payload 2.0) event in, its answer out; the
    invocation's metrics are flushed when it returns."""
    return app.resolve(event, context)
