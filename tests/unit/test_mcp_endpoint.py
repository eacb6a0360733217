"""The /mcp endpoint in-process: auth challenges, scope filtering, step-up, isolation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from kit_app.server import add_tools
from kit_app.store import MAX_TITLE_LENGTH, MemoryNotes, NoteStore
from starlette.testclient import TestClient

from functions.core.cognito.jwks import JwksCache
from functions.mcp_server import factory
from functions.mcp_server.factory import create_endpoint
from tests.fakes.state import InMemoryGrantRepository
from tests.helpers import (
    BASE_URL,
    MCP_URL,
    MODERN,
    FakeJwks,
    access_claims,
    grant,
    make_key,
    mcp_settings,
    mint,
    modern_meta,
    rpc,
)

KEY = make_key("kid-1")
PRM = f"{BASE_URL}/.well-known/oauth-protected-resource/mcp"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class Harness:
    def __init__(
        self,
        jwks_fail: bool = False,
        allowed_origins: tuple[str, ...] = (),
        ceilings: dict[str, tuple[str, ...]] | None = None,
        notes: NoteStore | None = None,
    ) -> None:
        self.grants = InMemoryGrantRepository()
        self.notes = notes or MemoryNotes()
        self.jwks = FakeJwks([KEY.public_jwk], fail=jwks_fail)
        settings = mcp_settings(
            grant_cache_seconds=0, allowed_origins=allowed_origins, scope_group_ceilings=ceilings or {}
        )
        endpoint = create_endpoint(
            settings,
            grants=self.grants,
            register=lambda tools, _ctx: add_tools(tools, self.notes),
            jwks=JwksCache(settings.jwks_url, min_refresh_seconds=60, fetcher=self.jwks),
        )
        self.client = TestClient(endpoint, base_url=BASE_URL)

    def token(
        self, who: str = "alice", token_scopes: tuple[str, ...] = ("notes:read", "notes:write"), **kw: Any
    ) -> str:
        scope = " ".join(["openid", *(f"{MCP_URL}/{s}" for s in token_scopes)])
        return mint(KEY, access_claims(sub=f"sub-{who}", origin_jti=f"origin-{who}", username=who, scope=scope, **kw))

    def authorize(
        self,
        who: str = "alice",
        granted: tuple[str, ...] = ("notes:read", "notes:write"),
        *,
        client_name: str = "",
        **kw: Any,
    ) -> dict[str, str]:
        self.grants.create(
            grant(f"origin-{who}", f"sub-{who}", granted, email=f"{who}@example.com", client_name=client_name)
        )
        return {"authorization": "Bearer " + self.token(who, **kw)}

    def post(self, message: dict[str, Any], headers: dict[str, str] | None = None, version: str = "2025-11-25") -> Any:
        hdrs = {**ACCEPT, "mcp-protocol-version": version, **(headers or {})}
        return self.client.post("/mcp", content=json.dumps(message), headers=hdrs)

    def call(self, headers: dict[str, str], tool: str, args: dict[str, Any] | None = None) -> Any:
        return self.post(rpc("tools/call", {"name": tool, "arguments": args or {}}), headers)

    def tool_names(self, headers: dict[str, str]) -> set[str]:
        resp = self.post(rpc("tools/list"), headers)
        assert resp.status_code == 200, resp.text
        return {t["name"] for t in resp.json()["result"]["tools"]}


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_no_token_gets_challenge_without_error(h: Harness) -> None:
    resp = h.post(rpc("tools/list"))
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == f'Bearer scope="notes:read notes:write", resource_metadata="{PRM}"'


def test_no_token_body_names_a_registered_error_code(h: Harness) -> None:
    # RFC 6750 section 3.1: the body's code is invalid_token (never an unregistered
    # "unauthorized"), while the challenge itself carries no error for a request without one.
    resp = h.post(rpc("tools/list"))
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"
    assert resp.headers["cache-control"] == "no-store"


def test_other_auth_scheme_is_treated_as_no_token(h: Harness) -> None:
    resp = h.post(rpc("tools/list"), {"authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status_code == 401
    assert "error=" not in resp.headers["www-authenticate"]


def test_invalid_token_gets_invalid_token(h: Harness) -> None:
    resp = h.post(rpc("tools/list"), {"authorization": "Bearer garbage"})
    assert resp.status_code == 401
    header = resp.headers["www-authenticate"]
    assert header.startswith('Bearer error="invalid_token"')
    assert f'resource_metadata="{PRM}"' in header
    assert resp.json()["error"] == "invalid_token"


def test_valid_jwt_without_grant_is_refused(h: Harness) -> None:
    resp = h.post(rpc("tools/list"), {"authorization": "Bearer " + h.token()})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_revoked_grant_is_refused(h: Harness) -> None:
    headers = h.authorize()
    assert h.post(rpc("tools/list"), headers).status_code == 200
    h.grants.revoke("origin-alice", "user", 1)
    assert h.post(rpc("tools/list"), headers).status_code == 401


def test_grant_of_another_user_is_refused(h: Harness) -> None:
    h.grants.create(grant("origin-alice", "sub-bob"))
    resp = h.post(rpc("tools/list"), {"authorization": "Bearer " + h.token()})
    assert resp.status_code == 401


def test_jwks_outage_is_503_with_retry_after() -> None:
    h = Harness(jwks_fail=True)
    resp = h.post(rpc("tools/list"), {"authorization": "Bearer " + h.token()})
    assert resp.status_code == 503
    assert int(resp.headers["retry-after"]) > 0


def test_tools_list_shows_only_allowed_tools(h: Harness) -> None:
    assert h.tool_names(h.authorize("alice")) == {"whoami", "list_notes", "add_note", "archive_note"}
    assert h.tool_names(h.authorize("bob", granted=("notes:read",))) == {"whoami", "list_notes"}


def test_effective_scopes_are_token_intersect_grant(h: Harness) -> None:
    # The grant allows writing but this token was minted with read only: no write tools.
    headers = h.authorize("carol", token_scopes=("notes:read",))
    assert h.tool_names(headers) == {"whoami", "list_notes"}
    # Scopes of another resource server never count.
    foreign = h.authorize("dave", token_scopes=())
    foreign["authorization"] = "Bearer " + mint(
        KEY, access_claims(sub="sub-dave", origin_jti="origin-dave", scope="https://other.example/mcp/notes:read")
    )
    assert h.tool_names(foreign) == {"whoami"}


def test_step_up_403_names_the_held_and_needed_scopes(h: Harness) -> None:
    # Revision 2025-11-25 (the harness default): held + needed; by revision in test_mcp_transport.
    headers = h.authorize("bob", granted=("notes:read",))
    resp = h.call(headers, "add_note", {"title": "x"})
    assert resp.status_code == 403
    assert resp.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="tool add_note requires more scopes", '
        f'scope="notes:read notes:write", resource_metadata="{PRM}"'
    )
    assert h.notes.items == {}


def test_step_up_for_a_tool_named_outside_ascii_is_a_403_not_a_500(h: Harness) -> None:
    # MCP allows any tool name (its character set is a SHOULD); the challenge header must stay
    # encodable and within RFC 6750 section 3's characters whatever the app named its tool.
    def register(tools: Any, _ctx: Any) -> None:
        @tools.tool(scopes=("notes:write",), name="写笔记")
        async def write() -> str:
            return "written"

    settings = mcp_settings(grant_cache_seconds=0)
    endpoint = create_endpoint(
        settings,
        grants=h.grants,
        register=register,
        jwks=JwksCache(settings.jwks_url, min_refresh_seconds=60, fetcher=h.jwks),
    )
    h.client = TestClient(endpoint, base_url=BASE_URL, raise_server_exceptions=False)
    resp = h.call(h.authorize("bob", granted=("notes:read",)), "写笔记")
    assert resp.status_code == 403
    assert resp.headers["www-authenticate"].startswith(
        'Bearer error="insufficient_scope", error_description="tool ??? requires more scopes", scope='
    )
    assert resp.json()["error_description"] == "tool 写笔记 requires more scopes"


def test_step_up_applies_to_batches(h: Harness) -> None:
    headers = h.authorize("bob", granted=("notes:read",))
    batch = [rpc("tools/list"), rpc("tools/call", {"name": "archive_note", "arguments": {"id": "0" * 24}}, 2)]
    resp = h.client.post("/mcp", content=json.dumps(batch), headers={**ACCEPT, **headers})
    assert resp.status_code == 403


def test_a_tool_added_outside_the_registry_is_neither_listed_nor_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's ``extend(server, ctx)`` gets the SDK server, whose own ``tool()`` adds a tool the
    registry knows nothing of (no scopes): hidden from tools/list, it must not run either."""
    ran: list[str] = []

    def extend(server: Any, _ctx: Any) -> None:
        @server.tool(name="purge")
        async def purge() -> str:
            ran.append("purge")
            return "purged"

    monkeypatch.setattr(factory, "extend_hook", lambda _root: extend)
    h = Harness()
    settings = mcp_settings(grant_cache_seconds=0)
    endpoint = create_endpoint(
        settings, grants=h.grants, jwks=JwksCache(settings.jwks_url, min_refresh_seconds=60, fetcher=h.jwks)
    )
    h.client = TestClient(endpoint, base_url=BASE_URL)
    headers = h.authorize("alice")
    assert "purge" not in h.tool_names(headers)
    resp = h.call(headers, "purge")
    assert resp.status_code == 200
    assert resp.json()["result"]["isError"] is True
    assert ran == []


