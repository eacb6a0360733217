"""The HTTP API: the ``$default`` stage (so the issuer has no path), every route of
``functions.core.platform.routes.ROUTES``, per-route throttling and JSON access logs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.core.platform.routes import Route
from infra.config import CustomDomain, Throttle

DEFAULT_STAGE: Final = "$default"

# One JSON object per request. Never the query string, headers or body: they can carry codes,
# tokens and secrets (routeKey and path are enough to tell requests apart).
ACCESS_LOG_FIELDS: Final[Mapping[str, str]] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
    "domainName": "$context.domainName",
}


@jsii.implements(apigw.IAccessLogSettings)
class JsonAccessLogs:
    """``IAccessLogSettings``: JSON lines into a log group."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigw.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return apigw_v1.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":")))


class KitApi(Construct):
    """The API and its ``$default`` stage. Routes are added with :meth:`add_routes`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        throttle: Throttle,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
        custom_domain: CustomDomain | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=name,
            description="mcp-cognito-kit: MCP endpoint and OAuth 2.1 authorization-server facade",
            create_default_stage=False,
            # With a custom domain that domain is the issuer; a second URL serving the same
            # API would advertise documents whose issuer it is not.
            disable_execute_api_endpoint=custom_domain is not None,
        )
        # Infrequent Access: half the ingestion price; access logs need no metric or subscription
        # filters (Logs Insights still queries them).
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention,
            removal_policy=removal_policy,
            log_group_class=logs.LogGroupClass.INFREQUENT_ACCESS,
        )
        self.custom_domain = custom_domain
        self.domain_name: apigw.DomainName | None = None
        mapping = None
        if custom_domain is not None:
            self.domain_name = apigw.DomainName(
                self,
                "DomainName",
                domain_name=custom_domain.host_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", custom_domain.certificate_arn),
                security_policy=apigw.SecurityPolicy.TLS_1_2,
            )
            mapping = apigw.DomainMappingOptions(domain_name=self.domain_name)
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name=DEFAULT_STAGE,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=throttle.rate_limit, burst_limit=throttle.burst_limit),
            access_log_settings=JsonAccessLogs(self.access_logs),
            detailed_metrics_enabled=True,
            domain_mapping=mapping,
        )
        self.routes: dict[str, apigw.HttpRoute] = {}
        self._route_throttles: dict[str, Throttle] = {}
        self._integrations: dict[str, integrations.HttpLambdaIntegration] = {}

    @property
    def base_url(self) -> str:
        """``<B>``: the public origin with no path (a token until deploy when not a custom domain)."""
        if self.custom_domain is not None:
            # A literal: the issuer must be exactly what clients type, known before deploy.
            return f"https://{self.custom_domain.host_name}"
        # https://{apiId}.execute-api.{region}.{urlSuffix}: depends on the API only, never on the
        # stage or routes, so functions can carry it without a circular dependency.
        return self.http_api.api_endpoint

    def add_routes(
        self, routes: tuple[Route, ...], targets: Mapping[str, lambda_.IFunction], throttles: Mapping[str, Throttle]
    ) -> None:
        """One route per entry, each to its function's alias, each with its function's throttle."""
        for route in routes:
            if route.route_key in self.routes:
                raise ValueError(f"duplicate route {route.route_key}")
            integration = self._integrations.get(route.function)
            if integration is None:
                integration = integrations.HttpLambdaIntegration(
                    f"{camel_case(route.function)}Integration",
                    targets[route.function],
                    payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
                )
                self._integrations[route.function] = integration
            self.routes[route.route_key] = apigw.HttpRoute(
                self,
                f"Route{camel_case(route.method.lower())}{_route_id(route.path)}",
                http_api=self.http_api,
                route_key=apigw.HttpRouteKey.with_(route.path, apigw.HttpMethod[route.method]),
                integration=integration,
            )
            self._route_throttles[route.route_key] = throttles[route.function]
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.route_settings = {
            key: {"ThrottlingRateLimit": t.rate_limit, "ThrottlingBurstLimit": t.burst_limit}
            for key, t in sorted(self._route_throttles.items())
        }
        # RouteSettings name route keys; CloudFormation rejects them until the routes exist.
        for route_construct in self.routes.values():
            self.stage.node.add_dependency(route_construct)


def camel_case(text: str) -> str:
    """``snake_or-kebab`` text as ``CamelCase``, for construct ids."""
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_") if part)


def _route_id(path: str) -> str:
    """A readable, unique construct id for a path: ``/.well-known/x/{id+}`` -> ``WellKnownXId``."""
    cleaned = path.replace("{", "").replace("}", "").replace("+", "").replace(".", "")
    return camel_case("_".join(seg.replace("-", "_") for seg in cleaned.split("/") if seg)) or "Root"
