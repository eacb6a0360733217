"""The audit event schema (functions/core/platform/audit.py)."""

from __future__ import annotations

import io
import json
from typing import get_args

import pytest

from functions.core.platform.audit import AUDIT_SCHEMA, AuditAction, audit, audit_event
from functions.core.platform.observability import logger

SCHEMA_FIELDS = {
    "schema",
    "action",
    "outcome",
    "actor",
    "reason",
    "sub",
    "username",
    "client_id",
    "client_name",
    "grant_id",
    "scopes",
    "tool",
    "duration_ms",
}


def test_an_event_has_the_fixed_schema_and_omits_what_does_not_apply() -> None:
    event = audit_event(
        "tool.called", actor="client", sub="s", client_id="c", grant_id="g", tool="whoami", duration_ms=1.23456
    )
    assert event == {
        "schema": AUDIT_SCHEMA,
        "action": "tool.called",
        "outcome": "success",
        "actor": "client",
        "sub": "s",
        "client_id": "c",
        "grant_id": "g",
        "tool": "whoami",
        "duration_ms": 1.235,
    }
    full = audit_event(
        "grant.revoked",
        outcome="success",
        actor="admin",
        reason="r",
        sub="s",
        username="u",
        client_id="c",
        client_name="n",
        grant_id="g",
        scopes=["b", "a"],
        tool="t",
        duration_ms=0.0,
    )
    assert set(full) == SCHEMA_FIELDS and full["scopes"] == ["a", "b"]


def test_no_other_field_can_enter_an_event() -> None:
    with pytest.raises(TypeError):
        audit_event("token.issued", access_token="x")  # type: ignore[call-arg]


def test_audit_writes_one_json_line_under_the_audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    audit("client.deleted", actor="client", client_id="c-1")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [line["audit"] for line in lines] == [
        {"schema": 1, "action": "client.deleted", "outcome": "success", "actor": "client", "client_id": "c-1"}
    ]


def test_actions_are_named_object_dot_verb() -> None:
    assert all(len(a.split(".")) == 2 for a in get_args(AuditAction))