def test_whoami(h: Harness) -> None:
    resp = h.call(h.authorize(), "whoami")
    result = resp.json()["result"]["structuredContent"]
    assert result == {
        "sub": "sub-alice",
        "username": "alice",
        "email": "alice@example.com",
        "client_id": "agent-1",
        "scopes": ["notes:read", "notes:write"],
    }


def test_notes_are_isolated_per_user(h: Harness) -> None:
    alice, bob = h.authorize("alice"), h.authorize("bob")
    added = h.call(alice, "add_note", {"title": "buy milk"}).json()["result"]["structuredContent"]
    assert h.call(bob, "list_notes").json()["result"]["structuredContent"] == {"result": []}
    steal = h.call(bob, "archive_note", {"id": added["id"]}).json()["result"]
    assert steal["isError"] is True
    listed = h.call(alice, "list_notes").json()["result"]["structuredContent"]["result"]
    assert [t["title"] for t in listed] == ["buy milk"]
    assert listed[0]["archived"] is False
    done = h.call(alice, "archive_note", {"id": added["id"]}).json()["result"]["structuredContent"]
    assert done["archived"] is True


@pytest.mark.parametrize("title", ["", "   ", "x" * (MAX_TITLE_LENGTH + 1), "bell\x07"])
def test_bad_titles_are_tool_errors(h: Harness, title: str) -> None:
    resp = h.call(h.authorize(), "add_note", {"title": title})
    assert resp.status_code == 200
    assert resp.json()["result"]["isError"] is True
    assert h.notes.items == {}


