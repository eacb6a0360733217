"""Lambda entry point of the MCP function: API Gateway HTTP API (payload 2.0) -> ASGI.

Everything expensive (imports, settings validation, the MCPServer with its tool schemas)
happens at module import, in the Lambda init phase, which SnapStart snapshots. Warm
invocations only run the request.

The order of the init matters:

1. The cyclic garbage collector is paused: the imports and the server create hundreds of
   thousands of objects that live as long as the container, and the collector would otherwise
   walk them in ~80 passes (about 70 ms of CPU of a cold start, measured by ``make bench``).
   After init they are frozen (``gc.freeze``: moved out of every later collection, so warm
   invocations do not walk them either) and the collector runs again.
2. The settings are validated first, so that in an init without SnapStart the JWKS fetch can
   start (``jwks.prefetch_on_cold_start``, a thread) before the MCP SDK's imports, the largest
   part of the init: the round trip to Cognito overlaps them instead of delaying the first
   request. Nothing waits for it: a request that comes before it finished fetches for itself.
3. The endpoint, the DynamoDB client and anyio's asyncio backend are built.
"""

from __future__ import annotations

import gc

gc.disable()

import importlib  # noqa: E402
import logging  # noqa: E402
from typing import Any  # noqa: E402

from functions.core.cognito.jwks import prefetch_on_cold_start, tls_context  # noqa: E402
from functions.core.cognito.jwt_verifier import jwks_for  # noqa: E402
from functions.core.platform import topology  # noqa: E402

try:
    _settings = topology.MCP_SERVER.load()
    _jwks = jwks_for(_settings)
    _prefetch = prefetch_on_cold_start(_jwks)

    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum

    from functions.core.platform import aws
    from functions.core.platform.metrics import flushed
    from functions.core.platform.observability import logger
    from functions.mcp_server.factory import create_endpoint

    # Mangum logs every request at INFO; API Gateway access logs already record them.
    logging.getLogger("mangum").setLevel(logging.WARNING)
    # lifespan="off": the endpoint keeps no per-app state that needs starting (see app.py).
    _asgi = Mangum(create_endpoint(_settings, jwks=_jwks), lifespan="off")
    # Work the first request would otherwise pay, done in the init phase (which SnapStart
    # snapshots): creating the botocore client (~25 ms) and loading anyio's asyncio backend.
    aws.dynamodb()
    importlib.import_module("anyio._backends._asyncio")
    if _prefetch is None and _settings.jwks_url.startswith("https:"):
        # The TLS context the first request's JWKS fetch uses (loading the CA store, ~100 ms
        # with OpenSSL 3); a prefetch builds it in its own thread.
        tls_context()
finally:  # also when init fails (settings), so an importing process keeps its collector
    gc.freeze()
    gc.enable()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (API Gateway HTTP API, payload 2.0): ``/mcp`` through Mangum to the ASGI app.

    The invocation's metrics are flushed when it returns.
    """
    return _asgi(event, context)
