"""CDK assertions on the synthesized template: every resource and property of issue 4,
least-privilege IAM, cdk-nag, cfn-lint, and no drift from the code's single sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from functions.core.oauth import scopes
from functions.core.platform.routes import CALLBACK_PATH, FUNCTIONS, MCP_PATH, ROUTES
from functions.core.platform.settings import CoreSettings, Env, McpSettings, MetadataSettings
from infra.data import TABLES, app_table_specs
from infra.functions import ACCESS, ALIAS_NAME, LOCAL_ONLY_ENV, env_var_name
from infra.packaging import asset_budget, tree_size
from tests.infra.conftest import CUSTOM_HOST, Synth

pytestmark = pytest.mark.infra

API_ENDPOINT = {"Fn::GetAtt": [Match.string_like_regexp("^ApiHttpApi"), "ApiEndpoint"]}


def _join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def _logical_id(value: Any) -> str:
    """The logical id behind a Ref or GetAtt."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a Ref/GetAtt: {value!r}")


def _function_ids(s: Synth) -> dict[str, str]:
    """Function name (functions/core/platform/routes.py) -> logical id of its Lambda function."""
    ids: dict[str, str] = {}
    for lid, res in s.resources("AWS::Lambda::Function").items():
        handler = res["Properties"]["Handler"]
        (name,) = [n for n, spec in FUNCTIONS.items() if spec.handler == handler]
        ids[name] = lid
    return ids


def _role_of(s: Synth, function: str) -> str:
    fn = s.template_json["Resources"][_function_ids(s)[function]]
    return _logical_id(fn["Properties"]["Role"])


def _statements_of_role(s: Synth, role_id: str) -> list[dict[str, Any]]:
    out = []
    for pol in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in pol["Properties"]["Roles"]:
            out.extend(pol["Properties"]["PolicyDocument"]["Statement"])
    role = s.template_json["Resources"][role_id]
    for inline in role["Properties"].get("Policies", []):
        out.extend(inline["PolicyDocument"]["Statement"])
    assert not role["Properties"].get("ManagedPolicyArns"), "functions use explicit roles, no managed policies"
    return out


def _actions(stmt: dict[str, Any]) -> set[str]:
    a = stmt["Action"]
    return {a} if isinstance(a, str) else set(a)


def _table_ids(s: Synth) -> dict[str, str]:
    """Table key (infra/data.py) -> logical id, via the env vars the functions receive."""
    env: dict[str, Any] = {}
    for logical_id in _function_ids(s).values():
        env.update(s.template_json["Resources"][logical_id]["Properties"]["Environment"]["Variables"])
    ids = {spec.key: _logical_id(env[spec.env]) for spec in TABLES if spec.env in env}
    # The app's tables reach the MCP function together, as the JSON of APP_TABLES.
    app_tables = json.dumps(env["APP_TABLES"])
    for spec in app_table_specs(s.config.app):
        table = s.stack.data.tables[spec.key]
        ids[spec.key] = s.stack.get_logical_id(table.node.default_child)
        assert json.dumps({"Ref": ids[spec.key]}) in app_tables, spec.key
    return ids


def _all_tables(s: Synth) -> tuple[Any, ...]:
    return (*TABLES, *app_table_specs(s.config.app))


# --- no drift -----------------------------------------------------------------------------


