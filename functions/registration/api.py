"""The registration function's HTTP shape, independent of the environment.

``make_handler`` wires a ``RegistrationService`` to the routes, so unit tests run the real
routing with in-memory dependencies; ``handler.py`` builds it from the environment. CORS
lets browser-based MCP clients register (no cookies: registration is bearer or anonymous).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

from functions.core.platform.edge import Cors, Request, Router
from functions.core.platform.errors import RegistrationError
from functions.core.platform.http import Answer, decoded_body
from functions.core.platform.routes import CLIENT_DELETE, CLIENT_READ, CLIENT_UPDATE, REGISTRATION
from functions.registration.service import RegistrationService

CORS = Cors(
    allow_headers=("authorization", "content-type", "mcp-protocol-version"),
    expose_headers=("Retry-After",),
)


def _body(request: Request) -> str | None:
    """The JSON body as text; ``invalid_client_metadata`` when it is not UTF-8 (RFC 7591 s3.2.2)."""
    try:
        return decoded_body(request.event)
    except (ValueError, binascii.Error) as exc:  # undecodable base64 or non-UTF-8 bytes
        raise RegistrationError("invalid_client_metadata", "the request body is not UTF-8 JSON") from exc


def _optional(value: str) -> str | None:
    return value or None


def make_handler(service: Callable[[], RegistrationService]) -> Router:
    """The registration function's router; ``service`` returns the ``RegistrationService``."""
    router = Router(cors=CORS)

    @router.route(REGISTRATION)
    def register(request: Request) -> Answer:
        content_type = _optional(request.header("content-type"))
        return service().register(_body(request), content_type, request.source_ip())

    @router.route(CLIENT_READ)
    def read(request: Request) -> Answer:
        authorization = _optional(request.header("authorization"))
        return service().read(request.path_parameter("client_id"), authorization)

    @router.route(CLIENT_UPDATE)
    def update(request: Request) -> Answer:
        client_id, authorization = request.path_parameter("client_id"), _optional(request.header("authorization"))
        return service().update(client_id, authorization, _body(request), _optional(request.header("content-type")))

    @router.route(CLIENT_DELETE)
    def delete(request: Request) -> Answer:
        authorization = _optional(request.header("authorization"))
        return service().delete(request.path_parameter("client_id"), authorization)

    return router
