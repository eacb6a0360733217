"""The registration function's HTTP surface (Powertools router), independent of the environment.

``build_app`` wires a ``RegistrationService`` to the routes, so unit tests can run the real
routing with in-memory dependencies; ``handler.py`` builds it from the environment.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response

from functions.core.platform.errors import HttpAnswer, OAuthError
from functions.core.platform.routes import REGISTER_PATH
from functions.registration.service import RegistrationService, answer_for

CLIENT_PATH = REGISTER_PATH + "/<client_id>"


def _response(answer: HttpAnswer) -> Response[Any]:
    headers = dict(answer.headers)
    content_type = headers.pop("Content-Type", None)
    return Response(status_code=answer.status, content_type=content_type, body=answer.body, headers=headers)


def build_app(service: RegistrationService) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(
        cors=CORSConfig(
            allow_origin="*",
            allow_headers=["authorization", "content-type", "mcp-protocol-version"],
            expose_headers=["Retry-After"],
            max_age=86400,
            allow_credentials=False,  # no cookies: registration is bearer/anonymous
        )
    )

    def header(name: str) -> str | None:
        value = app.current_event.headers.get(name)
        return None if value is None else str(value)

    def body() -> str | None:
        try:
            return app.current_event.decoded_body
        except (ValueError, binascii.Error) as exc:  # undecodable base64 or non-UTF-8 bytes
            raise OAuthError("invalid_client_metadata", "the request body is not UTF-8 JSON") from exc

    def run(operation: Callable[[], HttpAnswer]) -> Response[Any]:
        return _response(answer_for(operation))

    @app.post(REGISTER_PATH)
    def register() -> Response[Any]:
        source_ip = str(app.current_event.request_context.http.source_ip or "unknown")
        return run(lambda: service.register(body(), header("content-type"), source_ip))

    @app.get(CLIENT_PATH)
    def read(client_id: str) -> Response[Any]:
        return run(lambda: service.read(client_id, header("authorization")))

    @app.put(CLIENT_PATH)
    def update(client_id: str) -> Response[Any]:
        return run(lambda: service.update(client_id, header("authorization"), body(), header("content-type")))

    @app.delete(CLIENT_PATH)
    def delete(client_id: str) -> Response[Any]:
        return run(lambda: service.delete(client_id, header("authorization")))

    return app
