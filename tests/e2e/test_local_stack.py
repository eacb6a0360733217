"""The local stack over real HTTP: the whole flow, end to end, as `make dev` runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from typing import Any

import boto3
import httpx
import pytest

from functions.core.state.grants import DynamoGrantRepository
from local.config import GRANTS_TABLE, REGION
from local.devtoken import record_grant, sign_in
from tests.e2e.conftest import PASSWORD, RunningStack

pytestmark = pytest.mark.e2e
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params is not None else {})}


class Agent:
    """A signed-in user with a token from the emulator and a recorded grant."""

    def __init__(self, stack: RunningStack, email: str, scopes: list[str]) -> None:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        self.stack = stack
        self.token = sign_in(stack.cfg, email, PASSWORD, scopes)
        record_grant(stack.cfg, self.token, email, scopes, client_id="e2e-agent")
        self.http = httpx.Client(base_url=stack.cfg.base_url, timeout=10)

    def post(self, message: dict[str, Any]) -> httpx.Response:
        headers = {**ACCEPT, "authorization": f"Bearer {self.token.access_token}"}
        return self.http.post("/mcp", content=json.dumps(message), headers=headers)

    def call(self, tool: str, args: dict[str, Any] | None = None) -> httpx.Response:
        return self.post(rpc("tools/call", {"name": tool, "arguments": args or {}}))

    def tools(self) -> set[str]:
        return {t["name"] for t in self.post(rpc("tools/list")).json()["result"]["tools"]}


def test_unauthenticated_post_gets_the_challenge(stack: RunningStack) -> None:
    resp = httpx.post(stack.cfg.base_url + "/mcp")
    assert resp.status_code == 401
    prm = stack.cfg.base_url + "/.well-known/oauth-protected-resource/mcp"
    assert resp.headers["www-authenticate"] == f'Bearer scope="notes:read notes:write", resource_metadata="{prm}"'


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"])
def test_protected_resource_metadata(stack: RunningStack, path: str) -> None:
    base = stack.cfg.base_url
    resp = httpx.get(base + path, headers={"origin": "https://inspector.example"})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "max-age" in resp.headers["cache-control"]
    assert resp.json() == {
        "resource": base + "/mcp",
        "authorization_servers": [base],
        "scopes_supported": ["notes:read", "notes:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "MCP Cognito Kit",
    }


def test_authorization_server_metadata(stack: RunningStack) -> None:
    base = stack.cfg.base_url
    doc = httpx.get(base + "/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == base
    assert doc["authorization_endpoint"] == base + "/authorize"
    assert doc["token_endpoint"] == base + "/token"
    assert doc["registration_endpoint"] == base + "/register"
    assert doc["revocation_endpoint"] == base + "/revoke"
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint_auth_methods_supported"] == ["none", "client_secret_basic", "client_secret_post"]
    assert doc["scopes_supported"] == ["notes:read", "notes:write"]
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True


def test_cors_preflight_on_metadata(stack: RunningStack) -> None:
    resp = httpx.options(
        stack.cfg.base_url + "/.well-known/oauth-authorization-server",
        headers={"origin": "https://inspector.example", "access-control-request-method": "GET"},
    )
    assert resp.status_code in (200, 204)
    assert resp.headers["access-control-allow-origin"] == "*"


def test_unknown_route_is_404_like_api_gateway(stack: RunningStack) -> None:
    resp = httpx.get(stack.cfg.base_url + "/nope")
    assert resp.status_code == 404
    assert resp.json() == {"message": "Not Found"}


def test_tokens_from_the_emulator_drive_the_mcp_server(stack: RunningStack) -> None:
    alice = Agent(stack, "alice@example.com", ["notes:read", "notes:write"])
    bob = Agent(stack, "bob@example.com", ["notes:read"])

    # Scope filtering: bob's grant has read only.
    assert alice.tools() == {"whoami", "list_notes", "add_note", "archive_note"}
    assert bob.tools() == {"whoami", "list_notes"}

    # Identity comes from the verified token and the grant.
    me = alice.call("whoami").json()["result"]["structuredContent"]
    assert me["email"] == "alice@example.com"
    assert me["sub"] == alice.token.sub
    assert me["scopes"] == ["notes:read", "notes:write"]

    # Per-user isolation.
    added = alice.call("add_note", {"title": "ship the kit"}).json()["result"]["structuredContent"]
    assert bob.call("list_notes").json()["result"]["structuredContent"] == {"result": []}
    alice_list = alice.call("list_notes").json()["result"]["structuredContent"]["result"]
    assert [t["id"] for t in alice_list] == [added["id"]]

    # Step-up: 403 insufficient_scope naming the scopes held and the one the tool needs (no
    # MCP-Protocol-Version header: the default revision, 2025-03-26).
    denied = bob.call("add_note", {"title": "sneaky"})
    assert denied.status_code == 403
    challenge = denied.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="notes:read notes:write"' in challenge
    assert "resource_metadata=" in challenge

    # Revoking the grant stops the same, still cryptographically valid, token.
    repo = DynamoGrantRepository(
        GRANTS_TABLE, boto3.client("dynamodb", region_name=REGION, endpoint_url=stack.cfg.moto_url)
    )
    assert repo.revoke(alice.token.origin_jti, "e2e", int(time.time())) is True
    revoked = alice.call("whoami")
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
    assert bob.call("whoami").status_code == 200


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_everything(own_stack: RunningStack, stop: signal.Signals) -> None:
    for port in (own_stack.cfg.port, own_stack.cfg.moto_port, own_stack.cfg.cognito_port):
        assert _port_open(port)
    own_stack.process.send_signal(stop)
    assert own_stack.process.wait(timeout=20) == 0, "".join(own_stack.output[-40:])
    for port in (own_stack.cfg.port, own_stack.cfg.moto_port, own_stack.cfg.cognito_port):
        assert not _port_open(port)


def test_mcp_url_with_trailing_slash_gets_the_challenge(stack: RunningStack) -> None:
    resp = httpx.post(stack.cfg.base_url + "/mcp/", headers=ACCEPT, content=json.dumps(rpc("tools/list")))
    assert resp.status_code == 401
    prm = stack.cfg.base_url + "/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{prm}"' in resp.headers["www-authenticate"]


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH", "HEAD"])
@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
def test_other_methods_get_405_through_the_gateway(stack: RunningStack, method: str, path: str) -> None:
    resp = httpx.request(method, stack.cfg.base_url + path, headers={"accept": "text/event-stream"}, timeout=10)
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("path", ["/token", "/register"])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_body_that_is_not_utf8_reaches_the_handlers_checks(stack: RunningStack, path: str, content_type: str) -> None:
    # The gateway passes it base64-encoded, as API Gateway does; the handler refuses it.
    resp = httpx.post(
        stack.cfg.base_url + path, content=b"\xff\xfe\x00grant_type=\x80", headers={"content-type": content_type}
    )
    assert 400 <= resp.status_code < 500, resp.text


def _partial_post(port: int) -> socket.socket:
    """A request in flight: headers sent, body promised but never finished."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    return sock


def test_listen_gets_answer_405_and_ctrl_c_stops_with_requests_in_flight(own_stack: RunningStack) -> None:
    alice = Agent(own_stack, "alice@example.com", ["notes:read"])
    listen = {
        "authorization": f"Bearer {alice.token.access_token}",
        "accept": "text/event-stream",
        "mcp-protocol-version": "2025-06-18",
    }
    # The timeouts only catch a hang: before the method gate each of these never answered.
    statuses = [alice.http.get("/mcp", headers=listen, timeout=10).status_code for _ in range(20)]
    assert statuses == [405] * 20
    assert alice.post(rpc("tools/list")).status_code == 200

    in_flight = [_partial_post(own_stack.cfg.port) for _ in range(4)]
    try:
        own_stack.process.send_signal(signal.SIGINT)
        assert own_stack.process.wait(timeout=10) == 0, "".join(own_stack.output[-40:])
    finally:
        for sock in in_flight:
            sock.close()
    assert not _port_open(own_stack.cfg.port)
