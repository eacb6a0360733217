"""Every AWS call the functions make in a full facade flow is one their IAM role allows.

moto checks no IAM: a call whose action the stack does not grant passes every local test and
fails only in AWS (AccessDenied, a 503 for the person). This records each botocore call of the
real handlers (attributed to the function package whose handler is on the stack) through sign-in,
consent, code exchange, refresh, /mcp and RFC 7009 revocation, and checks it against
``infra.functions.access_for``, the table the CDK stack turns into each role's policy.
TransactWriteItems and BatchGetItem are authorized per contained operation and table (DynamoDB
developer guide, "Using IAM with DynamoDB transactions").
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from typing import Any

import botocore.client
import pytest

from functions.core.platform import kit_app, topology
from functions.core.platform.routes import (
    CLIENT_DELETE,
    CLIENT_READ,
    CLIENT_UPDATE,
    FUNCTIONS,
    REGISTRATION,
    REGISTRATION_PATH,
    REVOCATION_PATH,
    Route,
)
from infra.functions import Access, access_for
from local.config import table_name
from local.gateway import build_event
from tests.helpers import FakeContext
from tests.integration.facade_flow import Facade, code_for, exchange, invoke, mcp_tools, token
from tests.unit.metadata_docs import meta

# TransactWriteItems element -> the action IAM checks for it.
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


@dataclass(frozen=True)
class Call:
    function: str
    action: str  # "dynamodb:GetItem", "kms:Decrypt", ...
    table: str | None = None  # a table key of the topology (grants, clients, ..., an app table)
    index: str | None = None


def _function_on_stack() -> str | None:
    """The outermost function package (functions/<name>/) on the calling thread's stack."""
    frame: Any = sys._getframe(2)
    found = None
    while frame is not None:
        parts = frame.f_code.co_filename.replace("\\", "/").split("/functions/")
        if len(parts) > 1 and (name := parts[-1].split("/")[0]) in FUNCTIONS:
            found = name
        frame = frame.f_back
    return found


def _calls(function: str, service: str, operation: str, params: dict[str, Any], keys: dict[str, str]) -> list[Call]:
    if service != "dynamodb":
        return [Call(function, f"{service}:{operation}")]
    if operation == "TransactWriteItems":
        return [
            Call(function, _TRANSACT_ACTIONS[kind], keys[body["TableName"]])
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation == "BatchGetItem":
        return [Call(function, "dynamodb:BatchGetItem", keys[t]) for t in params["RequestItems"]]
    return [Call(function, f"dynamodb:{operation}", keys[params["TableName"]], params.get("IndexName"))]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    app = kit_app.current()
    keys = {table_name(spec): spec.key for spec in topology.all_tables(app)}
    calls: list[Call] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
        function = _function_on_stack()
        if function is not None:
            calls.extend(_calls(function, client.meta.service_model.service_name, operation, params, keys))
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return calls


def _allowed(call: Call, access: Access) -> bool:
    """Whether the role built from ``access`` (infra.functions.KitFunction.apply_access) allows ``call``."""
    if call.action.startswith("dynamodb:"):
        if call.index is not None:  # only Query is granted on an index (deprovisioning adds Scan)
            return call.action == "dynamodb:Query" and call.index in access.indexes.get(call.table or "", ())
        return call.action in access.tables.get(call.table or "", ())
    if call.action == "kms:Encrypt":
        return access.kms_encrypt
    if call.action == "kms:Decrypt":
        return access.kms_decrypt
    if call.action == "cognito-idp:DescribeUserPoolClient":
        return access.describe_gateway_client
    return False


def test_every_call_of_a_full_flow_is_granted(facade: Facade, recorded: list[Call]) -> None:
    status, first = exchange(facade, code_for(facade, "alice@example.com"))
    assert status == 200, first
    assert mcp_tools(facade, first["access_token"])[0] == 200
    status, second = token(facade, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200, second
    revoked = invoke(
        facade.token, "POST", REVOCATION_PATH, form={"client_id": "public-agent", "token": second["refresh_token"]}
    )
    assert revoked["statusCode"] == 200
    assert mcp_tools(facade, second["access_token"])[0] == 401

    app = kit_app.current()
    seen = {call.function for call in recorded}
    assert {"authorization", "token", "mcp_server"} <= seen  # the recording is not vacuous
    denied = sorted({c for c in recorded if not _allowed(c, access_for(c.function, app))}, key=str)
    assert denied == []


def test_every_call_of_registration_and_its_management_is_granted(facade: Facade, recorded: list[Call]) -> None:
    """RFC 7591 registration (count, transaction, rate limit), then RFC 7592 read, update and delete."""
    registration = importlib.reload(importlib.import_module("functions.registration.handler")).handler
    metadata = meta(client_name="IAM coverage agent", redirect_uris=["https://agent.example.com/callback"])

    def call(route: Route, path: str, body: dict[str, Any] | None = None, bearer: str | None = None) -> Any:
        headers = [("host", "localhost:8000"), ("content-type", "application/json")]
        if bearer is not None:
            headers.append(("authorization", "Bearer " + bearer))
        event = build_event(
            method=route.method,
            path=path,
            raw_query="",
            headers=headers,
            body=json.dumps(body).encode() if body is not None else b"",
            route=route,
            params={"client_id": path.rsplit("/", 1)[1]} if route is not REGISTRATION else None,
            source_ip="198.51.100.77",
        )
        return registration(event, FakeContext())

    # A public client (a transaction with its DEDUPE item), then a confidential one to manage:
    # a public registration is shared by identical ones and cannot be changed.
    assert call(REGISTRATION, REGISTRATION_PATH, metadata)["statusCode"] == 201
    metadata = {**metadata, "token_endpoint_auth_method": "client_secret_basic"}
    created = call(REGISTRATION, REGISTRATION_PATH, metadata)
    assert created["statusCode"] == 201, created["body"]
    record = json.loads(created["body"])
    path = f"{REGISTRATION_PATH}/{record['client_id']}"
    bearer = record["registration_access_token"]
    read = call(CLIENT_READ, path, bearer=bearer)
    assert read["statusCode"] == 200, read["body"]
    bearer = json.loads(read["body"]).get("registration_access_token", bearer)  # it may rotate
    changed = {**metadata, "client_id": record["client_id"], "client_name": "IAM coverage agent 2"}
    updated = call(CLIENT_UPDATE, path, changed, bearer=bearer)
    assert updated["statusCode"] == 200, updated["body"]
    bearer = json.loads(updated["body"]).get("registration_access_token", bearer)
    assert call(CLIENT_DELETE, path, bearer=bearer)["statusCode"] == 204

    app = kit_app.current()
    assert {c.action for c in recorded if c.function == "registration"} >= {
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    }
    denied = sorted({c for c in recorded if not _allowed(c, access_for(c.function, app))}, key=str)
    assert denied == []
