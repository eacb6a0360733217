"""Lambda entry point of the metadata function: the two discovery documents.

Powertools' event-handler router is enough here (no ASGI stack), which keeps this
function's cold start small. CORS lets browser-based MCP clients read the documents.
The documents are built from settings alone: no dependency call (no AWS service, no
network), so no outage can reach this function's answers.
"""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths

from functions.core.platform import settings as settings_mod
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.platform.routes import AS_METADATA_PATH, PRM_MCP_PATH, PRM_ROOT_PATH
from functions.metadata.documents import authorization_server_metadata, protected_resource_metadata

_settings = settings_mod.load(settings_mod.MetadataSettings)
# Documents change only on redeploy; let clients and proxies reuse them for a while.
CACHE_CONTROL: Final = "public, max-age=300"

app = APIGatewayHttpResolver(
    cors=CORSConfig(allow_origin="*", allow_headers=["mcp-protocol-version"], max_age=86400, allow_credentials=False)
)


def _json(document: dict[str, Any]) -> Response[Any]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=document,
        headers={"Cache-Control": CACHE_CONTROL},
    )


@app.get(PRM_MCP_PATH)
@app.get(PRM_ROOT_PATH)
def protected_resource() -> Response[Any]:
    return _json(protected_resource_metadata(_settings))


@app.get(AS_METADATA_PATH)
def authorization_server() -> Response[Any]:
    return _json(authorization_server_metadata(_settings))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: an API Gateway HTTP API (payload 2.0) event in, its answer out; the
    invocation's metrics are flushed when it returns."""
    return app.resolve(event, context)
