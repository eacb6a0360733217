"""Audit events of /mcp and registration, the metrics catalogue, and tracing off the cold path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from typing import Any

import pytest

from functions.core.platform.audit import AUDIT_SCHEMA, party_fields
from functions.core.platform.errors import unavailable_answer
from functions.core.platform.metrics import LOG_METRICS, METRICS, count, flushed
from functions.core.platform.observability import CONSTANT_KEYS, NAMESPACE, logger, metrics, tracing_enabled
from functions.mcp_server.server import UNKNOWN_TOOL
from tests.observability_capture import Captured, filtered
from tests.unit.registration.support import CONFIDENTIAL, PUBLIC, Kit
from tests.unit.test_audit import SCHEMA_FIELDS
from tests.unit.test_mcp_endpoint import Harness

# ----- every tools/call -------------------------------------------------------------------


def test_every_tools_call_is_one_audit_event_at_info_with_the_schema(seen: Captured) -> None:
    h = Harness()
    headers = h.authorize("alice")
    resp = h.call(headers, "whoami")
    assert resp.status_code == 200, resp.text
    [line] = [x for x in seen.lines() if x.get("audit", {}).get("action") == "tool.called"]
    assert line["level"] == "INFO"
    event = line["audit"]
    assert set(event) <= SCHEMA_FIELDS
    duration = event.pop("duration_ms")
    assert isinstance(duration, float) and duration >= 0
    assert event == {
        "schema": AUDIT_SCHEMA,
        "action": "tool.called",
        "outcome": "success",
        "actor": "client",
        "sub": "sub-alice",
        "username": "alice",
        "client_id": "agent-1",
        "grant_id": "origin-alice",
        "tool": "whoami",
        "scopes": ["notes:read", "notes:write"],
    }
    assert seen.counted("ToolCalls", tool="whoami", outcome="success") == 1
    # A second call is a second event: one per tools/call.
    assert h.call(headers, "list_notes").status_code == 200
    assert [e["tool"] for e in seen.events("tool.called")] == ["whoami", "list_notes"]


def test_a_tools_call_event_names_the_agent_as_its_grant_recorded_it(seen: Captured) -> None:
    h = Harness()
    headers = h.authorize("alice", client_name="Claude Desktop")
    assert h.call(headers, "whoami").status_code == 200
    [event] = seen.events("tool.called")
    assert (event["client_id"], event["client_name"]) == ("agent-1", "Claude Desktop")


def test_a_grant_without_a_recorded_name_still_authorizes_and_its_event_has_none(seen: Captured) -> None:
    # A grant of storage schema version 2: no client_name attribute at all.
    h = Harness()
    headers = h.authorize("alice")
    assert h.call(headers, "whoami").status_code == 200
    [event] = seen.events("tool.called")
    assert event["client_id"] == "agent-1" and "client_name" not in event


def test_a_step_up_refusal_is_a_denied_tool_call_and_a_step_up_metric(seen: Captured) -> None:
    h = Harness()
    headers = h.authorize("alice", granted=("notes:read",))
    resp = h.call(headers, "add_note", {"title": "t"})
    assert resp.status_code == 403
    [event] = seen.events("tool.called")
    assert (event["tool"], event["outcome"], event["reason"]) == ("add_note", "denied", "insufficient_scope")
    assert "duration_ms" not in event
    assert seen.counted("StepUpChallenges") == 1
    assert seen.counted("ToolCalls", tool="add_note", outcome="denied") == 1


def test_an_unknown_tool_is_an_error_event_and_one_bounded_metric_dimension(seen: Captured) -> None:
    h = Harness()
    headers = h.authorize("alice")
    name = "x" * 200
    assert h.call(headers, name).status_code == 200  # the SDK answers isError
    [event] = seen.events("tool.called")
    assert (event["outcome"], event["reason"], event["tool"]) == ("error", "unknown_tool", "x" * 64)
    assert seen.counted("ToolCalls", tool=UNKNOWN_TOOL, outcome="error") == 1
    assert name not in seen.stdout()


def test_a_tools_call_writes_its_audit_line_only_and_the_metric_filter_counts_that_line(seen: Captured) -> None:
    h = Harness()
    headers = h.authorize("alice")
    assert h.call(headers, "whoami").status_code == 200
    assert h.call(headers, "add_note", {"title": "t"}).status_code == 200
    # No EMF document for ToolCalls: the metric comes from the audit line (nothing written twice).
    assert [d for d in seen.emf() if "ToolCalls" in d] == []
    [first, second] = [line for line in seen.lines() if "audit" in line]
    assert filtered(LOG_METRICS["ToolCalls"], first) == {
        "service": first["service"],
        "tool": "whoami",
        "outcome": "success",
    }
    assert filtered(LOG_METRICS["ToolCalls"], second) == {
        "service": first["service"],
        "tool": "add_note",
        "outcome": "success",
    }
    assert seen.counted("ToolCalls") == 2


def test_an_unknown_tool_is_counted_once_by_emf_and_never_by_the_filter(seen: Captured) -> None:
    h = Harness()
    headers = h.authorize("alice")
    assert h.call(headers, "no_such_tool").status_code == 200  # the SDK answers isError
    [line] = [line for line in seen.lines() if "audit" in line]
    # The caller-chosen name never becomes a dimension value (a filter with 1,000 distinct
    # values in an hour may be disabled, and each value is a billed metric).
    assert line["audit"]["tool"] == "no_such_tool"
    assert filtered(LOG_METRICS["ToolCalls"], line) is None
    [doc] = [d for d in seen.emf() if "ToolCalls" in d]
    assert (doc["tool"], doc["outcome"]) == (UNKNOWN_TOOL, "error")
    assert seen.counted("ToolCalls") == 1


def test_lines_leave_out_the_lambda_context_fields_constant_per_log_group(
    seen: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-6744a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1")

    class Context:
        function_name = "kit-McpServerFunction-AbCdEfGhIjKl"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:kit-McpServerFunction-AbCdEfGhIjKl:live"
        aws_request_id = "3f5b8c1e-2d4a-4b6f-9e8d-7c6b5a4f3e2d"

    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> None:
        logger.info("x")

    try:
        handler({"requestContext": {"requestId": "JxYz1jAbIAMEb7g="}}, Context())
    finally:
        logger.structure_logs()  # the default keys again for the next test
    [line] = seen.lines()
    assert not CONSTANT_KEYS & set(line)
    assert "McpServerFunction" not in seen.text()
    # What ties the line to the rest of the request stays.
    assert line["function_request_id"] == Context.aws_request_id
    assert line["correlation_id"] == "JxYz1jAbIAMEb7g="
    assert line["xray_trace_id"] == "1-6744a1b2-0123456789abcdef01234567"
    assert {"level", "message", "timestamp", "service", "cold_start"} <= set(line)


# README, Cost: the bytes of function log a tools/call costs (the audit line, values shaped as in AWS).
AUDIT_LINE_BYTES = 675
AWS_FUNCTION = "McpCognitoKit-prod-McpServerFunction1A2B3C4D-AbCdEfGhIjKl"  # CloudFormation-generated


class AwsContext:
    function_name = AWS_FUNCTION
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{AWS_FUNCTION}:live"
    aws_request_id = "3f5b8c1e-2d4a-4b6f-9e8d-7c6b5a4f3e2d"


def test_a_tools_call_audit_line_shaped_as_in_aws_stays_within_the_cost_figure(
    seen: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.logging import correlation_paths

    from functions.core.platform.audit import audit

    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-6744a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1")
    uuid = "7c3e9a52-1f0b-4d8e-a6c2-5b9d0e4f1a37"

    # As functions/mcp_server/handler.py wraps every invocation (POWERTOOLS_SERVICE_NAME=mcp_server).
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> None:
        logger.append_keys(service="mcp_server")
        audit(
            "tool.called",
            actor="client",
            tool="list_todos",
            duration_ms=1.2345,
            scopes=("todos:read", "todos:write"),
            sub=uuid,
            username=uuid,
            client_id="4Qk9v2ZbXc7HfR1tLw8yNp",  # new_secret(16): 22 characters
            client_name="Claude Code",
            grant_id="b1d4f7a2-8c3e-4f9b-a2d5-6e8f0c1b3a47",
        )

    try:
        for _ in range(2):  # the second is a warm invocation (cold_start false)
            handler({"requestContext": {"requestId": "JxYz1jAbIAMEb7g="}}, AwsContext())
    finally:
        logger.structure_logs()  # the default keys again for the next test
    [_, warm] = seen.logs.getvalue().splitlines(keepends=True)
    assert json.loads(warm)["service"] == "mcp_server" and json.loads(warm)["cold_start"] is False
    assert len(warm.encode()) <= AUDIT_LINE_BYTES, warm
    assert not [d for d in seen.emf() if "ToolCalls" in d]  # and nothing else


def test_authentication_failures_are_counted_by_reason(seen: Captured) -> None:
    h = Harness()
    assert h.call({}, "whoami").status_code == 401
    assert h.call({"authorization": "Bearer not-a-jwt"}, "whoami").status_code == 401
    revoked = h.authorize("bob")
    h.grants.revoke("origin-bob", "test", 1)
    assert h.call(revoked, "whoami").status_code == 401
    assert seen.counted("AuthenticationFailures", reason="no_token") == 1
    assert seen.counted("AuthenticationFailures", reason="malformed") == 1
    assert seen.counted("AuthenticationFailures", reason="grant_inactive") == 1
    assert seen.events("tool.called") == []  # nothing ran


# ----- registration -------------------------------------------------------------------------


def test_client_registered_updated_deleted_events_and_metrics(seen: Captured) -> None:
    kit = Kit()
    reg = kit.register(CONFIDENTIAL).json
    token = reg["registration_access_token"]
    assert (
        kit.manage(
            "PUT", reg["client_id"], token, {**CONFIDENTIAL, "client_id": reg["client_id"], "client_name": "B"}
        ).status
        == 200
    )
    assert kit.manage("DELETE", reg["client_id"], token).status == 204
    events = [(e["action"], e["client_id"], e.get("client_name"), e["actor"]) for e in seen.events()]
    assert events == [
        ("client.registered", reg["client_id"], "Agent", "client"),
        ("client.updated", reg["client_id"], "B", "client"),
        ("client.deleted", reg["client_id"], "B", "client"),
    ]
    assert seen.counted("ClientsRegistered") == 1
    for secret in (token, reg["client_secret"]):
        assert secret not in seen.text()


def test_a_deduplicated_registration_is_an_event_and_429s_are_counted(seen: Captured) -> None:
    kit = Kit(registration_rate_per_minute=1)
    first = kit.register(PUBLIC).json
    again = kit.register(PUBLIC).json
    assert again["client_id"] == first["client_id"]
    assert [e.get("reason") for e in seen.events("client.registered")] == [None, "deduplicated"]
    assert kit.register({**PUBLIC, "client_name": "other"}).status == 429
    assert seen.counted("RegistrationsThrottled") == 1
    assert seen.counted("ClientsRegistered") == 1


# ----- the metrics catalogue ----------------------------------------------------------------


def test_a_metric_is_counted_only_with_its_declared_dimensions() -> None:
    with pytest.raises(ValueError, match="ToolCalls"):
        count("ToolCalls", tool="whoami")
    with pytest.raises(ValueError, match="TokensIssued"):
        count("TokensIssued", reason="x")
    assert all(isinstance(d, tuple) for d in METRICS.values())


def test_a_flushed_handler_writes_its_invocation_metrics_once(seen: Captured, monkeypatch: pytest.MonkeyPatch) -> None:
    # POWERTOOLS_SERVICE_NAME is the function's name in AWS (infra/functions.py).
    monkeypatch.setattr(metrics, "service", "token")

    @flushed
    def handler(event: dict[str, Any], context: Any) -> str:
        count("TokensIssued")
        count("TokensIssued")
        return "done"

    assert handler({}, None) == "done"
    [doc] = [d for d in seen.emf() if "TokensIssued" in d]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    assert doc["TokensIssued"] == [1.0, 1.0] and doc["service"] == "token"
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "TokensIssued" not in metrics.metric_set  # flushed, not carried into the next invocation


def test_every_503_answer_is_counted(seen: Captured) -> None:
    assert unavailable_answer().status == 503
    assert seen.counted("DependencyUnavailable") == 1


def test_party_fields_take_only_non_empty_identity_strings() -> None:
    class Thing:
        sub, username, client_id, grant_id, secret = "s", "", "c", "g", "never"

    assert party_fields(Thing()) == {"sub": "s", "client_id": "c", "grant_id": "g"}


# ----- tracing ------------------------------------------------------------------------------


def test_tracing_is_on_only_with_an_xray_daemon_and_not_disabled() -> None:
    assert not tracing_enabled({})
    assert tracing_enabled({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"})
    assert not tracing_enabled({"AWS_XRAY_DAEMON_ADDRESS": "x:1", "POWERTOOLS_TRACE_DISABLED": "true"})


_PROBE = """
import json, sys
import functions.core.platform.observability
patched = []
if "aws_xray_sdk" in sys.modules:
    from aws_xray_sdk.core import patcher
    patched = sorted(patcher._PATCHED_MODULES)
