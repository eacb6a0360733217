"""Lambda entry point of the authorization function: /authorize, /oauth/callback, /consent, /account/agents.

Thin: parse the API Gateway (payload 2.0) event, call ``AuthorizationService``, shape the
answer. Settings are validated at import (cold start); the service and its clients are
built on first use and reused while the container is warm.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from functions.authorization.account import AccountService
from functions.authorization.account_session import DynamoAccountSignIns
from functions.authorization.api import make_handler
from functions.authorization.flow import AuthorizationService
from functions.core.clients.records import ClientResolver
from functions.core.cognito.gateway_secret import gateway_secret
from functions.core.cognito.jwt_verifier import CognitoAccessTokenVerifier
from functions.core.cognito.oauth_client import CognitoOAuthClient
from functions.core.cognito.token_cipher import KmsTokenCipher
from functions.core.platform import topology
from functions.core.platform.metrics import flushed
from functions.core.platform.observability import logger
from functions.core.platform.settings import FacadeSettings
from functions.core.state.consent import DynamoConsentRepository
from functions.core.state.pending_requests import DynamoPendingRequestRepository

_settings = topology.AUTHORIZATION.load()


def build_service(settings: FacadeSettings, clients: ClientResolver | None = None) -> AuthorizationService:
    """The production wiring: DynamoDB, KMS, Cognito, and the registration function's resolver."""
    if clients is None:
        from functions.core.clients.resolver import make_client_resolver

        clients = make_client_resolver(settings)
    secret = gateway_secret(settings)
    return AuthorizationService(
        settings,
        clients=clients,
        txns=DynamoPendingRequestRepository(settings.artefacts_table, grants_table=settings.grants_table),
        consents=DynamoConsentRepository(settings.grants_table),
        cipher=KmsTokenCipher(settings.kms_key_id),
        cognito=CognitoOAuthClient(settings.cognito_domain_url, settings.gateway_client_id, secret),
        secret=secret,
        verifier=CognitoAccessTokenVerifier(settings),
    )


@cache
def _service() -> AuthorizationService:
    return build_service(_settings)


def build_account(settings: FacadeSettings, clients: ClientResolver | None = None) -> AccountService:
    """The connected-agents page's production wiring: the grants table's by_user index, the revoker, Cognito."""
    from functions.core.clients.resolver import make_client_resolver
    from functions.core.state.grant_admin import GrantAdministration
    from functions.core.state.grant_index import DynamoGrantIndex
    from functions.core.state.grants import DynamoGrantRepository
    from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository
    from functions.core.state.revocation import GrantRevoker

    secret = gateway_secret(settings)
    cognito = CognitoOAuthClient(settings.cognito_domain_url, settings.gateway_client_id, secret)
    consents = DynamoConsentRepository(settings.grants_table)
    grants = DynamoGrantRepository(settings.grants_table)
    revoker = GrantRevoker(
        grants=grants,
        refresh_tokens=DynamoRefreshTokenRepository(settings.grants_table),
        consents=consents,
        cipher=KmsTokenCipher(settings.kms_key_id),
        cognito=cognito,
    )
    return AccountService(
        settings,
        admin=GrantAdministration(
            index=DynamoGrantIndex(settings.grants_table, settings.grant_indexes), revoker=revoker, consents=consents
        ),
        grants=grants,
        # Showing an agent on the page is not the agent's use: no idle-expiry refresh.
        clients=clients or make_client_resolver(settings, touch=False),
        sign_ins=DynamoAccountSignIns(settings.artefacts_table),
        cognito=cognito,
        secret=secret,
        verifier=CognitoAccessTokenVerifier(settings),
    )


@cache
def _account() -> AccountService:
    return build_account(_settings)


_handle = make_handler(_service, _account)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@flushed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (API Gateway HTTP API, payload 2.0): authorization and account routes.

    The invocation's metrics are flushed when it returns.
    """
    return _handle(event, context)
