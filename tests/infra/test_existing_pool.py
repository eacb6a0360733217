"""`kit:existingUserPool`: the stack adds only the resource server and the gateway client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from functions.core.platform.routes import CALLBACK_PATH, MCP_PATH
from functions.core.platform.settings import Env
from tests.infra.conftest import EXISTING_DOMAIN, EXISTING_POOL_ID, Synth
from tests.infra.template import (
    API_ENDPOINT,
    actions,
    function_ids,
    join,
    role_of,
    statements_of_role,
)

pytestmark = pytest.mark.infra

POOL_WIDE = ("AWS::Cognito::UserPool", "AWS::Cognito::UserPoolDomain", "AWS::Cognito::UserPoolGroup")


def _env(s: Synth, function: str) -> dict[str, Any]:
    fn = s.template_json["Resources"][function_ids(s)[function]]
    return dict(fn["Properties"]["Environment"]["Variables"])


def test_no_user_pool_domain_or_group(synth_existing_pool: Synth) -> None:
    for type_ in POOL_WIDE:
        assert synth_existing_pool.resources(type_) == {}, type_


def test_resource_server_in_the_existing_pool(synth_existing_pool: Synth) -> None:
    _, rs = synth_existing_pool.one("AWS::Cognito::UserPoolResourceServer")
    synth_existing_pool.template.has_resource_properties(
        "AWS::Cognito::UserPoolResourceServer",
        {"UserPoolId": EXISTING_POOL_ID, "Identifier": join(API_ENDPOINT, MCP_PATH)},
    )
    assert (
        tuple(s["ScopeName"] for s in rs["Properties"]["Scopes"])
        == synth_existing_pool.config.app.scope_names
        == ("notes:read", "notes:write")
    )


def test_gateway_client_in_the_existing_pool_with_its_providers(synth_existing_pool: Synth) -> None:
    _, client = synth_existing_pool.one("AWS::Cognito::UserPoolClient")
    synth_existing_pool.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "UserPoolId": EXISTING_POOL_ID,
            "SupportedIdentityProviders": ["COGNITO", "CorpSAML"],
            "GenerateSecret": True,
            "AllowedOAuthFlows": ["code"],
            "CallbackURLs": [join(API_ENDPOINT, CALLBACK_PATH)],
        },
    )
    # Kit-owned: removed by `cdk destroy`, never retained in the team's pool.
    assert client.get("DeletionPolicy", "Delete") == "Delete"
    # Managed login (needed for resource binding) renders only for a client with a style.
    _, branding = synth_existing_pool.one("AWS::Cognito::ManagedLoginBranding")
    assert branding["Properties"]["UserPoolId"] == EXISTING_POOL_ID


def test_only_kit_resources_touch_the_pool(synth_existing_pool: Synth) -> None:
    """Every Cognito resource in the template is one the kit owns in that pool."""
    cognito = {
        res["Type"]
        for res in synth_existing_pool.template_json["Resources"].values()
        if res["Type"].startswith("AWS::Cognito::")
    }
    assert cognito == {
        "AWS::Cognito::UserPoolResourceServer",
        "AWS::Cognito::UserPoolClient",
        "AWS::Cognito::ManagedLoginBranding",
    }


def test_functions_point_at_the_existing_pool(synth_existing_pool: Synth) -> None:
    for function in ("mcp_server", "authorization", "token"):
        env = _env(synth_existing_pool, function)
        assert env[Env.USER_POOL_ID] == EXISTING_POOL_ID
        assert env[Env.REGION] == "us-east-1"
        assert env[Env.RESOURCE_BINDING] == "true"
    assert _env(synth_existing_pool, "authorization")[Env.COGNITO_DOMAIN_URL] == EXISTING_DOMAIN
    outputs = synth_existing_pool.template_json["Outputs"]
    assert outputs["UserPoolId"]["Value"] == EXISTING_POOL_ID
    assert outputs["ManagedLoginUrl"]["Value"] == EXISTING_DOMAIN


def test_describe_client_is_scoped_to_that_pool(synth_existing_pool: Synth) -> None:
    for function in ("authorization", "token"):
        statements = statements_of_role(synth_existing_pool, role_of(synth_existing_pool, function))
        cognito = [st for st in statements if any(a.startswith("cognito-idp:") for a in actions(st))]
        assert len(cognito) == 1
        assert actions(cognito[0]) == {"cognito-idp:DescribeUserPoolClient"}
        arn = json.dumps(cognito[0]["Resource"])
        assert ":cognito-idp:us-east-1:" in arn
        assert arn.endswith(f':userpool/{EXISTING_POOL_ID}"]]}}')


def test_deploying_outside_the_pools_region_is_refused(synth_existing_pool: Synth) -> None:
    rules = synth_existing_pool.template_json["Rules"]
    assertions = [a for rule in rules.values() for a in rule["Assertions"]]
    assert {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]} in [a["Assert"] for a in assertions]


def test_existing_pool_is_nag_and_lint_clean(synth_existing_pool: Synth, synth_lite_pool: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    for s in (synth_existing_pool, synth_lite_pool):
        report = json.loads((s.outdir / "validation-report.json").read_text())
        violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
        assert [v for v in violations if v.get("severity") == "error"] == []
        matches = lint_file(s.outdir / f"{s.stack.stack_name}.template.json", ManualArgs(regions=["us-east-1"]))
        assert [str(m) for m in matches if m.rule.id.startswith("E")] == []


def test_lite_pool_drops_binding_and_branding_and_sends_its_idp(synth_lite_pool: Synth) -> None:
    s = synth_lite_pool
    assert s.resources("AWS::Cognito::ManagedLoginBranding") == {}
    for type_ in POOL_WIDE:
        assert s.resources(type_) == {}, type_
    s.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {"UserPoolId": "eu-west-1_Lite42", "SupportedIdentityProviders": ["CorpSAML"]},
    )
    mcp = _env(s, "mcp_server")
    assert mcp[Env.RESOURCE_BINDING] == "false"
    assert mcp[Env.REGION] == "eu-west-1"
    authorization = _env(s, "authorization")
    assert authorization[Env.DEFAULT_IDENTITY_PROVIDER] == "CorpSAML"
    assert authorization[Env.COGNITO_DOMAIN_URL] == "https://login.example.com"
    for function in ("metadata", "registration", "authorization", "token"):
        assert _env(s, function)[Env.REGISTRATION_POLICY] == "closed"
    # The ceiling group is the pool's own: named, not created.
    assert json.loads(authorization[Env.SCOPE_GROUP_CEILINGS]) == {"notes:write": ["mcp-writers"]}
    s.template.has_output("KitVersion", {"Value": Match.string_like_regexp(r"^\d+\.\d+\.\d+$")})
    assert s.stack.stack_name == "McpCognitoKit-prod"
    # The prod entry of kit:stages applies (flags did not name these keys).
    assert s.config.mfa == "required"
    assert s.config.log_retention_days == 365
