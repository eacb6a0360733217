"""Lambda entry point of the authorization function: /authorize, /oauth/callback, /consent.

Thin: parse the API Gateway (payload 2.0) event, call ``AuthorizationService``, shape the
answer. Settings are validated at import (cold start); the service and its clients are
built on first use and reused while the container is warm.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from functions.authorization.api import make_handler
from functions.authorization.flow import AuthorizationService, RedirectMatcher
from functions.core.clients.records import ClientResolver
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.upstream import CognitoOAuthClient, KmsTokenCipher, gateway_secret
from functions.core.platform import settings as settings_mod
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings
from functions.core.state.artefacts import DynamoTxnRepository
from functions.core.state.consent import DynamoConsentRepository

_settings = settings_mod.load(FacadeSettings)


def _registered_matcher() -> RedirectMatcher:
    from functions.core.clients.metadata import redirect_uri_matches

    def matches(uri: str, registered: Sequence[str]) -> bool:
        # Exact match, except loopback http redirects on any port (RFC 8252 section 7.3).
        return any(redirect_uri_matches(candidate, uri) for candidate in registered)

    return matches


def build_service(
    settings: FacadeSettings, clients: ClientResolver | None = None, redirect_matcher: RedirectMatcher | None = None
) -> AuthorizationService:
    """The production wiring: DynamoDB, KMS, Cognito, and the registration function's resolver."""
    if clients is None:
        from functions.core.clients.resolver import make_client_resolver

        clients = make_client_resolver(settings)
    secret = gateway_secret(settings)
    return AuthorizationService(
        settings,
        clients=clients,
        redirect_matcher=redirect_matcher or _registered_matcher(),
        txns=DynamoTxnRepository(settings.artefacts_table, grants_table=settings.grants_table),
        consents=DynamoConsentRepository(settings.grants_table),
        cipher=KmsTokenCipher(settings.kms_key_id),
        upstream=CognitoOAuthClient(settings.cognito_domain_url, settings.gateway_client_id, secret),
        secret=secret,
        verifier=CognitoAccessTokenVerifier(settings),
    )


@cache
def _service() -> AuthorizationService:
    return build_service(_settings)


_handle = make_handler(_service)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: an API Gateway HTTP API (payload 2.0) event in, its answer out; the
    invocation's metrics are flushed when it returns."""
    return _handle(event, context)
