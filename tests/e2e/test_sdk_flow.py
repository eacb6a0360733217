"""The official MCP Python SDK client runs the whole OAuth flow against `make dev`.

401 -> PRM + RFC 8414 discovery -> registration (DCR, or a CIMD URL as client_id) ->
/authorize -> Cognito managed-login emulator -> consent page -> code (+ RFC 9207 iss) ->
/token -> tools; then refresh (rotation), then revocation.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

from tests.e2e.conftest import PASSWORD, RunningStack, free_port
from tests.e2e.oauth_harness import Browser, CimdServer, HeadlessAgentUser, MemoryStorage

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Agent:
    """An official-SDK MCP client signing in as ``email``: by default a public client (DCR or
    ``cimd_url``) with a loopback redirect URI; a confidential one with ``auth_method``,
    ``redirect_uri`` and the ``client_info`` of an earlier registration to reuse."""

    def __init__(
        self,
        stack: RunningStack,
        email: str,
        *,
        cimd_url: str | None = None,
        approve: bool = True,
        client_name: str = "E2E agent <script>",
        redirect_uri: str | None = None,
        auth_method: Literal["none", "client_secret_post"] = "none",
        client_info: OAuthClientInformationFull | None = None,
    ) -> None:
        self.stack = stack
        self.redirect_uri = redirect_uri or f"http://localhost:{free_port()}/callback"
        self.storage = MemoryStorage()
        self.storage.client_info = client_info
        self.browser = Browser(email, PASSWORD, approve=approve)
        self.user = HeadlessAgentUser(self.browser, self.redirect_uri)
        self.provider = OAuthClientProvider(
            server_url=stack.cfg.base_url + "/mcp",
            client_metadata=OAuthClientMetadata(
                client_name=client_name,
                redirect_uris=[self.redirect_uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method=auth_method,
            ),
            storage=self.storage,
            redirect_handler=self.user.redirect_handler,
            callback_handler=self.user.callback_handler,
            client_metadata_url=cimd_url,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(auth=self.provider, timeout=30) as http:
            transport = streamable_http_client(self.stack.cfg.base_url + "/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                yield client

    def raw_call(self, tool: str, args: dict[str, Any] | None = None) -> httpx.Response:
        assert self.storage.tokens is not None
        return httpx.post(
            self.stack.cfg.base_url + "/mcp",
            headers={
                "authorization": f"Bearer {self.storage.tokens.access_token}",
                "accept": "application/json, text/event-stream",
                "content-type": "application/json",
            },
            content=json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args or {}}}
            ),
        )


def _structured(result: Any) -> Any:
    return result.structured_content


async def _full_flow(stack: RunningStack, agent: Agent, agent_name_html: str) -> None:
    title = f"from the SDK {agent.redirect_uri}"  # unique: tests share the stack's users
    async with agent.session() as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"whoami", "list_notes", "add_note", "archive_note"}
        me = _structured(await client.call_tool("whoami", {}))
        assert me["email"] == "alice@example.com"
        assert me["scopes"] == ["notes:read", "notes:write"]
        added = _structured(await client.call_tool("add_note", {"title": title}))
        assert added["title"] == title

    # The authorization response carried iss = the issuer (RFC 9207) and the flow went
    # through the emulator's sign-in form and the kit's consent page.
    assert agent.user.results[-1]["iss"] == [stack.cfg.base_url]
    assert len(agent.browser.consent_pages) == 1
    consent = agent.browser.consent_pages[0]
    assert agent_name_html in consent
    assert "<script>" not in consent  # client metadata is rendered escaped
    assert "Read your notes" in consent  # each scope with its catalogue description
    first = agent.storage.tokens
    assert first is not None and first.refresh_token

    # Refresh: the SDK refreshes an expired token by itself; the kit rotates the refresh token.
    agent.provider.context.token_expiry_time = time.time() - 1
    async with agent.session() as client:
        listed = _structured(await client.call_tool("list_notes", {}))
        assert title in [t["title"] for t in listed["result"]]
    second = agent.storage.tokens
    assert second is not None
    assert second.refresh_token and second.refresh_token != first.refresh_token
    assert len(agent.user.authorization_urls) == 1  # no second sign-in

    # The rotated-out refresh token is dead; presenting it again is reuse and kills the grant.
    client_id = agent.storage.client_info.client_id if agent.storage.client_info else None
    reuse = httpx.post(
        stack.cfg.base_url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": first.refresh_token, "client_id": client_id},
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert agent.raw_call("whoami").status_code == 401


async def test_dcr_flow_end_to_end(stack: RunningStack) -> None:
    agent = Agent(stack, "alice@example.com")
    await _full_flow(stack, agent, "E2E agent &lt;script&gt;")
    assert agent.storage.client_info is not None
    assert not agent.storage.client_info.client_id.startswith("https://")


async def test_cimd_flow_end_to_end(stack: RunningStack, cimd_server: CimdServer) -> None:
    url = cimd_server.url("/agents/e2e.json")
    agent = Agent(stack, "alice@example.com", cimd_url=url)
    cimd_server.publish(
        "/agents/e2e.json",
        {
            "client_id": url,
            "client_name": "E2E CIMD agent",
            "redirect_uris": [agent.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
    )
    await _full_flow(stack, agent, "localhost")
    assert agent.storage.client_info is not None
    assert agent.storage.client_info.client_id == url
    assert "/agents/e2e.json" in cimd_server.requests
    assert "localhost" in agent.browser.consent_pages[0]


async def test_revocation_bites(stack: RunningStack) -> None:
    agent = Agent(stack, "alice@example.com")
    async with agent.session() as client:
        await client.call_tool("whoami", {})
    tokens, info = agent.storage.tokens, agent.storage.client_info
    assert tokens is not None and info is not None
    assert agent.raw_call("whoami").status_code == 200
    revoke = httpx.post(
        stack.cfg.base_url + "/revoke", data={"token": tokens.refresh_token, "client_id": info.client_id}
    )
    assert revoke.status_code == 200
    # The Cognito JWT still verifies, but the grant behind it is gone (GRANT_CACHE_SECONDS=0 here).
    assert agent.raw_call("whoami").status_code == 401
    refresh = httpx.post(
        stack.cfg.base_url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": info.client_id},
    )
    assert refresh.json()["error"] == "invalid_grant"


async def test_bob_cannot_get_write(stack: RunningStack) -> None:
    agent = Agent(stack, "bob@example.com")
    async with agent.session() as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"whoami", "list_notes"}
        me = _structured(await client.call_tool("whoami", {}))
        assert me["scopes"] == ["notes:read"]
    # The consent page offered bob only notes:read and said why notes:write was withheld.
    page = agent.browser.consent_pages[0]
    offered = page.split("<ul id=scopes>")[1].split("</ul>")[0]
    assert "notes:read" in offered
    assert "notes:write" not in offered
    assert "Not available to your account" in page
    denied = agent.raw_call("add_note", {"title": "nope"})
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    # No MCP-Protocol-Version header: the default revision's challenge, held + needed scopes.
    assert 'scope="notes:read notes:write"' in denied.headers["www-authenticate"]


async def test_deny_on_consent_page(stack: RunningStack) -> None:
    agent = Agent(stack, "alice@example.com", approve=False)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK surfaces the access_denied redirect as an error
        async with agent.session() as client:
            await client.list_tools()
    assert agent.user.results[-1]["error"] == ["access_denied"]
    assert agent.storage.tokens is None