print(json.dumps({"xray": "aws_xray_sdk" in sys.modules, "patched": patched}))
"""


def _import_observability(**env: str) -> dict[str, Any]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_XRAY", "POWERTOOLS_TRACE", "AWS_LAMBDA", "LAMBDA_"))
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_without_tracing_aws_xray_sdk_is_not_imported() -> None:
    assert _import_observability(LAMBDA_TASK_ROOT="/var/task") == {"xray": False, "patched": []}


def test_with_tracing_botocore_and_http_client_calls_become_subsegments() -> None:
    seen = _import_observability(
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000", LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_SERVICE_NAME="probe"
    )
    assert seen["xray"]
    assert {"botocore", "httplib"} <= set(seen["patched"])


def test_tracing_without_aws_xray_sdk_warns_and_goes_on(monkeypatch: pytest.MonkeyPatch, seen: Captured) -> None:
    import importlib.util

    from functions.core.platform.observability import start_tracing

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "aws_xray_sdk" else real(name))
    assert start_tracing({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}) is False
    assert any("aws-xray-sdk is not installed" in line["message"] for line in seen.lines())


def test_a_refused_client_metadata_document_is_counted(seen: Captured) -> None:
    from functions.core.clients.cimd import CimdResolver

    # Refused by the URL rules (https only), before any network access.
    assert CimdResolver().resolve("http://agent.example/client.json") is None
    assert seen.counted("CimdFetchFailures", outcome="refused") == 1
    assert seen.counted("CimdFetchFailures", outcome="unavailable") == 0


def test_the_authorization_outage_page_is_counted(seen: Captured) -> None:
    from functions.authorization.pages import unavailable_page

    assert unavailable_page().status == 503
    assert seen.counted("DependencyUnavailable") == 1


def test_an_invocation_that_counted_nothing_warns_nothing(seen: Captured) -> None:
    @flushed
    def handler(event: dict[str, Any], context: Any) -> str:
        return "done"

    with warnings.catch_warnings(record=True) as caught:
        assert handler({}, None) == "done"
    assert [str(w.message) for w in caught] == []
    assert not list(seen.emf())
