"""Cognito: the user pool, managed login, the MCP resource server and the gateway client.

Resource binding (RFC 8707). Since October 2025 Cognito's ``/oauth2/authorize`` accepts one
``resource`` parameter on the Essentials and Plus feature plans with managed login, and the
access token's ``aud`` becomes that resource (Amazon Cognito Developer Guide, "Scopes, M2M, and
resource servers" > "Resource binding",
https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-define-resource-servers.html#cognito-user-pools-resource-binding).
CloudFormation has no switch for it: AWS::Cognito::UserPool, ::UserPoolClient,
::UserPoolResourceServer and ::UserPoolDomain have no resource-binding property (checked against
the resource schemas shipped with cfn-lint 1.58). So it takes exactly what is configured here:
the Essentials (or Plus) feature plan, a managed-login domain, and a resource server whose
identifier is the MCP URL ``<B>/mcp``, the value the kit sends as ``resource``, so the bound
audience is also the prefix of the kit's scopes. ``COGNITO_RESOURCE_BINDING=true`` makes the
MCP function require ``aud == <B>/mcp``. An existing pool without managed login (Lite plan,
classic hosted UI) sets ``resourceBinding: false``: no ``resource`` is sent upstream and ``aud``
is not required (what stands in for it: functions/core/cognito/jwt_verifier.py).
"""

from __future__ import annotations

import re
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from functions.core.oauth.scopes import GATEWAY_OIDC_SCOPES
from functions.core.platform.routes import CALLBACK_PATH, MCP_PATH
from functions.core.platform.topology import group_description
from infra.config import KitConfig
from infra.nag import acknowledge

_NAME_UNSAFE: Final = re.compile(r"[^\w\s+=,.@-]")


