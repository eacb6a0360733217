"""The template's tables, KMS key and Lambda functions: shared defaults, sizing, SnapStart, environment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from functions.core.platform import topology
from functions.core.platform.routes import FUNCTIONS, ROUTES
from functions.core.platform.settings import CoreSettings, Env
from functions.core.platform.topology import LOCAL_ONLY_ENV, IndexSpec, TableSpec, env_var_name
from infra.data import KitTables
from tests.infra.conftest import Synth
from tests.infra.template import (
    all_tables,
    function_ids,
    logical_id,
    table_ids,
)

pytestmark = pytest.mark.infra


# --- data and keys -------------------------------------------------------------------------


def test_tables_on_demand_ttl_pitr_encrypted_retained(synth: Synth) -> None:
    tables = synth.resources("AWS::DynamoDB::Table")
    assert len(tables) == len(all_tables(synth))
    ids = table_ids(synth)
    for spec in all_tables(synth):
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
    for name, lid in function_ids(synth).items():
        props = synth.template_json["Resources"][lid]["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["Handler"] == FUNCTIONS[name].handler  # type: ignore[index]
        assert props["TracingConfig"] == {"Mode": "Active"}
        if name in {route.function for route in ROUTES}:
            assert props["Timeout"] <= 29, "API Gateway HTTP APIs give up after 30 s"
        group = logical_id(props["LoggingConfig"]["LogGroup"])
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
    props = synth.template_json["Resources"][function_ids(synth)["mcp_server"]]["Properties"]
    assert props["MemorySize"] == 256  # README, Cost: peak RSS 151-156 MiB, ~1.3 ms CPU per warm call


def test_snapstart_only_on_mcp_and_routes_use_published_versions(synth: Synth) -> None:
    fn_ids = function_ids(synth)
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
    fn_ids = function_ids(synth)
    assert set(fn_ids) == set(topology.SETTINGS_BY_FUNCTION)
    for name, fn_id in fn_ids.items():
        model = topology.settings_model(name)
        env = synth.template_json["Resources"][fn_id]["Properties"]["Environment"]["Variables"]
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
    assert mcp_env[Env.CLIENTS_TABLE] == {"Ref": table_ids(synth)["clients"]}
    assert not LOCAL_ONLY_ENV & set(mcp_env)


def test_table_spec_indexes_become_global_secondary_indexes() -> None:
    """An index declared on a topology table reaches CloudFormation (and local seeding, tests/unit)."""
    stack = cdk.Stack(cdk.App(), "Indexes")
    spec = TableSpec("grants", Env.GRANTS_TABLE, indexes=(IndexSpec("by_user", "user_sub", "created_at"),))
    KitTables(stack, "Data", specs=(spec,), retain=False)
    (table,) = Template.from_stack(stack).find_resources("AWS::DynamoDB::Table").values()
    (index,) = table["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_user"
    assert index["KeySchema"] == [
        {"AttributeName": "user_sub", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    names = {a["AttributeName"] for a in table["Properties"]["AttributeDefinitions"]}
    assert names == {"pk", "user_sub", "created_at"}


def test_an_environment_over_lambdas_4_kb_fails_at_synth(tmp_path: Any) -> None:
    from app import build_app
    from infra.context import ConfigError
    from tests.conftest import TEST_APP

    patterns = [f"https://agents-{i:03d}.corp.example/oauth/callback/*" for i in range(100)]  # ~5 KB
    with pytest.raises(ConfigError, match=r"over Lambda's 4 KB .*REGISTRATION_REDIRECT_PATTERNS"):
        build_app({"kit:app": str(TEST_APP), "kit:redirectPatterns": patterns}, outdir=str(tmp_path))
    # What cdk.json deploys fits, CloudFormation's deploy-time values counted generously.
    build_app({"kit:app": str(TEST_APP)}, outdir=str(tmp_path / "default"))
