"""The template's Cognito resources: user pool, managed login, resource server, gateway client, ceiling groups."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from functions.core.oauth import scopes
from functions.core.platform.routes import CALLBACK_PATH, MCP_PATH
from tests.infra.conftest import Synth
from tests.infra.template import (
    API_ENDPOINT,
    join,
)

pytestmark = pytest.mark.infra


# --- Cognito -------------------------------------------------------------------------------


def test_user_pool_essentials_admin_invites_retained(synth: Synth) -> None:
    synth.template.has_resource(
        "AWS::Cognito::UserPool",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "UserPoolTier": "ESSENTIALS",
                    "DeletionProtection": "ACTIVE",
                    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                    "UsernameAttributes": ["email"],
                    "MfaConfiguration": "OPTIONAL",
                    "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
                    "Policies": {"PasswordPolicy": Match.object_like({"MinimumLength": 12})},
                }
            ),
        },
    )
    _, pool = synth.one("AWS::Cognito::UserPool")
    assert "UserPoolAddOns" not in pool["Properties"]


def test_managed_login_domain_and_branding(synth: Synth) -> None:
    pool_id, _ = synth.one("AWS::Cognito::UserPool")
    client_id, _ = synth.one("AWS::Cognito::UserPoolClient")
    domain_id, domain = synth.one("AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["ManagedLoginVersion"] == 2
    # No prefix configured: derived from the stack id at deploy time (no AWS call at synth).
    assert domain["Properties"]["Domain"] == join(
        "mcp-kit-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    )
    _, branding = synth.one("AWS::Cognito::ManagedLoginBranding")
    assert branding["Properties"] == {
        "UserPoolId": {"Ref": pool_id},
        "ClientId": {"Ref": client_id},
        "UseCognitoProvidedValues": True,
    }
    assert domain_id in branding["DependsOn"]


def test_resource_server_identifier_is_the_mcp_url(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::Cognito::UserPoolResourceServer", {"Identifier": join(API_ENDPOINT, MCP_PATH)}
    )


def test_gateway_client_confidential_code_flow_only(synth: Synth) -> None:
    rs_id, _ = synth.one("AWS::Cognito::UserPoolResourceServer")
    cfg = synth.config
    synth.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": True,
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthScopes": list(scopes.GATEWAY_OIDC_SCOPES)
            + [join({"Ref": rs_id}, f"/{name}") for name in cfg.app.scope_names],
            "CallbackURLs": [join(API_ENDPOINT, CALLBACK_PATH)],
            "SupportedIdentityProviders": ["COGNITO"],
            "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
            "PreventUserExistenceErrors": "ENABLED",
            "EnableTokenRevocation": True,
            "AccessTokenValidity": cfg.access_token_minutes,
            "IdTokenValidity": cfg.id_token_minutes,
            "RefreshTokenValidity": cfg.refresh_token_days * 24 * 60,
            "AuthSessionValidity": cfg.auth_session_minutes,
            "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"},
        },
    )


def test_scope_ceiling_groups(synth: Synth) -> None:
    names = {g["Properties"]["GroupName"] for g in synth.resources("AWS::Cognito::UserPoolGroup").values()}
    assert names == set(synth.config.groups)
    assert names, "cdk.json names at least one ceiling group"


def test_ceiling_groups_match_local_seeding(synth: Synth) -> None:
    """The groups the local stack seeds for ceilings exist in AWS too (both from the app)."""
    from local.config import demo_users

    seeded = {g for user in demo_users() for g in user.groups}
    assert seeded == set(synth.config.groups) == {"editors"}
