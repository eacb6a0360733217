"""The token function's HTTP shape: ``POST /token``, ``POST /revoke`` and their CORS preflights.

Every answer, errors and 503s included, carries ``Cache-Control: no-store`` and ``Pragma:
no-cache`` (RFC 6749 section 5.1) and ``Access-Control-Allow-Origin: *``: browser-based MCP
clients call these endpoints cross-origin, and no cookie is involved (credentials travel in
the body or an explicit Authorization header), so "*" is safe.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from functions.core.platform.edge import Request, Router
from functions.core.platform.http import Answer
from functions.core.platform.routes import REVOCATION, REVOCATION_PREFLIGHT, TOKEN, TOKEN_PREFLIGHT
from functions.token.service import TokenService

MAX_FORM_BYTES: Final = 16 * 1024
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CORS: Final = {"Access-Control-Allow-Origin": "*"}
PREFLIGHT: Final = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "86400",
}


def _json(status: int, body: Any) -> Answer:
    return Answer(status, json.dumps(body), {"Content-Type": "application/json"})


def make_handler(service: Callable[[], TokenService]) -> Router:
    """The token function's router; ``service`` builds the ``TokenService`` on first use."""
    router = Router(not_found=lambda: _json(404, {"error": "not_found"}), headers={**NO_STORE, **CORS})

    @router.route(TOKEN_PREFLIGHT, REVOCATION_PREFLIGHT)
    def preflight(request: Request) -> Answer:
        return Answer(204, "", dict(PREFLIGHT))

    @router.route(TOKEN)
    def token(request: Request) -> Answer:
        # RFC 6749 section 3.2: a form body whose parameters appear at most once.
        form = request.form(MAX_FORM_BYTES)
        return _json(200, service().token(form, request.header("authorization")))

    @router.route(REVOCATION)
    def revocation(request: Request) -> Answer:
        service().revoke(request.form(MAX_FORM_BYTES), request.header("authorization"))
        return Answer(200)  # RFC 7009 section 2.2: 200, also for unknown tokens

    return router