def test_route_keys_equal_routes(synth: Synth) -> None:
    keys = {r["Properties"]["RouteKey"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()}
    assert keys == {r.route_key for r in ROUTES}


def test_local_gateway_serves_the_template_routes(synth: Synth) -> None:
    """The local stack's API Gateway stand-in routes every template route to the same function."""
    from local.gateway import LambdaGateway

    gateway = LambdaGateway({name: (lambda event, ctx: {}) for name in FUNCTIONS})
    try:
        for route in synth.resources("AWS::ApiGatewayV2::Route").values():
            method, path = route["Properties"]["RouteKey"].split(" ", 1)
            # Concrete requests for it: a method ANY takes in, path variables filled ("/mcp/"
            # for the greedy one, the trailing-slash spelling of the MCP URL).
            concrete = path.replace("{client_id}", "abc123").replace("{proxy+}", "")
            found = gateway.match("PATCH" if method == "ANY" else method, concrete)
            assert found is not None, f"local gateway does not serve {method} {path}"
            assert found[0].route_key == route["Properties"]["RouteKey"]
    finally:
        gateway.close()


def test_each_route_integrates_its_functions_alias(synth: Synth) -> None:
    fn_ids = _function_ids(synth)
    aliases = synth.resources("AWS::Lambda::Alias")
    integrations = synth.template_json["Resources"]
    by_key = {r["Properties"]["RouteKey"]: r for r in synth.resources("AWS::ApiGatewayV2::Route").values()}
    for route in ROUTES:
        target = by_key[route.route_key]["Properties"]["Target"]
        integration_id = target["Fn::Join"][1][1]["Ref"]
        integration = integrations[integration_id]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        alias_id = _logical_id(integration["IntegrationUri"])
        alias = aliases[alias_id]["Properties"]
        assert alias["Name"] == ALIAS_NAME
        assert _logical_id(alias["FunctionName"]) == fn_ids[route.function], route.route_key


def test_resource_server_scopes_equal_the_apps_catalogue(synth: Synth) -> None:
    _, rs = synth.one("AWS::Cognito::UserPoolResourceServer")
    names = tuple(s["ScopeName"] for s in rs["Properties"]["Scopes"])
    assert names == synth.config.app.scope_names == ("notes:read", "notes:write")
    assert {s["ScopeName"]: s["ScopeDescription"] for s in rs["Properties"]["Scopes"]} == {
        s.name: s.description for s in synth.config.app.scopes
    }


def test_one_lambda_per_function(synth: Synth) -> None:
    assert set(_function_ids(synth)) == set(FUNCTIONS)


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
    assert domain["Properties"]["Domain"] == _join(
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
        "AWS::Cognito::UserPoolResourceServer", {"Identifier": _join(API_ENDPOINT, MCP_PATH)}
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
            "AllowedOAuthScopes": list(scopes.UPSTREAM_OIDC_SCOPES)
            + [_join({"Ref": rs_id}, f"/{name}") for name in cfg.app.scope_names],
            "CallbackURLs": [_join(API_ENDPOINT, CALLBACK_PATH)],
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


# --- data and keys -------------------------------------------------------------------------


def test_tables_on_demand_ttl_pitr_encrypted_retained(synth: Synth) -> None:
    tables = synth.resources("AWS::DynamoDB::Table")
    assert len(tables) == len(_all_tables(synth))
    ids = _table_ids(synth)
    for spec in _all_tables(synth):
        table = tables[ids[spec.key]]
        assert table["DeletionPolicy"] == "Retain"
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        expected_keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        if spec.sort_key:
            expected_keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
        assert props["KeySchema"] == expected_keys
        assert all(a["AttributeType"] == "S" for a in props["AttributeDefinitions"])


def test_kms_key_rotated_and_retained(synth: Synth) -> None:
    synth.template.has_resource(
        "AWS::KMS::Key",
        {"DeletionPolicy": "Retain", "Properties": Match.object_like({"EnableKeyRotation": True})},
    )


# --- functions -----------------------------------------------------------------------------


def test_functions_share_defaults(synth: Synth) -> None:
    log_groups = synth.resources("AWS::Logs::LogGroup")
    for name, lid in _function_ids(synth).items():
        props = synth.template_json["Resources"][lid]["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["Handler"] == FUNCTIONS[name].handler  # type: ignore[index]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Timeout"] <= 29, "API Gateway HTTP APIs give up after 30 s"
        group = _logical_id(props["LoggingConfig"]["LogGroup"])
        assert log_groups[group]["Properties"]["RetentionInDays"] == synth.config.log_retention_days
        # JSON lines, and no START/END/REPORT platform lines per invocation (README, Cost).
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["LoggingConfig"]["SystemLogLevel"] == "WARN"
        assert props["LoggingConfig"]["ApplicationLogLevel"] == env_level(props)
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == name
        assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"


def env_level(props: dict[str, Any]) -> str:
    return str(props["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"])


def test_mcp_memory_sized_from_measurements(synth: Synth) -> None:
    props = synth.template_json["Resources"][_function_ids(synth)["mcp_server"]]["Properties"]
    assert props["MemorySize"] == 512  # README, Cost: peak RSS 93-155 MiB, ~1 ms CPU per warm call


def test_snapstart_only_on_mcp_and_routes_use_published_versions(synth: Synth) -> None:
    fn_ids = _function_ids(synth)
    for name, lid in fn_ids.items():
        props = synth.template_json["Resources"][lid]["Properties"]
        if name == "mcp_server":
            assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        else:
            assert "SnapStart" not in props
    versions = synth.resources("AWS::Lambda::Version")
    # Old versions are deleted on deploy, so no stale SnapStart cache stays billed.
    assert all(v["DeletionPolicy"] == "Delete" for v in versions.values())
    for alias in synth.resources("AWS::Lambda::Alias").values():
        version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert version_id in versions
        assert versions[version_id]["Properties"]["FunctionName"] == alias["Properties"]["FunctionName"]


def _expected_env(model: type[CoreSettings]) -> set[str]:
    return {env_var_name(n, f) for n, f in model.model_fields.items()} - LOCAL_ONLY_ENV


def test_environment_derived_from_settings_models(synth: Synth) -> None:
    fn_ids = _function_ids(synth)
    for name, model in (("mcp_server", McpSettings), ("metadata", MetadataSettings)):
        env = synth.template_json["Resources"][fn_ids[name]]["Properties"]["Environment"]["Variables"]
        own = {k for k in env if not k.startswith("POWERTOOLS_")}
        # Every variable set belongs to the model; every required one is set.
        assert own <= _expected_env(model), own - _expected_env(model)
        required = {env_var_name(n, f) for n, f in model.model_fields.items() if f.is_required()}
        assert required <= own
        assert env[Env.BASE_URL]["Fn::GetAtt"][1] == "ApiEndpoint"
    mcp_env = synth.template_json["Resources"][fn_ids["mcp_server"]]["Properties"]["Environment"]["Variables"]
    assert mcp_env[Env.RESOURCE_BINDING] == "true"
    assert mcp_env[Env.GRANT_CACHE_SECONDS] == str(synth.config.grant_cache_seconds)
    assert mcp_env[Env.REGION] == {"Ref": "AWS::Region"}
    assert mcp_env[Env.CLIENTS_TABLE] == {"Ref": _table_ids(synth)["clients"]}
    assert not LOCAL_ONLY_ENV & set(mcp_env)


# --- IAM -----------------------------------------------------------------------------------

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_star_resources_only_where_aws_requires_them(synth: Synth) -> None:
    """Every IAM statement with Resource "*" in the template, each named:

    1. X-Ray PutTraceSegments/PutTelemetryRecords, once per function role: X-Ray has no
       resource-level permissions.
    2. Each KMS key policy's account-root statement: a key policy's Resource is always "*"
       (it means "this key"), and the root statement keeps the key manageable through IAM.
    3. The alarm topic key's statement for CloudWatch (tests/infra/test_monitoring.py).
    """
    found: list[tuple[str, frozenset[str]]] = []
    for res in synth.template_json["Resources"].values():
        docs = []
        if res["Type"] == "AWS::IAM::Policy":
            docs.append(res["Properties"]["PolicyDocument"])
        elif res["Type"] == "AWS::IAM::Role":
            docs.extend(p["PolicyDocument"] for p in res["Properties"].get("Policies", []))
        elif res["Type"] == "AWS::KMS::Key":
            docs.append(res["Properties"]["KeyPolicy"])
        for doc in docs:
            for stmt in doc["Statement"]:
                resources = stmt.get("Resource")
                resources = resources if isinstance(resources, list) else [resources]
                if "*" in resources:
                    found.append((res["Type"], frozenset(_actions(stmt))))
    role_count = len(FUNCTIONS)
    assert sorted(found, key=str) == sorted(
        [("AWS::IAM::Policy", frozenset(XRAY_ACTIONS))] * role_count
        + [("AWS::KMS::Key", frozenset({"kms:*"}))] * 2
        + [("AWS::KMS::Key", frozenset({"kms:Decrypt", "kms:GenerateDataKey*"}))],
        key=str,
    )
    [key] = [k for k in synth.resources("AWS::KMS::Key").values() if "upstream" in k["Properties"]["Description"]]
    (root,) = key["Properties"]["KeyPolicy"]["Statement"]
    assert root["Principal"]["AWS"]["Fn::Join"][1][-1] == ":root"


def test_mcp_role_holds_exactly_its_table_actions(synth: Synth) -> None:
    tables = _table_ids(synth)
    stmts = _statements_of_role(synth, _role_of(synth, "mcp_server"))
    ddb: dict[str, set[str]] = {}
    for stmt in stmts:
        if any(a.startswith("dynamodb:") for a in _actions(stmt)):
            # CDK merges statements with equal actions into one with several resources.
            resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
            for resource in resources:
                ddb.setdefault(_logical_id(resource), set()).update(_actions(stmt))
    assert ddb == {
        tables["grants"]: {"dynamodb:GetItem"},
        # read only: is the grant's registered client still there (RFC 7592 section 2.3)
        tables["clients"]: {"dynamodb:GetItem"},
        # the app's own tables, with the actions its app.json declares (the default set here)
        **{tables[t.name]: set(t.actions) for t in synth.config.app.tables},
    }
    assert {tables[t.name] for t in synth.config.app.tables} == {tables["notes"]}
    assert not [s for s in stmts if any(a.startswith(("kms:", "cognito-idp:")) for a in _actions(s))]


def test_metadata_role_has_no_aws_access(synth: Synth) -> None:
    stmts = _statements_of_role(synth, _role_of(synth, "metadata"))
    for stmt in stmts:
        assert _actions(stmt) <= {"logs:CreateLogStream", "logs:PutLogEvents"} | XRAY_ACTIONS


def test_roles_write_only_their_own_log_group(synth: Synth) -> None:
    for name in FUNCTIONS:
        role = _role_of(synth, name)
        fn = synth.template_json["Resources"][_function_ids(synth)[name]]
        group = _logical_id(fn["Properties"]["LoggingConfig"]["LogGroup"])
        logs_stmts = [s for s in _statements_of_role(synth, role) if "logs:PutLogEvents" in _actions(s)]
        assert [_logical_id(s["Resource"]) for s in logs_stmts] == [group]


def test_access_table_covers_only_known_functions() -> None:
    assert set(ACCESS) <= set(FUNCTIONS) | {"registration", "authorization", "token"}


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
    access_group = _logical_id(props["AccessLogSettings"]["DestinationArn"])
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
    perms = synth.resources("AWS::Lambda::Permission")
    assert len(perms) == len(ROUTES)
    aliases = set(synth.resources("AWS::Lambda::Alias"))
    for perm in perms.values():
        props = perm["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert _logical_id(props["FunctionName"]) in aliases
        assert "execute-api" in json.dumps(props["SourceArn"])


def test_outputs(synth: Synth) -> None:
    outputs = synth.template_json["Outputs"]
    assert outputs["McpUrl"]["Value"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [_logical_id(outputs["Issuer"]["Value"]), "ApiEndpoint"]}, MCP_PATH]]
    }
    for name in ("Issuer", "UserPoolId", "ManagedLoginUrl", "GatewayClientId", "GrantsTableName", "NotesTableName"):
        assert name in outputs  # NotesTableName: the test app's table "notes"
    assert "CustomDomainTarget" not in outputs


