"""The management plane's production wiring, in one place for its three callers.

The deprovisioning function (events and the scheduled backstop), the local poller of
``make dev`` and the admin CLI all revoke through the same ``GrantRevoker`` (grant, chain
head, Cognito's refresh token) and read the same indexes; only their settings differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.core.cognito.directory import CognitoDirectory
from functions.core.cognito.gateway_secret import GatewaySecret
from functions.core.cognito.oauth_client import CognitoOAuthClient
from functions.core.cognito.token_cipher import KmsTokenCipher
from functions.core.platform.settings import ManagementSettings
from functions.core.state.consent import DynamoConsentRepository
from functions.core.state.grant_admin import GrantAdministration
from functions.core.state.grant_index import DynamoGrantIndex
from functions.core.state.grants import DynamoGrantRepository
from functions.core.state.reconciliation import Deprovisioner, GrantScopes
from functions.core.state.refresh_tokens import DynamoRefreshTokenRepository
from functions.core.state.revocation import GrantRevoker


@dataclass(frozen=True)
class ManagementPlane:
    """Grant administration (list, revoke), the pool as a directory, and deprovisioning."""

    admin: GrantAdministration
    directory: CognitoDirectory
    deprovisioner: Deprovisioner


def management_plane(settings: ManagementSettings) -> ManagementPlane:
    """DynamoDB, KMS and Cognito clients for ``settings`` (created lazily, on first use).

    The index reads know which grants-table indexes the deployment has (``settings.grant_indexes``):
    a feature that needs a missing one raises ``grant_index.IndexNotDeployed``.
    """
    table = settings.grants_table
    grants = DynamoGrantRepository(table)
    consents = DynamoConsentRepository(table)
    secret = GatewaySecret(settings.user_pool_id, settings.gateway_client_id)
    revoker = GrantRevoker(
        grants=grants,
        refresh_tokens=DynamoRefreshTokenRepository(table),
        consents=consents,
        cipher=KmsTokenCipher(settings.kms_key_id),
        cognito=CognitoOAuthClient(settings.cognito_domain_url, settings.gateway_client_id, secret),
    )
    index = DynamoGrantIndex(table, settings.grant_indexes)
    admin = GrantAdministration(index=index, revoker=revoker, consents=consents)
    directory = CognitoDirectory(settings.user_pool_id)
    deprovisioner = Deprovisioner(
        admin=admin,
        grants=grants,
        scopes=GrantScopes(table, settings.grant_indexes),
        directory=directory,
        user_pool_id=settings.user_pool_id,
        ceilings=settings.scope_group_ceilings,
    )
    return ManagementPlane(admin=admin, directory=directory, deprovisioner=deprovisioner)
