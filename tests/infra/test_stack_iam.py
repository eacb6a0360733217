"""The template's IAM: least privilege per function role."""

from __future__ import annotations

import pytest

from functions.core.platform.routes import FUNCTIONS
from infra.functions import ACCESS
from tests.infra.conftest import Synth
from tests.infra.template import (
    actions,
    function_ids,
    logical_id,
    role_of,
    statements_of_role,
    table_ids,
)

pytestmark = pytest.mark.infra


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
                    found.append((res["Type"], frozenset(actions(stmt))))
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
    tables = table_ids(synth)
    stmts = statements_of_role(synth, role_of(synth, "mcp_server"))
    ddb: dict[str, set[str]] = {}
    for stmt in stmts:
        if any(a.startswith("dynamodb:") for a in actions(stmt)):
            # CDK merges statements with equal actions into one with several resources.
            resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
            for resource in resources:
                ddb.setdefault(logical_id(resource), set()).update(actions(stmt))
    assert ddb == {
        tables["grants"]: {"dynamodb:GetItem"},
        # read only: is the grant's registered client still there (RFC 7592 section 2.3)
        tables["clients"]: {"dynamodb:GetItem"},
        # the app's own tables, with the actions its app.json declares (the default set here)
        **{tables[t.name]: set(t.actions) for t in synth.config.app.tables},
    }
    assert {tables[t.name] for t in synth.config.app.tables} == {tables["notes"]}
    assert not [s for s in stmts if any(a.startswith(("kms:", "cognito-idp:")) for a in actions(s))]


def test_registration_role_holds_exactly_the_actions_its_code_calls(synth: Synth) -> None:
    """Put, Get, Update, Delete and BatchGet on clients; the rate limit's Update on artefacts.

    Its one transaction (a client and its DEDUPE item) holds two Puts: TransactWriteItems is
    authorized per contained operation, so no ConditionCheckItem, which no registration code
    path sends (least privilege: an unused grant only widens what a compromised function can do).
    """
    tables = table_ids(synth)
    ddb: dict[str, set[str]] = {}
    for stmt in statements_of_role(synth, role_of(synth, "registration")):
        if any(a.startswith("dynamodb:") for a in actions(stmt)):
            resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
            for resource in resources:
                ddb.setdefault(logical_id(resource), set()).update(actions(stmt))
    assert ddb == {
        tables["clients"]: {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchGetItem",
        },
        tables["artefacts"]: {"dynamodb:UpdateItem"},
    }


def test_metadata_role_has_no_aws_access(synth: Synth) -> None:
    stmts = statements_of_role(synth, role_of(synth, "metadata"))
    for stmt in stmts:
        assert actions(stmt) <= {"logs:CreateLogStream", "logs:PutLogEvents"} | XRAY_ACTIONS


def test_roles_write_only_their_own_log_group(synth: Synth) -> None:
    for name in FUNCTIONS:
        role = role_of(synth, name)
        fn = synth.template_json["Resources"][function_ids(synth)[name]]
        group = logical_id(fn["Properties"]["LoggingConfig"]["LogGroup"])
        logs_stmts = [s for s in statements_of_role(synth, role) if "logs:PutLogEvents" in actions(s)]
        assert [logical_id(s["Resource"]) for s in logs_stmts] == [group]


def test_access_table_covers_only_known_functions() -> None:
    assert set(ACCESS) <= set(FUNCTIONS) | {"registration", "authorization", "token"}