# --- checks: cdk-nag, cfn-lint, assets -------------------------------------------------------

EXPECTED_ACKNOWLEDGEMENTS = {
    # rule id -> why it is acknowledged (the reason text itself lives next to the construct)
    "AwsSolutions-IAM5[Resource::*]",  # X-Ray actions, one per function role
    "AwsSolutions-APIG4",  # public OAuth/discovery routes; /mcp authorizes in the function
    "AwsSolutions-COG2",  # MFA optional by default (kit:mfa=required turns it on)
    "AwsSolutions-COG8",  # Essentials plan by default (kit:threatProtection switches to Plus)
    "AwsSolutions-L1",  # Python 3.13: the newest runtime the build can compile bytecode for
    # CDK's own warning: SnapStart needs published versions, which the alias provides.
    "Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish",
}


def _acknowledgements(app: Any) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every Validations acknowledgement in the app."""
    import aws_cdk as cdk

    from infra.nag import PLUGIN

    found = []
    for node in app.node.find_all():
        for entry in node.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    # cdk-nag rules carry the plugin prefix; CDK warnings are "Annotation::<id>".
                    found.append((node.node.path, rule.removeprefix(PLUGIN + "::"), reason))
    return found


def test_cdk_nag_zero_unacknowledged_errors(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
    assert [v for v in violations if v.get("severity") == "error"] == []


def test_every_acknowledgement_states_its_reason(synth: Synth) -> None:
    acks = _acknowledgements(synth.app)
    assert acks, "expected acknowledgement metadata"
    assert {rule for _, rule, _ in acks} == EXPECTED_ACKNOWLEDGEMENTS
    for path, rule, reason in acks:
        assert isinstance(reason, str), (path, rule)
        assert len(reason) > 30, (path, rule)


def test_production_variant_needs_fewer_acknowledgements(synth_custom: Synth) -> None:
    rules = {rule for _, rule, _ in _acknowledgements(synth_custom.app)}
    assert rules == EXPECTED_ACKNOWLEDGEMENTS - {"AwsSolutions-COG2", "AwsSolutions-COG8"}


def test_cfn_lint_zero_errors(synth: Synth, synth_custom: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    for s in (synth, synth_custom):
        matches = lint_file(
            s.outdir / f"{s.stack.stack_name}.template.json", ManualArgs(regions=["us-east-1", "eu-west-1"])
        )
        errors = [str(m) for m in matches if m.rule.id.startswith("E")]
        assert errors == []


def _asset_dirs(s: Synth) -> dict[str, Path]:
    fn_ids = _function_ids(s)
    out = {}
    for name, lid in fn_ids.items():
        key = s.template_json["Resources"][lid]["Properties"]["Code"]["S3Key"]
        out[name] = s.outdir / f"asset.{key.removesuffix('.zip')}"
    return out


def test_assets_hold_only_their_function(synth: Synth) -> None:
    dirs = _asset_dirs(synth)
    assert len(set(dirs.values())) == len(dirs), "each function has its own asset"
    for name, root in dirs.items():
        code = sorted(p.name for p in (root / "functions").iterdir() if p.name != "__pycache__")
        assert code == sorted(["__init__.py", "core", name])
        top = {p.name for p in root.iterdir()}
        assert not {"boto3", "botocore", "s3transfer", "bin"} & top, "the Lambda runtime provides boto3"
        # Bytecode of the runtime's version only: the kit's and the app's code beside their sources,
        # the rest sourceless.
        assert {p.name.split(".")[-2] for p in root.rglob("__pycache__/*.pyc")} == {"cpython-313"}
        own = (root / "functions", root / "kit_app")
        assert all(p.parent.name == "__pycache__" for d in own for p in d.rglob("*.pyc"))
        assert not [p for p in root.rglob("*.py") if not p.is_relative_to(own[0]) and not p.is_relative_to(own[1])]
        # The app: all of it in the MCP function (without its tests), only its catalogue elsewhere.
        shipped = sorted(p.name for p in (root / "kit_app").iterdir() if p.name != "__pycache__")
        assert shipped == (["app.json", "server.py", "store.py"] if name == "mcp_server" else ["app.json"]), name
        assert not [p for p in root.rglob("tests") if p.is_dir()]
        for dist in root.glob("*.dist-info"):
            assert not (dist / "RECORD").exists()
        size, _ = tree_size(root)
        assert size <= asset_budget(name), f"{name}: {size / 1e6:.1f} MB"
    assert (dirs["mcp_server"] / "mcp").is_dir()
    assert not (dirs["metadata"] / "mcp").exists(), "metadata does not ship the MCP SDK"
    assert not (dirs["metadata"] / "jose").exists()


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
    for lid in _function_ids(s).values():
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
