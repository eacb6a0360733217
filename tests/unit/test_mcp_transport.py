"""The /mcp transport rules the kit decides before the SDK: method gate, trailing slash,
parse errors, SSE framing, protocol-version header, step-up challenge by revision."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from kit_app.store import MemoryNotes, Note

from functions.core.platform.errors import DependencyError
from functions.mcp_server.transport import SERVED_PROTOCOL_VERSIONS
from tests.helpers import BASE_URL, MODERN, modern_meta, rpc
from tests.unit.test_mcp_endpoint import ACCEPT, INSPECTOR, PRM, Harness

pytestmark = pytest.mark.anyio
# Only catches a hang (the failure this file guards against); never a timing assertion.
HANG_GUARD_SECONDS = 20
SSE_LISTEN = {"accept": "text/event-stream", "mcp-protocol-version": "2025-06-18"}
OTHER_METHODS = ["GET", "DELETE", "PUT", "PATCH", "HEAD"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def h() -> Harness:
    return Harness(allowed_origins=(INSPECTOR,))


async def _request(h: Harness, method: str, path: str = "/mcp", **kw: Any) -> httpx.Response:
    """One request to the endpoint itself, failing (not hanging) if it never answers."""
    transport = httpx.ASGITransport(app=h.client.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            return await client.request(method, path, **kw)


async def test_authenticated_sse_listen_get_is_405_at_once(h: Harness) -> None:
    # The TypeScript SDK's listen-mode GET: before the gate, the SDK opened a stream that never ended.
    resp = await _request(h, "GET", headers={**h.authorize(), **SSE_LISTEN})
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST, OPTIONS"
    assert resp.json()["error"]["message"].startswith("Method Not Allowed")


@pytest.mark.parametrize("method", OTHER_METHODS)
@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
@pytest.mark.parametrize("authenticated", [True, False])
async def test_every_other_method_is_405_with_allow(h: Harness, method: str, path: str, authenticated: bool) -> None:
    headers = {**(h.authorize() if authenticated else {}), "accept": "application/json, text/event-stream"}
    resp = await _request(h, method, path, headers=headers)
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST, OPTIONS"
    assert "www-authenticate" not in resp.headers  # decided before authentication


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_405_carries_cors_headers_for_an_allowed_origin(h: Harness, method: str) -> None:
    allowed = await _request(h, method, headers={**h.authorize(), **SSE_LISTEN, "origin": INSPECTOR})
    assert allowed.status_code == 405
    assert allowed.headers["access-control-allow-origin"] == INSPECTOR
    foreign = await _request(h, method, headers={**SSE_LISTEN, "origin": "https://evil.example"})
    assert foreign.status_code == 405
    assert "access-control-allow-origin" not in foreign.headers


def test_preflight_advertises_only_post(h: Harness) -> None:
    resp = h.client.options("/mcp", headers={"origin": INSPECTOR, "access-control-request-method": "POST"})
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-methods"] == "POST, OPTIONS"


def test_trailing_slash_is_the_mcp_url(h: Harness) -> None:
    unauthenticated = h.client.post("/mcp/", content=json.dumps(rpc("tools/list")), headers=ACCEPT)
    assert unauthenticated.status_code == 401
    assert f'resource_metadata="{PRM}"' in unauthenticated.headers["www-authenticate"]
    resp = h.client.post("/mcp/", content=json.dumps(rpc("tools/list")), headers={**ACCEPT, **h.authorize()})
    assert resp.status_code == 200
    assert "whoami" in {t["name"] for t in resp.json()["result"]["tools"]}
    assert h.client.post("/mcp/other", headers=ACCEPT).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 2000 + b"]" * 2000,
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b"[" * 100_000,
        b"1" * 5000,  # an integer literal beyond Python's conversion limit
        b"\xff\xfe{not json",
        b"",
        b'{"jsonrpc": "2.0", "id": 1, "method": ',
    ],
    ids=["arrays-2000", "objects-2000", "open-100000", "huge-int", "binary", "empty", "truncated"],
)
def test_unparseable_body_is_a_jsonrpc_parse_error(h: Harness, body: bytes) -> None:
    resp = h.client.post("/mcp", content=body, headers={**ACCEPT, **h.authorize()})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == -32700


def test_deep_but_parseable_params_are_refused_without_5xx(h: Harness) -> None:
    # Nesting that Python's parser takes but the SDK's does not: a 4xx, never a 5xx.
    deep: Any = 1
    for _ in range(800):
        deep = [deep]
    resp = h.post(rpc("tools/call", {"name": "whoami", "arguments": {"x": deep}}), h.authorize())
    assert 400 <= resp.status_code < 500, resp.text


def _sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.splitlines()
        if not lines:
            continue
        assert lines[0] == "event: message"
        events.append(json.loads("\n".join(line.removeprefix("data: ") for line in lines[1:])))
    return events


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", MODERN])
async def test_sse_only_accept_gets_one_event_then_the_end(h: Harness, version: str) -> None:
    params = {"_meta": modern_meta()} if version == MODERN else None
    headers = {
        **h.authorize(),
        "accept": "text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": version,
        "mcp-method": "tools/list",
    }
    resp = await _request(h, "POST", content=json.dumps(rpc("tools/list", params)), headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    (event,) = _sse_events(resp.text)
    assert event["id"] == 1
    assert "whoami" in {t["name"] for t in event["result"]["tools"]}


def test_json_accept_still_gets_json(h: Harness) -> None:
    alice = h.authorize()
    for accept in ("application/json", "application/json, text/event-stream", "*/*"):
        resp = h.post(rpc("tools/list"), {**alice, "accept": accept})
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("version", ["2099-01-01", "1.0", "2025-06-18 "])
def test_unknown_protocol_version_names_the_served_ones(h: Harness, version: str) -> None:
    resp = h.post(rpc("tools/list"), h.authorize(), version=version)
    assert resp.status_code == 400
    error = resp.json()["error"]
    for served in ("2025-06-18", "2025-11-25", "2026-07-28", *SERVED_PROTOCOL_VERSIONS):
        assert served in error["message"]
    assert "_meta" not in error["message"]
    assert error["data"]["supported"] == list(SERVED_PROTOCOL_VERSIONS)


def _challenge_scope(resp: httpx.Response) -> str:
    assert resp.status_code == 403
    header = resp.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in header
    return header.split('scope="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_step_up_up_to_2025_11_25_names_held_and_needed(h: Harness, version: str) -> None:
    bob = h.authorize("bob", granted=("notes:read",))
    call = rpc("tools/call", {"name": "add_note", "arguments": {"title": "x"}})
    assert _challenge_scope(h.post(call, bob, version=version)) == "notes:read notes:write"


def test_step_up_without_version_header_uses_the_default_revision(h: Harness) -> None:
    bob = h.authorize("bob", granted=("notes:read",))
    call = rpc("tools/call", {"name": "add_note", "arguments": {"title": "x"}})
    resp = h.client.post("/mcp", content=json.dumps(call), headers={**ACCEPT, **bob})
    assert _challenge_scope(resp) == "notes:read notes:write"


def test_step_up_2026_07_28_names_only_what_is_needed(h: Harness) -> None:
    bob = h.authorize("bob", granted=("notes:read",))
    call = rpc("tools/call", {"name": "add_note", "arguments": {"title": "x"}, "_meta": modern_meta()})
    headers = {**bob, "mcp-method": "tools/call", "mcp-name": "add_note"}
    assert _challenge_scope(h.post(call, headers, version=MODERN)) == "notes:write"


class _DownNotes(MemoryNotes):
    """The app table failing, as the app's DynamoDB store reports it."""

    def list(self, sub: str) -> list[Note]:
        raise DependencyError("list notes failed: ProvisionedThroughputExceededException")

    def add(self, sub: str, title: str) -> Note:
        raise DependencyError("add note failed: EndpointConnectionError")