def test_protocol_2025_06_18_handshake(h: Harness) -> None:
    headers = h.authorize()
    init = rpc(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    )
    resp = h.client.post("/mcp", content=json.dumps(init), headers={**ACCEPT, **headers})
    assert resp.json()["result"]["protocolVersion"] == "2025-06-18"
    assert h.post(rpc("tools/list"), headers, version="2025-06-18").status_code == 200


def test_protocol_2026_07_28_stateless_envelope(h: Harness) -> None:
    headers = h.authorize()
    # 2026-07-28: no initialize; each POST carries its envelope and routing headers.
    resp = h.post(rpc("tools/list", {"_meta": modern_meta()}), {**headers, "mcp-method": "tools/list"}, version=MODERN)
    assert resp.status_code == 200, resp.text
    assert "whoami" in {t["name"] for t in resp.json()["result"]["tools"]}
    call = rpc("tools/call", {"name": "add_note", "arguments": {"title": "x"}, "_meta": modern_meta()})
    bob = h.authorize("bob", granted=("notes:read",))
    denied = h.post(call, {**bob, "mcp-method": "tools/call", "mcp-name": "add_note"}, version=MODERN)
    assert denied.status_code == 403


def test_foreign_host_and_origin_are_refused(h: Harness) -> None:
    headers = h.authorize()
    assert h.post(rpc("tools/list"), {**headers, "host": "evil.example"}).status_code == 421
    assert h.post(rpc("tools/list"), {**headers, "origin": "https://evil.example"}).status_code == 403
    assert h.post(rpc("tools/list"), {**headers, "origin": BASE_URL}).status_code == 200


def test_oversized_body_is_refused(h: Harness) -> None:
    big = rpc("tools/call", {"name": "add_note", "arguments": {"title": "x" * (2 * 1024 * 1024)}})
    assert h.post(big, h.authorize()).status_code == 413


INSPECTOR = "http://localhost:6274"


@pytest.fixture
def hc() -> Harness:
    """A harness whose settings allow one extra browser origin."""
    return Harness(allowed_origins=(INSPECTOR,))


