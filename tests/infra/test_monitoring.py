"""The monitoring construct: dashboard of the kit's metrics, every alarm, the encrypted alarm topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.core.platform.metrics import METRICS
from functions.core.platform.observability import NAMESPACE
from functions.core.platform.routes import FUNCTIONS
from infra.config import ConfigError, KitConfig
from infra.monitoring import DETECTIONS, DOCUMENT_ANSWERERS
from tests.infra.conftest import Synth
from tests.infra.template import logical_id
from tests.infra.test_context import _ctx


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.resources("AWS::CloudWatch::Alarm").items()}


def _metric_names(props: dict[str, Any]) -> set[str]:
    if "MetricName" in props:
        return {props["MetricName"]}
    return {m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m}


def test_every_alarm_goes_to_the_one_topic(synth: Synth) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    alarms = _alarms(synth)
    tables = len(synth.stack.data.tables)
    assert len(alarms) == 1 + 3 * len(FUNCTIONS) + tables + len(DETECTIONS)
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmDescription"]


def test_alarms_cover_api_lambda_dynamodb_and_detections(synth: Synth) -> None:
    names = [_metric_names(p) for p in _alarms(synth).values()]
    # The API 5xx rate, less the 503s answered for a client's unreachable metadata document.
    assert names.count({"5xx", "Count", "ClientDocumentUnavailable"}) == 1
    for metric in ("Errors", "Throttles", "Duration"):
        assert names.count({metric}) == len(FUNCTIONS), metric
    assert names.count({"ReadThrottleEvents", "WriteThrottleEvents"}) == len(synth.stack.data.tables)
    detections = [p for p in _alarms(synth).values() if p.get("Namespace") == NAMESPACE]
    assert sorted((p["MetricName"], p["Dimensions"][0]["Value"], p["Threshold"]) for p in detections) == sorted(
        (m, service, 1) for m, service in DETECTIONS
    )
    p99 = [p for p in _alarms(synth).values() if p.get("MetricName") == "Duration"]
    assert all(p["ExtendedStatistic"] == "p99" for p in p99)


def test_the_5xx_alarm_leaves_out_503s_for_a_clients_unreachable_metadata_document(synth: Synth) -> None:
    # A client's own document host down or busy is answered 503 "retry" (CIMD); it is the
    # client's outage, not the kit's, and must not page the operator.
    [rate] = [p for p in _alarms(synth).values() if "ClientDocumentUnavailable" in _metric_names(p)]
    metrics = {m["Id"]: m for m in rate["Metrics"]}
    documents = {
        key: m["MetricStat"]["Metric"]
        for key, m in metrics.items()
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "ClientDocumentUnavailable"
    }
    assert sorted(d["Dimensions"][0]["Value"] for d in documents.values()) == sorted(DOCUMENT_ANSWERERS)
    assert all(d["Namespace"] == NAMESPACE for d in documents.values())
    [expression] = [m["Expression"] for m in metrics.values() if "Expression" in m]
    for key in documents:
        assert f"- FILL({key}, 0)" in expression
    assert expression.startswith("IF(requests >= ") and "/ requests" in expression


def test_the_alarm_topic_is_encrypted_tls_only_and_its_key_serves_cloudwatch_only(synth: Synth) -> None:
    _, topic = synth.one("AWS::SNS::Topic")
    key_ref = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synth.template_json["Resources"][key_ref]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert len(cloudwatch) == 1 and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "aws:SourceAccount" in cloudwatch[0]["Condition"]["StringEquals"]
    _, policy = synth.one("AWS::SNS::TopicPolicy")
    [deny, allow] = sorted(policy["Properties"]["PolicyDocument"]["Statement"], key=lambda s: s["Effect"] != "Deny")
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # The topic policy replaces SNS's default one: without an Allow for CloudWatch every alarm
    # action fails ("not authorized to perform: SNS:Publish"), only in the alarm's history.
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert logical_id(allow["Resource"]) == logical_id(policy["Properties"]["Topics"][0])
    source = allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
    assert source == [
        "arn:",
        {"Ref": "AWS::Partition"},
        ":cloudwatch:",
        {"Ref": "AWS::Region"},
        ":",
        {"Ref": "AWS::AccountId"},
        ":alarm:*",
    ]
    assert synth.resources("AWS::SNS::Subscription") == {}  # kit:alarmEmail is null by default


def test_the_dashboard_shows_every_kit_metric_and_the_basics(synth: Synth) -> None:
    _, dashboard = synth.one("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in METRICS:
        assert f'MetricName=\\\\\\"{name}\\\\\\"' in body or f'MetricName=\\\\"{name}\\\\"' in body, name
    for basic in ("AWS/ApiGateway", "AWS/Lambda", "ReadThrottleEvents", "alarms"):  # alarms: the status widget
        assert basic in body, basic
    outputs = synth.template_json["Outputs"]
    assert {"Dashboard", "AlarmTopicArn"} <= set(outputs)


def test_tool_calls_are_counted_by_a_metric_filter_on_the_mcp_functions_audit_line(synth: Synth) -> None:
    [(_, tool_calls)] = [
        (k, v["Properties"])
        for k, v in synth.resources("AWS::Logs::MetricFilter").items()
        if v["Properties"]["MetricTransformations"][0]["MetricName"] == "ToolCalls"
    ]
    # The known tools' tool.called lines; an unknown tool's (caller-chosen name) are left out.
    assert tool_calls["FilterPattern"] == (
        '{ ($.audit.action = "tool.called") && (($.audit.reason NOT EXISTS) || ($.audit.reason != "unknown_tool")) }'
    )
    [transform] = tool_calls["MetricTransformations"]
    assert transform == {
        "MetricName": "ToolCalls",
        "MetricNamespace": NAMESPACE,
        "MetricValue": "1",
        "Unit": "Count",
        # The dimension set the dashboard searches: service + METRICS["ToolCalls"] (at most 3).
        "Dimensions": [
            {"Key": "service", "Value": "$.service"},
            {"Key": "tool", "Value": "$.audit.tool"},
            {"Key": "outcome", "Value": "$.audit.outcome"},
        ],
    }
    assert {d["Key"] for d in transform["Dimensions"]} == {"service", *METRICS["ToolCalls"]}
    # On the MCP function's own log group, which keeps the Standard class metric filters need.
    mcp_group = synth.stack.functions["mcp_server"].log_group.node.default_child
    assert tool_calls["LogGroupName"] == {"Ref": synth.stack.get_logical_id(mcp_group)}
    assert "LogGroupClass" not in synth.template_json["Resources"][synth.stack.get_logical_id(mcp_group)]["Properties"]


def test_alarm_email_is_validated() -> None:
    assert KitConfig.from_mapping(_ctx(alarmEmail="ops@example.com")).alarm_email == "ops@example.com"
    assert KitConfig.from_mapping(_ctx(alarmEmail=None)).alarm_email is None
    for bad in ("ops", "ops@example", "a b@example.com", ["ops@example.com"], 3):
        with pytest.raises(ConfigError, match="kit:alarmEmail"):
            KitConfig.from_mapping(_ctx(alarmEmail=bad))


def test_alarm_email_subscribes_to_the_topic() -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.monitoring import KitMonitoring

    stack = cdk.Stack(cdk.App())
    from aws_cdk import aws_apigatewayv2 as apigw

    KitMonitoring(
        stack,
        "M",
        api=apigw.HttpApi(stack, "Api"),
        functions={},
        tables={},
        email="ops@example.com",
        dashboard_name="d",
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
