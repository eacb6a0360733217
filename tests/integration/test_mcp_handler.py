"""The MCP function's real Lambda handler against moto (DynamoDB, Cognito JWKS over HTTP)."""

from __future__ import annotations

import importlib
import json
import threading
import time
from typing import Any

import boto3
import pytest
from jose import jwt
from moto.utilities.utils import load_resource

from functions.core.state.grants import GRANTS, DynamoGrantRepository
from local.config import GRANTS_TABLE, app_table_name
from tests.helpers import FakeContext, grant, http_api_event, rpc
from tests.integration.conftest import MotoStack
from tests.observability_capture import Captured

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def handler(moto_stack: MotoStack) -> Any:
    module = importlib.import_module("functions.mcp_server.handler")
    return importlib.reload(module).handler  # built from this stack's environment


def moto_token(stack: MotoStack, who: str, scopes: tuple[str, ...]) -> str:
    """A token shaped like a Cognito access token, signed with the key moto publishes."""
    now = int(time.time())
    mcp = stack.cfg.base_url + "/mcp"
    claims = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{stack.seeded.user_pool_id}",
        "sub": f"sub-{who}",
        "client_id": stack.seeded.gateway_client_id,
        "token_use": "access",
        "scope": " ".join(["openid", *(f"{mcp}/{s}" for s in scopes)]),
        "aud": mcp,
        "iat": now,
        "exp": now + 600,
        "jti": f"jti-{who}-{now}",
        "origin_jti": f"origin-{who}",
        "username": who,
        # The local ceilings give notes:write to editors only, at /mcp too.
        **({"cognito:groups": ["editors"]} if "notes:write" in scopes else {}),
    }
    return jwt.encode(claims, load_resource("cognitoidp/resources/jwks-private.json"), "RS256", {"kid": "dummy"})


def authorize(stack: MotoStack, who: str, scopes: tuple[str, ...]) -> dict[str, str]:
    DynamoGrantRepository(GRANTS_TABLE).create(grant(f"origin-{who}", f"sub-{who}", scopes))
    return {**ACCEPT, "authorization": "Bearer " + moto_token(stack, who, scopes)}


def invoke(handler: Any, headers: dict[str, str], message: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler(http_api_event("POST", "/mcp", headers=headers, body=message), FakeContext())
    return result


def test_fifty_warm_invocations_in_one_process(moto_stack: MotoStack, handler: Any) -> None:
    headers = authorize(moto_stack, "warm", ("notes:read", "notes:write"))
    statuses = []
    for i in range(50):
        if i % 2:
            message = rpc("tools/list", id_=i)
        else:
            message = rpc("tools/call", {"name": "add_note", "arguments": {"title": f"item {i}"}}, i)
        result = invoke(handler, headers, message)
        statuses.append(result["statusCode"])
        assert "error" not in json.loads(result["body"]), result["body"]
    assert statuses == [200] * 50
    listed = invoke(handler, headers, rpc("tools/call", {"name": "list_notes", "arguments": {}}))
    assert len(json.loads(listed["body"])["result"]["structuredContent"]["result"]) == 25


def test_notes_live_in_dynamodb_partitioned_by_sub(moto_stack: MotoStack, handler: Any) -> None:
    headers = authorize(moto_stack, "erin", ("notes:read", "notes:write"))
    invoke(handler, headers, rpc("tools/call", {"name": "add_note", "arguments": {"title": "in dynamo"}}))
    items = boto3.client("dynamodb").query(
        TableName=app_table_name("notes"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "NOTES#sub-erin"}},
    )["Items"]
    assert [i["title"]["S"] for i in items] == ["in dynamo"]


def test_revocation_in_dynamodb_bites(moto_stack: MotoStack, handler: Any) -> None:
    headers = authorize(moto_stack, "frank", ("notes:read",))
    assert invoke(handler, headers, rpc("tools/list"))["statusCode"] == 200
    assert DynamoGrantRepository(GRANTS_TABLE).revoke("origin-frank", "test", int(time.time())) is True
    result = invoke(handler, headers, rpc("tools/list"))
    assert result["statusCode"] == 401
    assert 'error="invalid_token"' in result["headers"]["www-authenticate"]


