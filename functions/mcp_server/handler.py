"""Lambda entry point of the MCP function: API Gateway HTTP API (payload 2.0) -> ASGI.

Everything expensive (imports, settings validation, the MCPServer with its tool schemas)
happens at module import, in the Lambda init phase, which SnapStart snapshots. Warm
invocations only run the request.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from functions.core.cognito.jwks import tls_context
from functions.core.platform import aws, topology
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.mcp_server.factory import create_endpoint

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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (API Gateway HTTP API, payload 2.0): ``/mcp`` through Mangum to the ASGI app.

    The invocation's metrics are flushed when it returns.
    """
    return _asgi(event, context)
