"""The kit's stack: it only composes the constructs of this package.

Dependency order (no cycles): the HTTP API (just the API resource) gives ``<B>``; Cognito and
the functions take ``<B>``; routes and their integrations take the functions' aliases; the
``$default`` stage comes last because its route settings name the routes.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.core.platform.routes import FUNCTIONS, MCP_PATH, ROUTES
from functions.core.platform.settings import Env
from functions.core.platform.topology import all_tables, function_environment, table_environment
from infra import KIT_VERSION
from infra.api import KitApi, camel_case
from infra.auth import KitAuth
from infra.config import LOG_RETENTION_DAYS, KitConfig
from infra.data import KitTables
from infra.deprovisioning import KitDeprovisioning
from infra.functions import KitFunction, SharedResources, access_for
from infra.monitoring import KitMonitoring
from infra.nag import acknowledge


class KitKey(Construct):
    """Customer-managed KMS key (rotated yearly) for upstream Cognito tokens at rest."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="mcp-cognito-kit: encrypts upstream Cognito refresh tokens at rest",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(30),
        )


class KitStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: KitConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        removal = cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY
        retention = _retention(config.log_retention_days)
        cdk.Tags.of(self).add("project", "mcp-cognito-kit")
        cdk.Tags.of(self).add("stage", config.stage_name)
        cdk.Tags.of(self).add("kit-version", KIT_VERSION)

        self.api = KitApi(
            self,
            "Api",
            name=config.stack_name,
            throttle=config.throttle,
            log_retention=retention,
            removal_policy=removal,
            custom_domain=config.custom_domain,
        )
        base_url = self.api.base_url
        self.data = KitTables(self, "Data", specs=all_tables(config.app), retain=config.retain_data)
        self.key = KitKey(self, "Encryption", retain=config.retain_data).key
        self.auth = KitAuth(self, "Auth", config=config, base_url=base_url, groups=config.groups)

        # Every environment value the stack can supply, by variable name; each function gets
        # the subset its settings model declares (functions.core.platform.topology).
        available: dict[str, str] = {
            Env.BASE_URL: base_url,
            Env.RESOURCE_NAME: config.resource_name,
            Env.USER_POOL_ID: self.auth.user_pool.user_pool_id,
            Env.REGION: self.auth.region,
            Env.GATEWAY_CLIENT_ID: self.auth.gateway_client.user_pool_client_id,
            Env.ALLOWED_ORIGINS: ",".join(config.allowed_origins),
            Env.COGNITO_DOMAIN_URL: self.auth.managed_login_url,
            Env.KMS_KEY_ID: self.key.key_arn,
            Env.SCOPE_GROUP_CEILINGS: json.dumps(dict(config.scope_group_ceilings)),
            # Operator settings (kit:* keys, validated at synth like at cold start), including
            # RESOURCE_BINDING and a GRANT_LIFETIME_DAYS no longer than the refresh tokens.
            **config.function_settings(),
            **table_environment(config.app, lambda spec: self.data.table(spec.key).table_name),
        }
        shared = SharedResources(tables=self.data.tables, key=self.key, user_pool=self.auth.user_pool)

        self.functions: dict[str, KitFunction] = {}
        for name, spec in FUNCTIONS.items():
            fn = KitFunction(
                self,
                camel_case(name),
                spec=spec,
                environment=function_environment(name, available, local=False),
                log_retention=retention,
                removal_policy=removal,
                app=config.app,
            )
            fn.apply_access(access_for(name, config.app), shared)
            # X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level permissions.
            acknowledge(
                fn.role,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords only accept Resource '*'.",
            )
            self.functions[name] = fn

        KitDeprovisioning(
            self,
            "DeprovisioningEvents",
            function=self.functions["deprovisioning"],
            grants=self.data.table("grants"),
            user_pool=self.auth.user_pool,
        )
        self.api.add_routes(
            ROUTES,
            targets={name: fn.alias for name, fn in self.functions.items()},
            throttles={name: config.throttle_for(name) for name in self.functions},
        )
        # Public by design: OAuth endpoints and discovery documents are unauthenticated per their
        # RFCs, and /mcp verifies bearer tokens itself (signature, audience, grant, per-tool scopes)
        # because it must answer RFC 9728 / RFC 6750 challenges that an API Gateway authorizer cannot.
        for route in self.api.routes.values():
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "OAuth/discovery endpoints are public per RFC 6749/8414/9728; /mcp authorizes in the function "
                "to return MCP-compliant 401/403 challenges with resource_metadata and scope.",
            )

        self.monitoring = KitMonitoring(
            self,
            "Monitoring",
            api=self.api.http_api,
            functions={name: fn.function for name, fn in self.functions.items()},
            tables=self.data.tables,
            email=config.alarm_email,
            dashboard_name=config.stack_name,
        )
        self._outputs(base_url)

    def _outputs(self, base_url: str) -> None:
        def out(name: str, value: str, description: str) -> None:
            cdk.CfnOutput(self, name, value=value, description=description)

        out("KitVersion", KIT_VERSION, "mcp-cognito-kit version this stack was synthesized from (CHANGELOG.md)")
        out("McpUrl", base_url + MCP_PATH, "MCP server URL: give this to Claude, VS Code or MCP Inspector")
        out("Issuer", base_url, "OAuth issuer (authorization-server facade) and public base URL")
        out("UserPoolId", self.auth.user_pool.user_pool_id, "Cognito user pool id (create users here)")
        out("ManagedLoginUrl", self.auth.managed_login_url, "Cognito managed-login domain")
        out("GatewayClientId", self.auth.gateway_client.user_pool_client_id, "Cognito gateway app client id")
        out("KmsKeyArn", self.key.key_arn, "KMS key encrypting upstream tokens")
        for key, table in self.data.tables.items():
            out(f"{camel_case(key)}TableName", table.table_name, f"DynamoDB {key} table")
        out("Dashboard", self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard of the kit's metrics")
        out("AlarmTopicArn", self.monitoring.topic.topic_arn, "SNS topic of the alarms (subscribe with kit:alarmEmail)")
        if self.api.domain_name is not None:
            out(
                "CustomDomainTarget",
                self.api.domain_name.regional_domain_name,
                "Point a CNAME (or alias) record for the custom domain at this name",
            )


def _retention(days: int) -> logs.RetentionDays:
    """The ``logs.RetentionDays`` member for a day count (validated in infra.config)."""
    members = [m for m in logs.RetentionDays if m is not logs.RetentionDays.INFINITE]
    # CDK lists the members in CloudWatch's order, which is ascending days.
    by_days = dict(zip(sorted(LOG_RETENTION_DAYS), members, strict=True))
    return by_days[days]
