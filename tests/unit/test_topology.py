"""The deployment topology: one home for settings models, environments, tables and groups,
and the local stack built from it exactly as the CDK stack is (each function sees only its own
variables, and a missing one fails the same way)."""

from __future__ import annotations

import ast
import inspect
import json
import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from pydantic import BaseModel, Field

from functions.core.platform import kit_app, settings, topology
from functions.core.platform.routes import FUNCTIONS
from functions.core.platform.settings import CoreSettings, Env, McpSettings, MetadataSettings, SettingsError
from functions.core.platform.topology import IndexSpec, TableSpec, TopologyError
from local import seed as local_seed
from local.config import REGION, LocalConfig, demo_users, table_name
from local.seed import Seeded
from local.stack import function_container, function_environment, function_environments

REPO = Path(__file__).resolve().parents[2]
SEEDED = Seeded(
    user_pool_id="us-east-1_Abc123", gateway_client_id="gw", gateway_client_secret="s", kms_key_id="k", passwords={}
)


def _available() -> dict[str, str]:
    return function_environment(LocalConfig(), SEEDED)


def test_make_dev_allows_the_inspector_under_both_of_its_loopback_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # The Inspector prints http://127.0.0.1:6274; people open it as localhost too.
    monkeypatch.delenv(Env.ALLOWED_ORIGINS, raising=False)
    mcp = McpSettings.from_env(topology.function_environment("mcp_server", _available(), local=True))
    assert set(mcp.allowed_origins) == {"http://localhost:6274", "http://127.0.0.1:6274"}


# --- settings models: one home -------------------------------------------------------------


def test_every_function_has_a_settings_model() -> None:
    assert set(topology.SETTINGS_BY_FUNCTION) == set(FUNCTIONS)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_handler_loads_the_model_the_topology_names(function: str) -> None:
    """A handler names no settings model of its own: it loads ``topology.<FUNCTION>``."""
    source = (REPO / "functions" / function / "handler.py").read_text(encoding="utf-8")
    loads = [
        node.func.value.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Attribute)
        and isinstance(node.func.value.value, ast.Name)
        and node.func.value.value.id == "topology"
    ]
    assert len(loads) == 1, f"{function}: expected one topology.<FUNCTION>.load(), found {loads}"
    assert getattr(topology, loads[0]).function == function
    assert "settings.load(" not in source and "settings_mod" not in source


def test_function_settings_load_validates_the_topologys_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in topology.kit_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(Env.BASE_URL, "https://mcp.example.com")
    settings.load.cache_clear()
    try:
        loaded = topology.METADATA.load()
    finally:
        settings.load.cache_clear()  # other tests' handlers load their own environment
    assert type(loaded) is MetadataSettings is topology.settings_model("metadata")
    assert topology.settings_model("some_new_function") is CoreSettings


# --- environments: the same builder for AWS and local ---------------------------------------


def test_environment_is_the_models_fields_only() -> None:
    available = {
        Env.BASE_URL: "https://b",
        Env.USER_POOL_ID: "p",
        Env.GRANTS_TABLE: "g",
        Env.ISSUER: "never-in-aws",
    }
    assert topology.model_environment(CoreSettings, available, local=False) == {Env.BASE_URL: "https://b"}
    with pytest.raises(ValueError, match=Env.REGION):
        topology.model_environment(McpSettings, available, local=False)
    assert Env.ISSUER in topology.LOCAL_ONLY_ENV


def test_environment_follows_plain_aliases_too() -> None:
    class Legacy(BaseModel):
        x: str = Field(alias="X_VAR")

    assert topology.model_environment(Legacy, {"X_VAR": "1"}, local=False) == {"X_VAR": "1"}


def test_local_only_variables_reach_local_functions_only() -> None:
    available = _available()
    aws = topology.function_environment("mcp_server", available, local=False)
    local = topology.function_environment("mcp_server", available, local=True)
    assert Env.JWKS_URL in local and Env.JWKS_URL not in aws
    assert set(local) - set(aws) <= topology.LOCAL_ONLY_ENV


def test_cimd_test_switches_never_reach_aws() -> None:
    available = {**_available(), Env.INSECURE_CIMD_LOOPBACK: "true", Env.CIMD_CA_FILE: "test-ca.pem"}
    for function in ("authorization", "token"):
        aws = topology.function_environment(function, available, local=False)
        assert Env.INSECURE_CIMD_LOOPBACK not in aws and Env.CIMD_CA_FILE not in aws
        local = topology.function_environment(function, available, local=True)
        assert local[Env.INSECURE_CIMD_LOOPBACK] == "true"


def test_kit_variables_are_every_env_name() -> None:
    names = topology.kit_variables()
    assert {Env.BASE_URL, Env.GRANTS_TABLE, Env.APP_TABLES, Env.CIMD_CA_FILE} <= names
    assert all(isinstance(n, str) and n.isupper() for n in names)


def test_each_local_function_gets_only_its_models_variables() -> None:
    environments = function_environments(_available())
    assert set(environments) == set(FUNCTIONS)
    kit = topology.kit_variables()
    for name, env in environments.items():
        own = set(env) & kit
        expected = {topology.env_var_name(n, f) for n, f in topology.settings_model(name).model_fields.items()} & set(
            _available()
        )
        assert own == expected, name
        assert env["POWERTOOLS_SERVICE_NAME"] == "mcp-cognito-kit"  # not the kit's: every function
    # What AWS would not give them either.
    assert Env.GRANTS_TABLE not in environments["metadata"]
    assert Env.KMS_KEY_ID not in environments["mcp_server"]
    assert Env.COGNITO_DOMAIN_URL not in environments["registration"]


