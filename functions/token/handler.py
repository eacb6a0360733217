"""Lambda entry point of the token function: POST /token, POST /revoke (+ CORS preflight).

Thin: parse the form, call ``TokenService``, shape a JSON answer with ``Cache-Control:
no-store`` and ``Pragma: no-cache`` on every answer (RFC 6749 section 5.1), errors included.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from functions.core.clients.records import ClientResolver
from functions.core.cognito.gateway_secret import gateway_secret
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.oauth_client import CognitoOAuthClient
from functions.core.cognito.token_cipher import KmsTokenCipher
from functions.core.platform import topology
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings
from functions.core.state.codes import DynamoAuthorizationCodeRepository
from functions.core.state.consent import DynamoConsentRepository
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository
from functions.token.api import make_handler
from functions.token.service import TokenService

_settings = topology.TOKEN.load()


def build_service(settings: FacadeSettings, clients: ClientResolver | None = None) -> TokenService:
    """The production wiring: DynamoDB, KMS, Cognito, and the registration function's resolver."""
    if clients is None:
        from functions.core.clients.resolver import make_client_resolver

        clients = make_client_resolver(settings)
    return TokenService(
        settings,
        clients=clients,
        codes=DynamoAuthorizationCodeRepository(settings.artefacts_table, grants_table=settings.grants_table),
        grants=DynamoGrantRepository(settings.grants_table),
        refresh_tokens=DynamoRefreshTokenRepository(settings.grants_table),
        consents=DynamoConsentRepository(settings.grants_table),
        cipher=KmsTokenCipher(settings.kms_key_id),
        cognito=CognitoOAuthClient(settings.cognito_domain_url, settings.gateway_client_id, gateway_secret(settings)),
        secret=gateway_secret(settings),
        verifier=CognitoAccessTokenVerifier(settings),
    )


@cache
def _service() -> TokenService:
    return build_service(_settings)


_handle = make_handler(_service)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (API Gateway HTTP API, payload 2.0): ``POST /token`` and ``POST /revoke``.

    The invocation's metrics are flushed when it returns.
    """
    return _handle(event, context)
