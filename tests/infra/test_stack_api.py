"""The template's HTTP API: throttling, access logs, permissions, outputs, custom domain and production variant."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from functions.core.platform.routes import CALLBACK_PATH, MCP_PATH, ROUTES
from functions.core.platform.settings import Env
from tests.infra.conftest import CUSTOM_HOST, Synth
from tests.infra.template import (
    function_ids,
    logical_id,
)

pytestmark = pytest.mark.infra


# --- HTTP API ------------------------------------------------------------------------------


def test_default_stage_throttling_and_json_access_logs(synth: Synth) -> None:
    _, stage = synth.one("AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    cfg = synth.config
    assert props["DefaultRouteSettings"] == {
        "DetailedMetricsEnabled": True,
        "ThrottlingRateLimit": cfg.throttle.rate_limit,
        "ThrottlingBurstLimit": cfg.throttle.burst_limit,
    }
    assert props["RouteSettings"] == {
        r.route_key: {
            "ThrottlingRateLimit": cfg.throttle_for(r.function).rate_limit,
            "ThrottlingBurstLimit": cfg.throttle_for(r.function).burst_limit,
        }
        for r in ROUTES
    }
    fmt = json.loads(props["AccessLogSettings"]["Format"])
    assert fmt["requestId"] == "$context.requestId"
    assert fmt["routeKey"] == "$context.routeKey"
    assert not [v for v in fmt.values() if "querystring" in v.lower() or "header" in v.lower()]
    access_group = logical_id(props["AccessLogSettings"]["DestinationArn"])
    assert synth.template_json["Resources"][access_group]["Type"] == "AWS::Logs::LogGroup"
    assert synth.template_json["Resources"][access_group]["Properties"]["LogGroupClass"] == "INFREQUENT_ACCESS"
    # Route settings name routes: the stage is created after them.
    route_ids = set(synth.resources("AWS::ApiGatewayV2::Route"))
    assert route_ids <= set(stage["DependsOn"])


def test_api_has_execute_api_endpoint_and_no_custom_domain_by_default(synth: Synth) -> None:
    _, api = synth.one("AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert api["Properties"].get("DisableExecuteApiEndpoint") in (None, False)
    assert not synth.resources("AWS::ApiGatewayV2::DomainName")


def test_lambda_permissions_are_scoped_to_the_api(synth: Synth) -> None:
    every = synth.resources("AWS::Lambda::Permission")
    # EventBridge's (the deprovisioning rules) are asserted in tests/infra/test_deprovisioning.py.
    perms = {k: p for k, p in every.items() if p["Properties"]["Principal"] != "events.amazonaws.com"}
    assert len(every) - len(perms) == 2
    assert len(perms) == len(ROUTES)
    aliases = set(synth.resources("AWS::Lambda::Alias"))
    for perm in perms.values():
        props = perm["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert logical_id(props["FunctionName"]) in aliases
        assert "execute-api" in json.dumps(props["SourceArn"])


def test_outputs(synth: Synth) -> None:
    outputs = synth.template_json["Outputs"]
    assert outputs["McpUrl"]["Value"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [logical_id(outputs["Issuer"]["Value"]), "ApiEndpoint"]}, MCP_PATH]]
    }
    for name in ("Issuer", "UserPoolId", "ManagedLoginUrl", "GatewayClientId", "GrantsTableName", "NotesTableName"):
        assert name in outputs  # NotesTableName: the test app's table "notes"
    assert "CustomDomainTarget" not in outputs


# --- custom domain / production variant ------------------------------------------------------


def test_custom_domain_becomes_issuer_and_resource(synth_custom: Synth) -> None:
    s = synth_custom
    base = f"https://{CUSTOM_HOST}"
    _, api = s.one("AWS::ApiGatewayV2::Api")
    assert api["Properties"]["DisableExecuteApiEndpoint"] is True
    s.template.has_resource_properties(
        "AWS::ApiGatewayV2::DomainName",
        {
            "DomainName": CUSTOM_HOST,
            "DomainNameConfigurations": [
                Match.object_like(
                    {"CertificateArn": Match.string_like_regexp("^arn:aws:acm:"), "EndpointType": "REGIONAL"}
                )
            ],
        },
    )
    s.template.has_resource_properties("AWS::ApiGatewayV2::ApiMapping", {"Stage": Match.any_value()})
    s.template.has_resource_properties("AWS::Cognito::UserPoolResourceServer", {"Identifier": base + MCP_PATH})
    s.template.has_resource_properties("AWS::Cognito::UserPoolClient", {"CallbackURLs": [base + CALLBACK_PATH]})
    s.template.has_resource_properties("AWS::Cognito::UserPoolDomain", {"Domain": "my-mcp-login"})
    for lid in function_ids(s).values():
        assert s.template_json["Resources"][lid]["Properties"]["Environment"]["Variables"][Env.BASE_URL] == base
    outputs = s.template_json["Outputs"]
    assert outputs["Issuer"]["Value"] == base
    assert outputs["McpUrl"]["Value"] == base + MCP_PATH
    assert "CustomDomainTarget" in outputs


def test_production_variant_plus_plan_mfa_and_destroy(synth_custom: Synth) -> None:
    s = synth_custom
    s.template.has_resource(
        "AWS::Cognito::UserPool",
        {
            "DeletionPolicy": "Delete",
            "Properties": Match.object_like(
                {
                    "UserPoolTier": "PLUS",
                    "MfaConfiguration": "ON",
                    "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
                }
            ),
        },
    )
    for table in s.resources("AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Delete"
        assert table["Properties"].get("DeletionProtectionEnabled") in (None, False)
    assert s.stack.stack_name == "McpCognitoKit-prod"