def test_local_function_missing_a_variable_fails_as_synth_does() -> None:
    available = _available()
    del available[Env.CLIENTS_TABLE]
    with pytest.raises(TopologyError) as aws:
        topology.function_environment("mcp_server", available, local=False)
    with pytest.raises(TopologyError) as local:
        function_environments(available)
    assert (
        str(local.value)
        == str(aws.value)
        == (f"McpSettings requires {Env.CLIENTS_TABLE}, which the stack does not provide")
    )


def test_function_container_hides_other_functions_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """At cold start a function sees its own variables only, even if the process has more."""
    available = _available()
    monkeypatch.setenv(Env.GRANTS_TABLE, "left-over-from-another-function")
    monkeypatch.setenv("UNRELATED_VARIABLE", "kept")
    metadata_env = function_environments(available)["metadata"]
    before = dict(os.environ)
    with function_container(metadata_env):
        assert Env.GRANTS_TABLE not in os.environ
        assert os.environ["UNRELATED_VARIABLE"] == "kept"
        assert MetadataSettings.from_env().base_url == LocalConfig().base_url
        # The MCP function's model, in the metadata function's container: its variables are
        # absent, and it fails at cold start naming them, as it would in AWS.
        with pytest.raises(SettingsError, match=Env.GRANTS_TABLE):
            McpSettings.from_env()
    assert dict(os.environ) == before


def test_function_container_restores_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(Env.KMS_KEY_ID, "outer")
    with pytest.raises(RuntimeError), function_container({Env.BASE_URL: "http://localhost:1"}):
        raise RuntimeError("cold start failed")
    assert os.environ[Env.KMS_KEY_ID] == "outer"


# --- tables and groups --------------------------------------------------------------------


def test_table_environment_names_kit_and_app_tables() -> None:
    app = kit_app.current()
    env = topology.table_environment(app, table_name)
    assert env[Env.GRANTS_TABLE] == "mcp-kit-grants"
    assert json.loads(env[Env.APP_TABLES]) == {t.name: f"mcp-kit-app-{t.name}" for t in app.tables}
    assert [s.key for s in topology.all_tables(app)] == [
        *(s.key for s in topology.TABLES),
        *(t.name for t in app.tables),
    ]


def test_all_tables_keeps_only_the_named_grants_indexes() -> None:
    app = kit_app.current()

    def indexes(names: tuple[str, ...]) -> list[str]:
        (grants,) = [s for s in topology.all_tables(app, names) if s.key == "grants"]
        return [i.name for i in grants.indexes]

    assert indexes(topology.GRANT_INDEX_NAMES) == ["by_user", "by_client"] == indexes(("by_client", "by_user"))
    assert indexes(("by_client",)) == ["by_client"] and indexes(()) == []
    assert topology.all_tables(app) == topology.all_tables(app, topology.GRANT_INDEX_NAMES)
    assert all(not s.indexes for s in topology.all_tables(app, ()))  # only the grants table has indexes
    with pytest.raises(topology.TopologyError, match="by_usr"):
        topology.all_tables(app, ("by_usr",))


def test_local_seeding_creates_a_specs_indexes() -> None:
    spec = TableSpec(
        "grants",
        Env.GRANTS_TABLE,
        indexes=(IndexSpec("by_user", "user_sub", "created_at"), IndexSpec("by_client", "client_id")),
    )
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        local_seed._table(ddb, spec)
        table = ddb.describe_table(TableName=table_name(spec))["Table"]
    indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {
        "by_user": [
            {"AttributeName": "user_sub", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"},
        ],
        "by_client": [{"AttributeName": "client_id", "KeyType": "HASH"}],
    }
    assert {a["AttributeName"] for a in table["AttributeDefinitions"]} == {"pk", "user_sub", "created_at", "client_id"}


def test_groups_are_the_ceilings_groups_in_first_mention_order() -> None:
    assert topology.ceiling_groups({"a": ("x", "y"), "b": ("y", "z")}) == ("x", "y", "z")
    ceilings = topology.scope_group_ceilings(kit_app.current())
    assert demo_users()[0].groups == topology.ceiling_groups(ceilings)


def test_topology_is_pure_data() -> None:
    """Lambda code imports it: no CDK, no boto3."""
    tree = ast.parse(inspect.getsource(topology))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in {"aws_cdk", "constructs", "boto3", "infra", "local"}}


def test_grant_listings_project_every_grant_attribute_but_the_secret_ones() -> None:
    """docs/storage-schema.md, grants table indexes: a listing sees the whole grant (its agent's
    ``client_name`` included) except Cognito's refresh-token ciphertext and the chain head."""
    from functions.core.state.grants import GRANTS

    never = {"upstream_refresh", "refresh_head"}
    stored = {a.name for a in GRANTS.attributes} | {"ttl"}
    for index in (topology.GRANTS_BY_USER, topology.GRANTS_BY_CLIENT):
        projected = set(index.non_key_attributes or ()) | {index.partition_key}
        assert "client_name" in projected
        assert stored - never <= projected
        assert not never & projected