@pytest.fixture
def down() -> Harness:
    return Harness(allowed_origins=(INSPECTOR,), notes=_DownNotes())


@pytest.mark.parametrize("tool", ["list_notes", "add_note"])
@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_tool_dependency_outage_is_503_with_retry_after(down: Harness, tool: str, version: str) -> None:
    headers = {**down.authorize(), "origin": INSPECTOR}
    resp = down.post(
        rpc("tools/call", {"name": tool, "arguments": {"title": "x"} if tool == "add_note" else {}}),
        headers,
        version=version,
    )
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["retry-after"]) > 0
    assert resp.json()["error"] == "temporarily_unavailable"
    assert resp.headers["access-control-allow-origin"] == INSPECTOR


def test_tool_dependency_outage_is_503_in_2026_07_28_and_sse_framing(down: Harness) -> None:
    call = rpc("tools/call", {"name": "list_notes", "arguments": {}, "_meta": modern_meta()})
    headers = {**down.authorize(), "mcp-method": "tools/call", "mcp-name": "list_notes"}
    assert down.post(call, headers, version=MODERN).status_code == 503
    sse_only = {**headers, "accept": "text/event-stream"}
    resp = down.post(rpc("tools/call", {"name": "list_notes", "arguments": {}}), sse_only, version="2025-11-25")
    assert resp.status_code == 503
    assert resp.headers["retry-after"]


def test_tool_errors_that_are_not_outages_stay_tool_results(down: Harness) -> None:
    resp = down.call(down.authorize(), "archive_note", {"id": "not-an-id-at-all!"})
    assert resp.status_code == 200
    assert resp.json()["result"]["isError"] is True
    assert down.call(down.authorize("bob"), "whoami").status_code == 200


@pytest.mark.parametrize("accept", ["application/json, text/event-stream", "text/event-stream"])
async def test_2026_listen_stream_is_refused_not_held_open(h: Harness, accept: str) -> None:
    # subscriptions/listen is 2026-07-28's server-to-client stream: a stateless JSON server
    # offers none, so it must end at once like the listen-mode GET.
    headers = {
        **h.authorize(),
        "accept": accept,
        "content-type": "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": "subscriptions/listen",
    }
    body = json.dumps(rpc("subscriptions/listen", {"_meta": modern_meta()}))
    resp = await _request(h, "POST", content=body, headers=headers)
    assert 400 <= resp.status_code < 500
