"""The authorization function's IAM for the connected-agents page: least privilege in the template."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth
from tests.infra.template import actions as _actions
from tests.infra.template import logical_id as _logical_id
from tests.infra.template import role_of as _role_of
from tests.infra.template import statements_of_role as _statements_of_role
from tests.infra.template import table_ids as _table_ids


def _ddb_statements(synth: Synth, function: str) -> list[dict[str, Any]]:
    stmts = _statements_of_role(synth, _role_of(synth, function))
    return [s for s in stmts if any(a.startswith("dynamodb:") for a in _actions(s))]


def _resources(stmt: dict[str, Any]) -> list[Any]:
    return stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]


def _index_name(resource: Any) -> str | None:
    """``by_user`` for ``Fn::Join ["", [<table arn>, "/index/by_user"]]``, else None."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        tail = resource["Fn::Join"][1][-1]
        if isinstance(tail, str) and tail.startswith("/index/"):
            return tail.removeprefix("/index/")
    return None


def test_authorization_queries_only_the_by_user_index(synth: Synth) -> None:
    grants = _table_ids(synth)["grants"]
    queried: list[tuple[str, str | None]] = []
    for stmt in _ddb_statements(synth, "authorization"):
        if "dynamodb:Query" in _actions(stmt):
            assert _actions(stmt) == {"dynamodb:Query"}, "Query gets a statement of its own"
            for resource in _resources(stmt):
                queried.append((_logical_id(resource["Fn::Join"][1][0]), _index_name(resource)))
    # The person's grants by sub, nothing else: not the table, not by_client, not index/*.
    assert queried == [(grants, "by_user")]


def test_authorization_may_revoke_grants_and_forget_consents(synth: Synth) -> None:
    tables = _table_ids(synth)
    on_table: dict[str, set[str]] = {}
    for stmt in _ddb_statements(synth, "authorization"):
        if "dynamodb:Query" in _actions(stmt):
            continue
        for resource in _resources(stmt):
            on_table.setdefault(_logical_id(resource), set()).update(_actions(stmt))
    assert on_table == {
        # The approval (Put, Get) and, for the page, the revocation (Update) and consent deletion (Delete).
        tables["grants"]: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        tables["clients"]: {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        # ACCOUNT# sign-ins are put and used (a conditional update) like TXN# items.
        tables["artefacts"]: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    }


def test_token_function_queries_no_index(synth: Synth) -> None:
    for stmt in _ddb_statements(synth, "token"):
        assert "dynamodb:Query" not in _actions(stmt)
