"""Deprovisioning in the synthesized template: trail, event rule, schedule, least-privilege role."""

from __future__ import annotations

import json
from typing import Any

from functions.core.state.reconciliation import NARROWING_CALLS, REVOKING_CALLS
from infra.deprovisioning import RECONCILE_MINUTES
from tests.infra.conftest import Synth
from tests.infra.template import actions as _actions
from tests.infra.template import function_ids as _function_ids
from tests.infra.template import logical_id as _logical_id
from tests.infra.template import role_of as _role_of
from tests.infra.template import statements_of_role as _statements_of_role


def _alias_of(synth: Synth, function: str) -> str:
    fn_id = _function_ids(synth)[function]
    (alias,) = [
        lid
        for lid, res in synth.resources("AWS::Lambda::Alias").items()
        if _logical_id(res["Properties"]["FunctionName"]) == fn_id
    ]
    return alias


def _rules(synth: Synth) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in synth.resources("AWS::Events::Rule").items()}


def test_a_trail_records_write_management_events_for_eventbridge(synth: Synth) -> None:
    _, trail = synth.one("AWS::CloudTrail::Trail")
    props = trail["Properties"]
    assert props["IsLogging"] is True  # EventBridge gets CloudTrail events only from a logging trail
    assert props["EventSelectors"] == [{"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}]
    assert props["IsMultiRegionTrail"] is False and props["EnableLogFileValidation"] is True
    bucket = synth.template_json["Resources"][_logical_id(props["S3BucketName"])]
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert bucket["DeletionPolicy"] == "Retain"


def test_the_rule_matches_the_admin_calls_on_the_kits_pool_and_targets_the_function(synth: Synth) -> None:
    (pattern_rule,) = [r for r in _rules(synth).values() if "EventPattern" in r]
    pattern = pattern_rule["EventPattern"]
    assert pattern["source"] == ["aws.cognito-idp"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert set(pattern["detail"]["eventName"]) == {*REVOKING_CALLS, *NARROWING_CALLS}
    (pool_id,) = synth.resources("AWS::Cognito::UserPool")
    assert pattern["detail"]["requestParameters"]["userPoolId"] == [{"Ref": pool_id}]
    [target] = pattern_rule["Targets"]
    assert _logical_id(target["Arn"]) == _alias_of(synth, "deprovisioning")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_a_schedule_runs_the_backstop(synth: Synth) -> None:
    (scheduled,) = [r for r in _rules(synth).values() if "ScheduleExpression" in r]
    assert scheduled["ScheduleExpression"] == f"rate({RECONCILE_MINUTES} minutes)"
    [target] = scheduled["Targets"]
    assert _logical_id(target["Arn"]) == _alias_of(synth, "deprovisioning")
    invoke = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert len(invoke) == 2
    assert all(_logical_id(p["FunctionName"]) == _alias_of(synth, "deprovisioning") for p in invoke)


def test_the_function_role_reads_the_by_user_index_and_the_pool_only(synth: Synth) -> None:
    statements = _statements_of_role(synth, _role_of(synth, "deprovisioning"))
    text = {json.dumps(s["Resource"]): _actions(s) for s in statements}
    index_statements = [s for s in statements if _actions(s) & {"dynamodb:Query", "dynamodb:Scan"}]
    assert set().union(*(_actions(s) for s in index_statements)) == {"dynamodb:Query", "dynamodb:Scan"}
    for statement in index_statements:
        resource = json.dumps(statement["Resource"])
        assert "/index/by_user" in resource and "index/*" not in resource
    table_actions = set().union(*(_actions(s) for s in statements if "/index/" not in json.dumps(s["Resource"])))
    dynamo = {a for a in table_actions if a.startswith("dynamodb:")}
    assert dynamo == {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    cognito = {a for actions in text.values() for a in actions if a.startswith("cognito-idp:")}
    # Reads only: disabling or deleting users is never this function's to do.
    assert cognito == {
        "cognito-idp:AdminGetUser",
        "cognito-idp:AdminListGroupsForUser",
        "cognito-idp:DescribeUserPoolClient",
    }
    kms = {a for actions in text.values() for a in actions if a.startswith("kms:")}
    assert kms == {"kms:Decrypt"}
