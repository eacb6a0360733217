"""No drift between `make dev` and AWS: what local seeding creates in moto equals the template.

The other drift checks compare the template with the route table and the catalogue; these
compare it with the *seeded* local stack itself (resource server scopes, gateway client
scopes and flows, callback path, groups, tables' keys, each function's environment). Both are
built from the deployment topology (functions/core/platform/topology.py), so these hold by
construction; they stay as the proof.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.core.platform import topology
from functions.core.platform.topology import TABLES, app_table_specs
from local.config import REGION, LocalConfig, app_table_name
from local.seed import Seeded
from local.stack import function_environment, function_environments
from tests.infra.conftest import Synth
from tests.integration.conftest import MotoStack, moto_stack  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def seeded(moto_stack: MotoStack) -> tuple[LocalConfig, Seeded, Any, Any]:  # noqa: F811
    """The seeded moto stack of this worker (one per process: moto keeps one in-process store,
    so a second server seeding the same names would collide with it, and resetting it would
    empty the integration tests' stack)."""
    cfg = moto_stack.cfg
    idp = boto3.client("cognito-idp", region_name=REGION, endpoint_url=cfg.moto_url)
    ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=cfg.moto_url)
    return cfg, moto_stack.seeded, idp, ddb


def _scope_names(scopes: list[dict[str, str]]) -> dict[str, str]:
    return {s["ScopeName"]: s["ScopeDescription"] for s in scopes}


def test_seeded_resource_server_equals_template(synth: Synth, seeded: Any) -> None:
    cfg, result, idp, _ = seeded
    local = idp.describe_resource_server(UserPoolId=result.user_pool_id, Identifier=cfg.base_url + "/mcp")
    _, aws = synth.one("AWS::Cognito::UserPoolResourceServer")
    assert _scope_names(local["ResourceServer"]["Scopes"]) == _scope_names(aws["Properties"]["Scopes"])


def test_seeded_gateway_client_equals_template(synth: Synth, seeded: Any) -> None:
    cfg, result, idp, _ = seeded
    local = idp.describe_user_pool_client(UserPoolId=result.user_pool_id, ClientId=result.gateway_client_id)
    local_client = local["UserPoolClient"]
    _, aws_client = synth.one("AWS::Cognito::UserPoolClient")
    props = aws_client["Properties"]
    assert local_client["AllowedOAuthFlows"] == props["AllowedOAuthFlows"] == ["code"]
    assert local_client["ExplicitAuthFlows"] == props["ExplicitAuthFlows"]
    assert bool(local_client.get("ClientSecret")) == props["GenerateSecret"] is True

    # Scopes: same names once the resource-server prefix (a URL locally, a Ref in AWS) is removed.
    def names(scopes: list[Any]) -> set[str]:
        out = set()
        for scope in scopes:
            if isinstance(scope, str):
                out.add(scope.rsplit("/", 1)[-1] if "/" in scope else scope)
            else:  # {"Fn::Join": ["", [{"Ref": ...}, "/notes:read"]]}
                out.add(scope["Fn::Join"][1][-1].lstrip("/"))
        return out

    assert names(local_client["AllowedOAuthScopes"]) == names(props["AllowedOAuthScopes"])
    # Callback: <B>/oauth/callback in both.
    local_paths = {u.removeprefix(cfg.base_url) for u in local_client["CallbackURLs"]}
    aws_paths = {url["Fn::Join"][1][-1] for url in props["CallbackURLs"]}
    assert local_paths == aws_paths


def test_seeded_groups_equal_template(synth: Synth, seeded: Any) -> None:
    _, result, idp, _ = seeded
    local = {g["GroupName"] for g in idp.list_groups(UserPoolId=result.user_pool_id)["Groups"]}
    aws = {g["Properties"]["GroupName"] for g in synth.resources("AWS::Cognito::UserPoolGroup").values()}
    assert local == aws


def test_seeded_tables_match_template_keys(synth: Synth, seeded: Any) -> None:
    cfg, result, _, ddb = seeded
    env = function_environment(cfg, result)
    for spec in (*TABLES, *app_table_specs(synth.config.app)):
        name = env[spec.env] if spec.env else app_table_name(spec.key)
        assert spec.env or json.loads(env["APP_TABLES"])[spec.key] == name
        local = ddb.describe_table(TableName=name)["Table"]
        local_keys = {(k["AttributeName"], k["KeyType"]) for k in local["KeySchema"]}
        expected = {(spec.partition_key, "HASH")} | ({(spec.sort_key, "RANGE")} if spec.sort_key else set())
        assert local_keys == expected, spec.key
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == spec.ttl_attribute, spec.key


def test_local_functions_see_no_variable_aws_withholds(synth: Synth, seeded: Any) -> None:
    """Each local function's kit variables are among its template environment, but for the
    local-only overrides (moto's JWKS URL, CIMD on loopback): both come from the topology."""
    cfg, result, _, _ = seeded
    local = function_environments(function_environment(cfg, result))
    kit = topology.kit_variables()
    for lid, res in synth.resources("AWS::Lambda::Function").items():
        name = res["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        aws = set(res["Properties"]["Environment"]["Variables"])
        extra = (set(local[name]) & kit) - aws
        assert extra <= topology.LOCAL_ONLY_ENV, (name, lid, extra)
        # And every variable the model requires is set in both.
        required = {
            topology.env_var_name(n, f)
            for n, f in topology.settings_model(name).model_fields.items()
            if f.is_required()
        }
        assert required <= aws & set(local[name]), name
