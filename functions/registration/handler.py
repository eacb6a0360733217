"""Lambda entry point of the registration function: RFC 7591 DCR and RFC 7592 management.

Thin: parse the API Gateway event, call ``RegistrationService``, shape the answer
(``functions.registration.api``). CORS on ``/register`` lets browser-based MCP clients
register (the preflight is answered by the router).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from functions.core.clients.store import DynamoClientStore
from functions.core.platform import topology
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.state.ratelimit import DynamoRateLimiter
from functions.registration.api import make_handler
from functions.registration.service import RegistrationService


def _service_from_env() -> RegistrationService:
    settings = topology.REGISTRATION.load()
    store = DynamoClientStore(settings.clients_table, idle_days=settings.client_idle_days)
    return RegistrationService(settings, store, DynamoRateLimiter(settings.artefacts_table))


_service = _service_from_env()
router = make_handler(lambda: _service)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: an API Gateway HTTP API (payload 2.0) event in, its answer out; the
    invocation's metrics are flushed when it returns."""
    return router(event, context)