def test_dynamodb_outage_is_503(moto_stack: MotoStack, handler: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = authorize(moto_stack, "gina", ("notes:read",))
    from functions.core.platform import aws

    broken = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1")
    monkeypatch.setattr(aws, "dynamodb", lambda: broken)
    result = invoke(handler, headers, rpc("tools/list"))
    assert result["statusCode"] == 503
    assert result["headers"]["retry-after"]


def test_grant_repository_round_trip(moto_stack: MotoStack) -> None:
    repo = DynamoGrantRepository(GRANTS_TABLE)
    g = grant("origin-rt", "sub-rt", ("notes:read",), email="rt@example.com", username="rt", client_name="Agent")
    repo.create(g)
    assert repo.get("origin-rt") == g
    assert repo.get("missing") is None


def test_a_tools_call_event_carries_the_agents_name_from_the_grant(
    moto_stack: MotoStack, handler: Any, seen: Captured
) -> None:
    DynamoGrantRepository(GRANTS_TABLE).create(
        grant("origin-nina", "sub-nina", ("notes:read",), client_name="Claude Desktop")
    )
    headers = {**ACCEPT, "authorization": "Bearer " + moto_token(moto_stack, "nina", ("notes:read",))}
    result = invoke(handler, headers, rpc("tools/call", {"name": "whoami", "arguments": {}}))
    assert result["statusCode"] == 200
    [event] = seen.events("tool.called")
    assert (event["client_id"], event["client_name"], event["grant_id"]) == ("agent-1", "Claude Desktop", "origin-nina")


def test_a_version_2_grant_without_a_name_still_authorizes(moto_stack: MotoStack, handler: Any, seen: Captured) -> None:
    # The item exactly as storage schema version 2 wrote it: no client_name attribute.
    item = GRANTS.to_item(grant("origin-otto", "sub-otto", ("notes:read",)))
    assert "client_name" not in item
    boto3.client("dynamodb").put_item(TableName=GRANTS_TABLE, Item=item)
    headers = {**ACCEPT, "authorization": "Bearer " + moto_token(moto_stack, "otto", ("notes:read",))}
    result = invoke(handler, headers, rpc("tools/call", {"name": "whoami", "arguments": {}}))
    assert result["statusCode"] == 200
    [event] = seen.events("tool.called")
    assert (event["client_id"], event["outcome"]) == ("agent-1", "success") and "client_name" not in event


def test_listen_get_returns_405_from_the_lambda(moto_stack: MotoStack, handler: Any) -> None:
    # Under Mangum the SDK's stateless GET stream never returned: the invocation hung.
    headers = authorize(moto_stack, "hank", ("notes:read",))
    for method in ("GET", "DELETE", "PATCH"):
        listen = {**headers, "accept": "text/event-stream", "mcp-protocol-version": "2025-06-18"}
        result = handler(http_api_event(method, "/mcp", headers=listen), FakeContext())
        assert result["statusCode"] == 405
        assert result["headers"]["allow"] == "POST, OPTIONS"


def test_sse_only_accept_ends_with_one_event_in_the_lambda(moto_stack: MotoStack, handler: Any) -> None:
    headers = {**authorize(moto_stack, "ivy", ("notes:read",)), "accept": "text/event-stream"}
    result = invoke(handler, headers, rpc("tools/list"))
    assert result["statusCode"] == 200
    assert result["headers"]["content-type"] == "text/event-stream"
    event, rest = result["body"].split("\r\n\r\n", 1)
    assert rest == ""
    name, data = event.split("\r\n")
    assert name == "event: message"
    assert "whoami" in {t["name"] for t in json.loads(data.removeprefix("data: "))["result"]["tools"]}


def test_deeply_nested_body_is_a_parse_error_in_the_lambda(moto_stack: MotoStack, handler: Any) -> None:
    headers = authorize(moto_stack, "jack", ("notes:read",))
    result = invoke(handler, headers, b"[" * 2000 + b"]" * 2000)
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"]["code"] == -32700


def test_trailing_slash_route_reaches_the_endpoint(moto_stack: MotoStack, handler: Any) -> None:
    headers = authorize(moto_stack, "kate", ("notes:read",))
    event = http_api_event("POST", "/mcp/{proxy+}", headers=headers, body=rpc("tools/list"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/mcp/"
    event["pathParameters"] = {"proxy": ""}
    result = handler(event, FakeContext())
    assert result["statusCode"] == 200, result["body"]


def test_app_table_outage_in_a_tool_is_503(
    moto_stack: MotoStack, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The grant lookup works; only the app's own table is unreachable.
    from kit_app.store import DynamoNotes

    headers = authorize(moto_stack, "lena", ("notes:read",))
    broken = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1")
    with monkeypatch.context() as patched:
        patched.setattr(DynamoNotes, "_ddb", property(lambda _self: broken))
        result = invoke(handler, headers, rpc("tools/call", {"name": "list_notes", "arguments": {}}))
    assert result["statusCode"] == 503
    assert int(result["headers"]["retry-after"]) > 0
    # After recovery the same request succeeds.
    again = invoke(handler, headers, rpc("tools/call", {"name": "list_notes", "arguments": {}}))
    assert again["statusCode"] == 200


def test_the_apps_extend_hook_adds_resources(moto_stack: MotoStack, handler: Any) -> None:
    headers = authorize(moto_stack, "nora", ("notes:read",))
    listed = json.loads(invoke(handler, headers, rpc("resources/list"))["body"])["result"]["resources"]
    assert [(r["uri"], r["name"]) for r in listed] == [("notes://about", "about")]
    read = invoke(handler, headers, rpc("resources/read", {"uri": "notes://about"}))
    assert json.loads(read["body"])["result"]["contents"][0]["text"] == "Notes of MCP Cognito Kit"
    # Still behind the token check like everything on /mcp.
    assert invoke(handler, ACCEPT, rpc("resources/list"))["statusCode"] == 401


def test_init_runs_without_the_cyclic_collector_and_freezes_what_it_built(moto_stack: MotoStack) -> None:
    import gc

    passes: list[str] = []

    def count(phase: str, _info: dict[str, int]) -> None:
        passes.append(phase)

    gc.unfreeze()
    gc.callbacks.append(count)
    try:
        importlib.reload(importlib.import_module("functions.mcp_server.handler"))
    finally:
        gc.callbacks.remove(count)
    # No collection while the init built its objects, the collector back on afterwards, and the
    # init's objects out of every later collection (handler.py: cold start CPU).
    assert passes == []
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize(("initialization", "prefetched"), [("on-demand", True), ("snap-start", False)])
def test_a_cold_start_fetches_the_jwks_during_init_except_under_snapstart(
    moto_stack: MotoStack, monkeypatch: pytest.MonkeyPatch, initialization: str, prefetched: bool
) -> None:
    from functions.core.cognito import jwt_verifier
    from functions.core.cognito.jwks import JwksCache, fetch_jwks

    release = threading.Event()
    fetches: list[str] = []

    def counted(url: str) -> Any:
        fetches.append(url)
        release.wait(timeout=30)  # the round trip, held open until the test lets it answer
        return fetch_jwks(url)

    def jwks_for(settings: Any) -> JwksCache:  # every key cache the handler builds, counted
        return JwksCache(settings.jwks_url, min_refresh_seconds=60, fetcher=counted)

    monkeypatch.setattr(jwt_verifier, "jwks_for", jwks_for)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", initialization)
    try:
        module = importlib.reload(importlib.import_module("functions.mcp_server.handler"))
        # The init did not wait for the fetch it started (a slow JWKS delays nothing)...
        assert (module._prefetch is not None and module._prefetch.is_alive()) is prefetched
    finally:
        release.set()
    if module._prefetch is not None:
        module._prefetch.join()
    assert len(fetches) == (1 if prefetched else 0)
    # ...and the first request uses the keys it fetched (the endpoint verifies with the same
    # cache): no second fetch. After a SnapStart restore the first request fetches them.
    headers = authorize(moto_stack, f"cold-{initialization}", ("notes:read",))
    assert invoke(module.handler, headers, rpc("tools/list"))["statusCode"] == 200
    assert len(fetches) == 1
