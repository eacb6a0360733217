"""Lambda entry point of the MCP function: API Gateway HTTP API (payload 2.0) -> ASGI.

Everything expensive (imports, settings validation, the MCPServer with its tool schemas)
happens at module import, in the Lambda init phase, which SnapStart snapshots. Warm
invocations only run the request.

The cyclic garbage collector is paused for that init: the imports and the server create
hundreds of thousands of objects that live as long as the container, and the collector would
otherwise walk them in ~80 passes (about 70 ms of CPU of a cold start, measured by
``make bench``). After init they are frozen (``gc.freeze``: moved out of every later
collection, so warm invocations do not walk them either) and the collector runs again.
"""

from __future__ import annotations

import gc

gc.disable()

import importlib  # noqa: E402
import logging  # noqa: E402
from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from mangum import Mangum  # noqa: E402

from functions.core.cognito.jwks import tls_context  # noqa: E402
from functions.core.platform import aws, topology  # noqa: E402
from functions.core.platform.metrics import flushed  # noqa: E402
from functions.core.platform.observability import logger  # noqa: E402
from functions.mcp_server.factory import create_endpoint  # noqa: E402

try:
    # Mangum logs every request at INFO; API Gateway access logs already record them.
    logging.getLogger("mangum").setLevel(logging.WARNING)
    _settings = topology.MCP_SERVER.load()
    # lifespan="off": the endpoint keeps no per-app state that needs starting (see app.py).
    _asgi = Mangum(create_endpoint(_settings), lifespan="off")
    # Work the first request would otherwise pay, done in the init phase (which SnapStart
    # snapshots): creating the botocore client (~100 ms), the TLS context the JWKS fetch uses
    # (loading the CA store, ~100 ms with OpenSSL 3) and loading anyio's asyncio backend.
    aws.dynamodb()
    if _settings.jwks_url.startswith("https:"):
        tls_context()
    importlib.import_module("anyio._backends._asyncio")
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