def test_cors_preflight_for_an_allowed_origin(hc: Harness) -> None:
    resp = hc.client.options(
        "/mcp",
        headers={
            "origin": INSPECTOR,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization",
        },
    )
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == INSPECTOR
    assert "authorization" in resp.headers["access-control-allow-headers"]
    assert "mcp-protocol-version" in resp.headers["access-control-allow-headers"]


def test_cors_preflight_allows_the_mcp_param_headers_it_is_asked_for(hc: Harness) -> None:
    # MCP 2026-07-28: an argument annotated x-mcp-header travels as Mcp-Param-<name> too; the
    # browser asks for each name in the preflight. Other unknown headers are still not granted.
    requested = "Authorization, Content-Type, Mcp-Method, Mcp-Name, Mcp-Param-Region, X-Other, mcp-param-bad header"
    resp = hc.client.options(
        "/mcp",
        headers={
            "origin": INSPECTOR,
            "access-control-request-method": "POST",
            "access-control-request-headers": requested,
        },
    )
    allowed = [h.strip() for h in resp.headers["access-control-allow-headers"].split(",")]
    assert "mcp-param-region" in allowed
    assert "x-other" not in allowed
    assert not [h for h in allowed if " " in h]
    assert {"authorization", "content-type", "mcp-method", "mcp-name"} <= set(allowed)
    assert "Access-Control-Request-Headers" in resp.headers["vary"]


def test_cors_preflight_for_a_foreign_origin_gets_no_grant(hc: Harness) -> None:
    resp = hc.client.options(
        "/mcp", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    assert resp.status_code == 204
    assert "access-control-allow-origin" not in resp.headers


def test_challenge_is_readable_cross_origin(hc: Harness) -> None:
    # A browser client must be able to read WWW-Authenticate to start the OAuth flow.
    resp = hc.post(rpc("tools/list"), {"origin": INSPECTOR})
    assert resp.status_code == 401
    assert resp.headers["access-control-allow-origin"] == INSPECTOR
    assert "www-authenticate" in resp.headers["access-control-expose-headers"]


def test_allowed_origin_reaches_the_tools(hc: Harness) -> None:
    resp = hc.post(rpc("tools/list"), {**hc.authorize(), "origin": INSPECTOR})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == INSPECTOR


def test_no_cors_headers_without_an_allowed_origin(h: Harness) -> None:
    resp = h.post(rpc("tools/list"), {**h.authorize(), "origin": INSPECTOR})
    assert resp.status_code == 403  # the transport refuses a foreign Origin (DNS rebinding)
    assert "access-control-allow-origin" not in resp.headers


def test_group_ceilings_apply_at_the_mcp_endpoint_too() -> None:
    h = Harness(ceilings={"notes:write": ("editors",)})
    # alice's grant has write; her token says she is an editor: write tools are there.
    assert "add_note" in h.tool_names(h.authorize("alice"))
    # carol was granted write, then removed from editors: her next token carries no group.
    carol = h.authorize("carol", **{"cognito:groups": None})
    assert h.tool_names(carol) == {"whoami", "list_notes"}
    denied = h.call(carol, "add_note", {"title": "after leaving editors"})
    assert denied.status_code == 403
    assert 'scope="notes:read notes:write"' in denied.headers["www-authenticate"]


def test_the_kit_and_its_apps_use_only_the_sdks_public_surface() -> None:
    """No private SDK attribute (``_lowlevel_server`` and the like) in the endpoint or the apps:
    tools get their repositories from ``register(tools, ctx)``, the endpoint its session manager
    from ``streamable_http_app()`` / ``session_manager``."""
    root = Path(__file__).resolve().parents[2]
    private = re.compile(r"\._lowlevel_server\b|\._session_manager\b|\._tool_manager\b")
    offenders = [
        str(path.relative_to(root))
        for folder in ("functions/mcp_server", "examples/todos", "tests/fixtures/app")
        for path in sorted((root / folder).rglob("*.py"))
        if private.search(path.read_text())
    ]
    assert offenders == []


def test_every_request_gets_its_own_session_manager(h: Harness) -> None:
    """A stateless manager can run once: repeated calls (warm Lambda invocations) each get a new one."""
    headers = h.authorize()
    assert [h.tool_names(headers) for _ in range(3)] == [h.tool_names(headers)] * 3
