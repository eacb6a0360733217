"""Wiring: build the MCP endpoint from settings (once per container)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings

from functions.core.clients.ids import DynamoRegisteredClients, RegisteredClients
from functions.core.cognito.jwks import JwksCache
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.platform import kit_app
from functions.core.platform.settings import McpSettings
from functions.core.state.client_bound_grants import ClientBoundGrants
from functions.core.state.grants import CachedGrants, DynamoGrantRepository, GrantReader
from functions.mcp_server.api import AppContext
from functions.mcp_server.app import McpEndpoint
from functions.mcp_server.app_loader import Register, build_registry, extend_hook
from functions.mcp_server.auth import McpAuthenticator
from functions.mcp_server.server import build_server


def transport_security(settings: McpSettings) -> TransportSecuritySettings:
    """Host/Origin checks (MCP transport spec: servers MUST validate Origin).

    The allowed host is the public base URL's host (the API Gateway or custom domain), so
    the SDK's localhost-only default does not answer 421 behind API Gateway.
    """
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[urlsplit(settings.base_url).netloc],
        allowed_origins=[settings.base_url, *settings.allowed_origins],
    )


def _quiet_sdk_logs() -> None:
    # The SDK logs every per-request session manager start/stop at INFO: noise, and cost,
    # in CloudWatch. Warnings and errors still come through.
    logging.getLogger("mcp").setLevel(logging.WARNING)


def create_endpoint(
    settings: McpSettings,
    *,
    grants: GrantReader | None = None,
    clients: RegisteredClients | None = None,
    jwks: JwksCache | None = None,
    register: Register | None = None,
) -> McpEndpoint:
    """The /mcp endpoint serving the app's tools (``register``: tests replace the app's own).

    Raises ``kit_app.AppError`` or ``UnknownScopeError`` (a tool naming a scope missing from
    the catalogue) at cold start.
    """
    _quiet_sdk_logs()
    manifest = kit_app.current()
    ctx = AppContext(tables=settings.app_tables, resource_name=settings.resource_name)
    registry = build_registry(manifest, ctx, register)
    server = build_server(registry, name=settings.resource_name)
    extend = extend_hook(manifest.root) if register is None else None
    if extend is not None:
        extend(server, ctx)
    # RFC 7592 section 2.3: a grant counts only while its registered client exists; the
    # client lookup is cached with the grant (functions/core/state/client_bound_grants.py).
    bound = ClientBoundGrants(
        grants or DynamoGrantRepository(settings.grants_table),
        clients or DynamoRegisteredClients(settings.clients_table),
    )
    authenticator = McpAuthenticator(
        settings,
        CognitoAccessTokenVerifier(settings, jwks),
        CachedGrants(bound, settings.grant_cache_seconds),
    )
    return McpEndpoint(
        server=server,
        registry=registry,
        authenticator=authenticator,
        security=transport_security(settings),
    )