class KitAuth(Construct):
    """The kit's Cognito side: a new pool (default), or only the kit's parts in an existing one.

    With ``kit:existingUserPool`` the pool is imported by id: the stack adds the resource
    server and the gateway client (with its managed-login style when the pool has managed
    login), and nothing else; ``cdk destroy`` removes exactly those. No user pool, domain or
    group is created, replaced or deleted.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KitConfig,
        base_url: str,
        groups: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        existing = config.existing_user_pool
        self.domain: cognito.UserPoolDomain | None = None
        if existing is None:
            self.user_pool: cognito.IUserPool = self._create_pool(config)
            self.domain = self._add_domain(self.user_pool, config)
            self.managed_login_url: str = self.domain.base_url()
            self.region = cdk.Aws.REGION
        else:
            self.region = existing.region
            self.managed_login_url = existing.domain_url
            # An ARN with the pool's own region: IAM grants name exactly that pool.
            self.user_pool = cognito.UserPool.from_user_pool_arn(
                self,
                "UserPool",
                cdk.Stack.of(self).format_arn(
                    service="cognito-idp",
                    resource="userpool",
                    resource_name=existing.user_pool_id,
                    region=existing.region,
                ),
            )
            # Cognito resources are created in the stack's region: it must be the pool's.
            cdk.CfnRule(
                self,
                "PoolRegion",
                assertions=[
                    cdk.CfnRuleAssertion(
                        assert_=cdk.Fn.condition_equals(cdk.Aws.REGION, existing.region),
                        assert_description=f"kit:existingUserPool is in {existing.region}: deploy the stack there",
                    )
                ],
            )
        self.mcp_url = base_url + MCP_PATH
        # One scope per catalogue entry (functions/core/oauth/scopes.py is their only home).
        self.scopes = [
            cognito.ResourceServerScope(scope_name=s.name, scope_description=s.description) for s in config.app.scopes
        ]
        self.resource_server = self.user_pool.add_resource_server(
            "McpResourceServer",
            identifier=self.mcp_url,
            user_pool_resource_server_name=_NAME_UNSAFE.sub("-", config.resource_name),
            scopes=self.scopes,
        )
        self.gateway_client = self._add_gateway_client(config, base_url)
        # Managed-login branding with Cognito's default look; a style is required for the
        # newer managed login to render for this client. An existing pool with resource binding
        # has managed login (binding needs it); one without may only have the classic hosted UI.
        self.branding: cognito.CfnManagedLoginBranding | None = None
        if existing is None or existing.resource_binding:
            self.branding = cognito.CfnManagedLoginBranding(
                self,
                "ManagedLoginBranding",
                user_pool_id=self.user_pool.user_pool_id,
                client_id=self.gateway_client.user_pool_client_id,
                use_cognito_provided_values=True,
            )
            if self.domain is not None:
                self.branding.node.add_dependency(self.domain)

        # Groups the consent page uses as scope ceilings; an existing pool's groups are its own.
        self.groups = (
            {
                name: self.user_pool.add_group(
                    f"Group{_NAME_UNSAFE.sub('', name).title().replace(' ', '')}",
                    group_name=name,
                    description=group_description(name),
                )
                for name in groups
            }
            if existing is None
            else {}
        )

    def _create_pool(self, config: KitConfig) -> cognito.UserPool:
        retain = config.retain_data
        plus = config.threat_protection != "off"
        pool = cognito.UserPool(
            self,
            "UserPool",
            feature_plan=cognito.FeaturePlan.PLUS if plus else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=(
                (
                    cognito.StandardThreatProtectionMode.FULL_FUNCTION
                    if config.threat_protection == "enforced"
                    else cognito.StandardThreatProtectionMode.AUDIT_ONLY
                )
                if plus
                else None
            ),
            # Users are invited by an administrator (README: "Create the first user").
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=cdk.Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED if config.mfa == "required" else cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=retain,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )
        if config.mfa != "required":
            acknowledge(
                pool,
                "AwsSolutions-COG2",
                "MFA is optional by default so a first deployment can be tried without enrolling TOTP; "
                "set context kit:mfa=required for production.",
            )
        if not plus:
            reason = (
                "Threat protection (advanced security) needs the Plus feature plan, billed per MAU; the kit "
                "defaults to Essentials (which already has managed login and resource binding) and switches to "
                "Plus with context kit:threatProtection=audit|enforced."
            )
            acknowledge(pool, "AwsSolutions-COG8", reason)
        return pool

    def _add_domain(self, pool: cognito.IUserPool, config: KitConfig) -> cognito.UserPoolDomain:
        # Managed login (the newer version), on a Cognito domain. Without a configured prefix
        # one is derived from the stack id at deploy time: unique, and no AWS call at synth.
        prefix = config.cognito_domain_prefix or cdk.Fn.join(
            "", ["mcp-kit-", cdk.Fn.select(2, cdk.Fn.split("/", cdk.Aws.STACK_ID))]
        )
        return pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )

    def _add_gateway_client(self, config: KitConfig, base_url: str) -> cognito.UserPoolClient:
        # The one confidential "gateway" client the facade uses upstream. MCP clients never
        # see it: they are virtual clients in DynamoDB (DESIGN.md, "the flow").
        client = self.user_pool.add_client(
            "GatewayClient",
            user_pool_client_name=f"{config.stack_name}-gateway",
            generate_secret=True,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(
                    authorization_code_grant=True, implicit_code_grant=False, client_credentials=False
                ),
                scopes=[
                    *(cognito.OAuthScope.custom(s) for s in GATEWAY_OIDC_SCOPES),
                    *(cognito.OAuthScope.resource_server(self.resource_server, s) for s in self.scopes),
                ],
                callback_urls=[base_url + CALLBACK_PATH],
            ),
            supported_identity_providers=[_provider(name) for name in config.identity_providers],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=cdk.Duration.minutes(config.access_token_minutes),
            id_token_validity=cdk.Duration.minutes(config.id_token_minutes),
            refresh_token_validity=cdk.Duration.days(config.refresh_token_days),
            auth_session_validity=cdk.Duration.minutes(config.auth_session_minutes),
        )
        # Code flow only: no SRP, password or custom-auth API sign-in on this client. Cognito
        # always allows refresh-token auth, which the /oauth2/token refresh grant uses.
        cfn_client = client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        cfn_client.explicit_auth_flows = ["ALLOW_REFRESH_TOKEN_AUTH"]
        return client


def _provider(name: str) -> cognito.UserPoolClientIdentityProvider:
    """``COGNITO`` (the pool's own directory) or a federated provider by its name in the pool."""
    if name == "COGNITO":
        return cognito.UserPoolClientIdentityProvider.COGNITO
    return cognito.UserPoolClientIdentityProvider.custom(name)
