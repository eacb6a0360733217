"""Lambda entry point of the metadata function: the two discovery documents.

The documents are built from settings alone: no dependency call (no AWS service, no
network), so no outage can reach this function's answers. CORS lets browser-based MCP
clients read them.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aws_lambda_powertools.logging import correlation_paths

from functions.core.platform import topology
from functions.core.platform.edge import Cors, Request, Router
from functions.core.platform.http import Answer
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.platform.routes import AS_METADATA, PRM_MCP, PRM_ROOT
from functions.metadata.documents import authorization_server_metadata, protected_resource_metadata

_settings = topology.METADATA.load()
# Documents change only on redeploy; let clients and proxies reuse them for a while.
CACHE_CONTROL: Final = "public, max-age=300"

router = Router(cors=Cors(allow_headers=("mcp-protocol-version",)))


def _json(document: dict[str, Any]) -> Answer:
    return Answer(
        200,
        json.dumps(document, separators=(",", ":")),
        {"Content-Type": "application/json", "Cache-Control": CACHE_CONTROL},
    )


@router.route(PRM_MCP, PRM_ROOT)
def protected_resource(request: Request) -> Answer:
    """RFC 9728 section 3: the protected resource metadata, at both well-known URIs."""
    return _json(protected_resource_metadata(_settings))


@router.route(AS_METADATA)
def authorization_server(request: Request) -> Answer:
    """RFC 8414 section 3: the authorization server metadata of the facade."""
    return _json(authorization_server_metadata(_settings))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: an API Gateway HTTP API (payload 2.0) event in, its answer out; the
    invocation's metrics are flushed when it returns."""
    return router(event, context)
